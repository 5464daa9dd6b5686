"""COCO and YOLO exports: pycocotools reads them, they agree box for box, memory stays flat."""

from __future__ import annotations

import hashlib
import io
import json
import tracemalloc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from pycocotools.coco import COCO  # type: ignore[import-untyped]

from services.qc.domain.exports import (
    DigestingWriter,
    ExportImage,
    ManifestEntry,
    manifest_hash,
    write_coco,
    write_manifest,
    yolo_data_yaml,
    yolo_files,
    yolo_label_path,
)

from .shapes import box, label, polygon

CLASSES = ["car", "road", "person", "night"]
IMAGES = [
    ExportImage(
        "a/0001.jpg",
        640,
        480,
        [
            box("car", 10.25, 20.5, 100.125, 50.0625),
            polygon("road", (0, 300), (640, 280.5), (640, 480), (0, 480)),
            label("night"),
        ],
    ),
    ExportImage("0002.png", 1920, 1080, [box("person", 1000.333, 5.777, 3.5, 900.01)]),
    ExportImage("0003.jpg", 100, 100, []),
]


# pycocotools 2.0.11 still passes copy=False to a numpy 2 __array__ when decoding masks.
pycocotools_numpy2 = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def write(tmp_path: Path, images: list[ExportImage]) -> tuple[Path, Any]:
    path = tmp_path / "instances.json"
    with path.open("wb") as out:
        counts = write_coco(out, lambda: iter(images), CLASSES, info={"version": 3})
    return path, counts


@pycocotools_numpy2
def test_coco_loads_with_pycocotools_and_round_trips_boxes(tmp_path: Path) -> None:
    path, counts = write(tmp_path, IMAGES)
    assert (counts.images, counts.annotations, counts.skipped_shapes) == (3, 3, 1)
    coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(sorted(coco.getCatIds()))] == CLASSES
    assert sorted(coco.getCatIds()) == [1, 2, 3, 4]
    first = coco.loadImgs([1])[0]
    assert (first["file_name"], first["width"], first["height"]) == ("a/0001.jpg", 640, 480)
    car, road = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert car["bbox"] == pytest.approx([10.25, 20.5, 100.125, 50.0625], abs=0.01)
    assert car["category_id"] == 1 and car["iscrowd"] == 0
    assert car["area"] == pytest.approx(100.125 * 50.0625)
    assert road["bbox"] == pytest.approx([0, 280.5, 640, 199.5], abs=0.01)
    assert road["category_id"] == 2
    # The polygon rasterises: its mask area is close to its exact area.
    assert abs(coco.annToMask(road).sum() - road["area"]) / road["area"] < 0.02
    assert coco.annToMask(car).sum() == pytest.approx(car["area"], rel=0.05)
    (person,) = coco.loadAnns(coco.getAnnIds(imgIds=[2]))
    assert person["bbox"] == pytest.approx([1000.333, 5.777, 3.5, 900.01], abs=0.01)
    assert coco.getAnnIds(imgIds=[3]) == []


def test_yolo_agrees_with_coco_box_for_box(tmp_path: Path) -> None:
    path, _ = write(tmp_path, IMAGES)
    coco = COCO(str(path))
    labels = dict(yolo_files(IMAGES, CLASSES))
    assert sorted(labels) == ["labels/0002.txt", "labels/0003.txt", "labels/a/0001.txt"]
    assert labels["labels/0003.txt"] == b""
    for image in coco.loadImgs(coco.getImgIds()):
        w, h = image["width"], image["height"]
        expected = [
            (a["category_id"] - 1, a["bbox"]) for a in coco.loadAnns(coco.getAnnIds([image["id"]]))
        ]
        rows = [
            line.split()
            for line in labels[yolo_label_path(image["file_name"])].decode().splitlines()
        ]
        got = []
        for index, cx, cy, bw, bh in rows:
            width, height = float(bw) * w, float(bh) * h
            x, y = float(cx) * w - width / 2, float(cy) * h - height / 2
            got.append((int(index), [x, y, width, height]))
        assert [g[0] for g in got] == [e[0] for e in expected]
        for (_, g), (_, e) in zip(got, expected, strict=True):
            assert g == pytest.approx(e, abs=0.01)


def test_data_yaml_names_classes_in_ontology_order() -> None:
    classes = ["car", "traffic light: red", 'say "hi"', "été"]
    data = yaml.safe_load(yolo_data_yaml(classes))
    assert data["names"] == dict(enumerate(classes))
    assert data["nc"] == 4 and data["train"] == "images"


def test_an_unknown_class_or_a_changed_second_pass_is_refused() -> None:
    stray = [ExportImage("x.jpg", 10, 10, [box("boat", 0, 0, 1, 1)])]
    with pytest.raises(ValueError, match="boat"):
        write_coco(io.BytesIO(), lambda: iter(stray), CLASSES)
    passes = iter([IMAGES, IMAGES[:2]])
    with pytest.raises(ValueError, match="second pass"):
        write_coco(io.BytesIO(), lambda: iter(next(passes)), CLASSES)


class LiveImages:
    """Images made on demand, counting how many the writer still holds at any moment."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.live = 0
        self.most_live = 0

    def _gone(self) -> None:
        self.live -= 1

    def __call__(self) -> Iterator[ExportImage]:
        for n in range(self.count):
            shapes = [box(CLASSES[k % 3], 10 * k, 5, 20, 30 + n % 7) for k in range(5)]
            image = ExportImage(f"{n:06d}.jpg", 640, 480, shapes)
            self.live += 1
            self.most_live = max(self.most_live, self.live)
            weakref.finalize(image, self._gone)
            yield image
            del image


def test_twenty_thousand_images_stream_through_one_at_a_time() -> None:
    images = LiveImages(20_000)
    sink = DigestingWriter()  # counts and hashes the bytes, keeps none
    counts = write_coco(sink, images, CLASSES)
    assert (counts.images, counts.annotations) == (20_000, 100_000)
    assert sink.size > 15_000_000
    assert images.most_live <= 2


def test_export_memory_does_not_grow_with_the_image_count() -> None:
    tracemalloc.start()
    try:
        write_coco(DigestingWriter(), LiveImages(2_000), CLASSES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The 2 000 images alone would take several MB held at once.
    assert peak < 500_000, peak


def test_streamed_bytes_are_valid_json_and_digested_as_written() -> None:
    out = io.BytesIO()
    digest = DigestingWriter(out)
    write_coco(digest, LiveImages(50), CLASSES)
    document = json.loads(out.getvalue())
    assert len(document["images"]) == 50 and len(document["annotations"]) == 250
    assert digest.sha256 == hashlib.sha256(out.getvalue()).hexdigest()
    assert digest.entry("instances.json") == ManifestEntry(
        "instances.json", digest.sha256, len(out.getvalue())
    )


def test_manifest_hash_is_of_the_canonical_bytes() -> None:
    entries = [
        ManifestEntry("images/a.jpg", "ab" * 32, 10),
        ManifestEntry("labels/a.txt", "cd" * 32, 0),
    ]
    out = io.BytesIO()
    content_hash = write_manifest(out, entries)
    assert content_hash == hashlib.sha256(out.getvalue()).hexdigest() == manifest_hash(entries)
    assert json.loads(out.getvalue()) == {
        "files": [
            {"path": "images/a.jpg", "sha256": "ab" * 32, "size": 10},
            {"path": "labels/a.txt", "sha256": "cd" * 32, "size": 0},
        ]
    }
    changed = [entries[0], ManifestEntry("labels/a.txt", "cd" * 32, 1)]
    assert manifest_hash(changed) != content_hash


def test_manifest_paths_must_be_sorted_and_unique() -> None:
    a = ManifestEntry("a", "00" * 32, 1)
    b = ManifestEntry("b", "00" * 32, 1)
    for entries in ([b, a], [a, a]):
        with pytest.raises(ValueError):
            manifest_hash(entries)
