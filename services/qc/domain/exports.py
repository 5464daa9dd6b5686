"""Dataset exports (COCO instances, YOLO) and their manifest, written as streams.

A dataset version can hold 20 000 images and 100 000 annotations; exporters that build the
whole document in memory (or in one request) are why large projects fail to export elsewhere.
Here every writer takes an iterator of images and writes as it goes, so memory stays that of
one image however large the version is.

Layout and ids: categories are the ontology's classes in ontology order, COCO ids 1..K and YOLO
indexes 0..K-1 (so ``category_id - 1`` is the YOLO index). Image ids are 1..M in stream order.
Boxes and polygons are exported (a polygon's box in YOLO, which only knows boxes); keypoints and
image-level classes have no place in COCO instances or YOLO detection files and are counted as
skipped. Images go at ``images/<file_name>``, labels at ``labels/<file_name>.txt`` (extension
replaced): the layout YOLO trainers derive label paths from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Protocol

from services.qc.domain.geometry import Shape, box_corners, box_of, is_region, shape_area

YOLO_DECIMALS = 8


@dataclass(frozen=True)
class ExportImage:
    """One image of a version with its accepted shapes (canonical, pixels)."""

    file_name: str
    width: int
    height: int
    shapes: Sequence[Shape]


@dataclass(frozen=True)
class ExportCounts:
    images: int
    annotations: int
    skipped_shapes: int


@dataclass(frozen=True)
class ManifestEntry:
    """One file of an export: its path inside the export, sha256 (hex) and size in bytes."""

    path: str
    sha256: str
    size: int


class ByteSink(Protocol):
    """Where a writer puts its bytes: a binary file, a zip member, a :class:`DigestingWriter`."""

    def write(self, data: bytes, /) -> object: ...


class DigestingWriter:
    """Passes bytes on to ``out`` (if any) and keeps their sha256 and size, so a file is hashed
    while it is written instead of read back afterwards."""

    def __init__(self, out: ByteSink | None = None) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        if self._out is not None:
            self._out.write(data)
        return len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def entry(self, path: str) -> ManifestEntry:
        return ManifestEntry(path, self.sha256, self.size)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _class_index(classes: Sequence[str]) -> dict[str, int]:
    index = {name: i for i, name in enumerate(classes)}
    if len(index) != len(classes):
        raise ValueError("class names repeat")
    return index


def _category(shape: Shape, index: Mapping[str, int], file_name: str) -> int:
    try:
        return index[shape["class"]]
    except KeyError:
        raise ValueError(f"{file_name}: class {shape['class']!r} is not in the ontology") from None


def _image_record(image_id: int, image: ExportImage) -> bytes:
    return _json(
        {"id": image_id, "file_name": image.file_name, "width": image.width, "height": image.height}
    )


def write_coco(
    out: ByteSink,
    images: Callable[[], Iterable[ExportImage]],
    classes: Sequence[str],
    *,
    info: Mapping[str, Any] | None = None,
) -> ExportCounts:
    """Write a COCO instances JSON document to ``out``.

    COCO lists all images before all annotations, so ``images`` is called twice and must give
    the same images in the same order both times (a frozen version does); the second pass is
    checked against a digest of the first rather than trusted.
    """
    index = _class_index(classes)
    categories = [
        {"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(classes)
    ]
    out.write(b'{"info":' + _json(dict(info or {})) + b',"licenses":[],"categories":')
    out.write(_json(categories) + b',"images":[')
    first = hashlib.sha256()
    count = 0
    for count, image in enumerate(images(), start=1):
        encoded = _image_record(count, image)
        first.update(encoded)
        out.write((b"," if count > 1 else b"") + encoded)
    out.write(b'],"annotations":[')
    second = hashlib.sha256()
    annotations = skipped = seen = 0
    for seen, image in enumerate(images(), start=1):
        second.update(_image_record(seen, image))
        for shape in image.shapes:
            if not is_region(shape):
                skipped += 1
                continue
            annotations += 1
            box = box_of(shape)
            outline = shape["points"] if shape["type"] == "polygon" else box_corners(box)
            record = {
                "id": annotations,
                "image_id": seen,
                "category_id": _category(shape, index, image.file_name) + 1,
                "bbox": [box.x, box.y, box.width, box.height],
                "area": shape_area(shape),
                "segmentation": [[float(c) for point in outline for c in point]],
                "iscrowd": 0,
            }
            out.write((b"," if annotations > 1 else b"") + _json(record))
    if seen != count or first.digest() != second.digest():
        raise ValueError("the second pass over the images differed from the first")
    out.write(b"]}")
    return ExportCounts(images=count, annotations=annotations, skipped_shapes=skipped)


def yolo_label_path(file_name: str) -> str:
    """Where the label file of ``images/<file_name>`` goes."""
    return str(PurePosixPath("labels") / PurePosixPath(file_name).with_suffix(".txt"))


def yolo_label(image: ExportImage, classes: Sequence[str]) -> str:
    """The YOLO label file of one image: ``index cx cy w h`` per box, normalised to 0..1."""
    index = _class_index(classes)
    lines = []
    for shape in image.shapes:
        if not is_region(shape):
            continue
        box = box_of(shape)
        values = (
            (box.x + box.width / 2) / image.width,
            (box.y + box.height / 2) / image.height,
            box.width / image.width,
            box.height / image.height,
        )
        numbers = " ".join(f"{v:.{YOLO_DECIMALS}f}" for v in values)
        lines.append(f"{_category(shape, index, image.file_name)} {numbers}\n")
    return "".join(lines)


def yolo_files(
    images: Iterable[ExportImage], classes: Sequence[str]
) -> Iterator[tuple[str, bytes]]:
    """(path, content) of every image's label file, one image at a time; an image without
    boxes gets an empty file (YOLO reads it as a background image, not a missing label)."""
    for image in images:
        yield yolo_label_path(image.file_name), yolo_label(image, classes).encode()


def yolo_data_yaml(classes: Sequence[str]) -> str:
    """``data.yaml`` naming the classes in ontology order (names quoted as JSON strings, which
    YAML reads as double-quoted scalars whatever characters a class name holds)."""
    _class_index(classes)
    names = "".join(f"  {i}: {json.dumps(name)}\n" for i, name in enumerate(classes))
    return f"path: .\ntrain: images\nval: images\nnc: {len(classes)}\nnames:\n{names}"


def write_manifest(out: ByteSink, entries: Iterable[ManifestEntry]) -> str:
    """Write the canonical manifest JSON and return its sha256 (the version's content hash).

    Canonical so equal contents give equal hashes: entries strictly ordered by path (checked,
    not sorted here, so a large manifest streams), compact JSON with sorted keys, UTF-8.
    """
    digest = DigestingWriter(out)
    digest.write(b'{"files":[')
    previous: str | None = None
    for n, entry in enumerate(entries):
        if previous is not None and entry.path <= previous:
            raise ValueError(f"manifest paths must be unique and sorted: {entry.path!r}")
        previous = entry.path
        record = {"path": entry.path, "sha256": entry.sha256, "size": entry.size}
        encoded = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest.write((b"," if n else b"") + encoded.encode())
    digest.write(b"]}")
    return digest.sha256


def manifest_hash(entries: Iterable[ManifestEntry]) -> str:
    """The content hash of a manifest without writing it anywhere."""
    return write_manifest(DigestingWriter(), entries)
