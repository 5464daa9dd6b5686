"""The clean benchmark's corpus: generated photo-like images with known defects, on disk.

Everything is drawn with NumPy/OpenCV from one seed, so the same files come out on every run
(each item has its own random stream, so adding a class does not change the others). Written to
``bench/out/clean-corpus/``:

- ``images/``: the accuracy corpus, ``img_NNNN.ext`` in arrival order (the order a dataset
  receives them, so "first copy kept" is defined). Labels, one per file:

  - ``clean``: normally exposed, sharp, colour photos of varied sizes (some with a sharp subject
    on a plain backdrop, some stored as PNG);
  - one class per image check: ``blurry`` (Gaussian blur, sigma 2-6 at 640x480), ``dark``,
    ``overexposed``, ``low_information`` (a flat field with sensor noise), ``grayscale_as_colour``
    (a gray picture saved with three equal channels), ``odd_aspect_ratio`` (4.5:1 to 8:1),
    ``too_small`` (shortest side 16-48 px), ``too_large`` (8000x7000 = 56 MP, a few),
    ``truncated_jpeg``, ``png_checksum`` (a damaged chunk CRC or chunk data), ``zero_bytes``,
    ``undecodable`` (random bytes, text), ``decompression_bomb`` (a small file whose header
    declares hundreds of megapixels);
  - ``exact_duplicate``: a JPEG's decoded pixels saved again losslessly as PNG;
  - ``near_duplicate``: copies of an original by resize 50 %, JPEG quality 40, 5 % and 10 %
    crop, +20 % and -20 % brightness, 3 degree rotation, each labeled with its original and
    transform. Originals arrive before their copies.
  - exposure and sharpness hard cases (``clean_bench.corpus_exposure``): dark-themed and bright
    scenes, banners, resampled and turned photos labeled by their one true finding, and the same
    scene types under- or over-exposed or blurred; a file with a second true finding lists it
    under ``also``.

- ``throughput/``: plain 640x480 JPEG photos, all different, for the throughput figures.
- ``manifest.json``: the labels, written last (a corpus without it is regenerated).

Run it alone to (re)build the corpus: ``.venv/bin/python bench/clean_corpus.py [--force]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "bench" / "out" / "clean-corpus"
VERSION = 2
SEED = 20240603

Pixels = NDArray[np.uint8]

# How many files of each kind the accuracy corpus holds.
COUNTS: dict[str, int] = {
    "clean": 260,
    "blurry": 30,
    "dark": 25,
    "overexposed": 25,
    "low_information": 25,
    "grayscale_as_colour": 25,
    "odd_aspect_ratio": 25,
    "too_small": 25,
    "too_large": 4,
    "truncated_jpeg": 25,
    "png_checksum": 20,
    "zero_bytes": 10,
    "undecodable": 20,
    "decompression_bomb": 12,
    "exact_duplicate": 30,  # originals (counted as clean) each with one lossless PNG copy
    "near_duplicate": 40,  # originals (counted as clean) each with one copy per transform
}
# the harder edits of clean_bench/corpus_near.py (20 % crops, 5 degrees, watermarks, combined)
NEAR_EDITS = ("crop20", "rotate5", "watermark", "crop+jpeg", "crop+resize", "rotate+crop")
NEAR_SCENES = 2  # scenes per type of corpus_near (originals, copies and hard negatives)
TRANSFORMS = (
    "resize50",
    "jpeg40",
    "crop5",
    "crop10",
    "bright+20",
    "bright-20",
    "rotate3",
    *NEAR_EDITS,
)
DEFECTS = (
    "blurry",
    "dark",
    "overexposed",
    "low_information",
    "grayscale_as_colour",
    "odd_aspect_ratio",
    "too_small",
    "too_large",
    "truncated_jpeg",
    "png_checksum",
    "zero_bytes",
    "undecodable",
    "decompression_bomb",
)
CLEAN_SIZES = ((800, 600), (1024, 768), (480, 640), (1280, 720), (720, 960), (600, 600))


@dataclass
class Item:
    """One file of the corpus before it gets its arrival name."""

    label: str
    data: bytes
    ext: str
    detail: dict[str, Any] = field(default_factory=dict)
    group: str | None = None  # duplicate group (original and its copies)
    transform: str | None = None  # for copies: how the copy was made
    name: str = ""


# ---- pictures ----------------------------------------------------------------------------------


def photo(rng: np.random.Generator, width: int = 640, height: int = 480) -> Pixels:
    """A photo-like colour picture: gradients, shapes, textured patches and sensor noise."""
    scale = max(width, height) / 640
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    cols = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    top, bottom, left, right = (rng.uniform(40, 210, 3).astype(np.float32) for _ in range(4))
    image = (top * (1 - rows) + bottom * rows) * 0.7 + (left * (1 - cols) + right * cols) * 0.3
    image = np.array(np.broadcast_to(image, (height, width, 3)), dtype=np.float32)
    for _ in range(int(rng.integers(10, 35))):
        colour = tuple(float(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        kind = int(rng.integers(0, 5))
        if kind == 0:
            radius = int(rng.integers(6, 90) * scale)
            cv2.circle(image, (x, y), radius, colour, -1, cv2.LINE_AA)
        elif kind == 1:
            w, h = int(rng.integers(10, 200) * scale), int(rng.integers(10, 160) * scale)
            cv2.rectangle(image, (x, y), (x + w, y + h), colour, -1)
        elif kind == 2:
            end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(image, (x, y), end, colour, max(1, int(rng.integers(1, 6) * scale)))
        elif kind == 3:
            axes = (int(rng.integers(10, 120) * scale), int(rng.integers(5, 60) * scale))
            angle = float(rng.uniform(0, 180))
            cv2.ellipse(image, (x, y), axes, angle, 0, 360, colour, -1, cv2.LINE_AA)
        else:
            points = rng.integers(-80, 80, (int(rng.integers(3, 7)), 2)) * scale
            polygon = (points + np.array((x, y))).astype(np.int32)
            cv2.fillPoly(image, [polygon], colour, cv2.LINE_AA)
    for _ in range(int(rng.integers(1, 4))):  # textured patches: foliage, fabric, gravel
        w = int(rng.integers(width // 8, width // 3))
        h = int(rng.integers(height // 8, height // 3))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        grain = float(rng.uniform(0.6, 2.0))
        texture = cv2.GaussianBlur(rng.normal(0, 40, (h, w)).astype(np.float32), (0, 0), grain)
        image[y : y + h, x : x + w] += texture[:, :, None] * rng.uniform(0.5, 1.0, 3)
    image += rng.normal(0, float(rng.uniform(2, 6)), image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def subject_on_backdrop(rng: np.random.Generator, width: int = 640, height: int = 480) -> Pixels:
    """A sharp subject filling 5-20 % of the frame on a plain, slightly noisy backdrop."""
    backdrop = rng.uniform(90, 220, 3)
    image = np.empty((height, width, 3), np.float32)
    image[:] = backdrop
    image += rng.normal(0, 2.0, image.shape).astype(np.float32)
    area = rng.uniform(0.05, 0.2) * width * height
    w = int(np.sqrt(area * rng.uniform(0.6, 1.6)))
    w = min(w, width - 2)
    h = min(int(area / w), height - 2)
    x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
    image[y : y + h, x : x + w] = photo(rng, w, h)
    return np.clip(image, 0, 255).astype(np.uint8)


def luma(image: Pixels) -> float:
    """Mean Rec. 601 luma."""
    return float(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).mean())


def normal_exposure(rng: np.random.Generator, image: Pixels) -> Pixels:
    """The picture with a random exposure change, kept within normal (mean luma 60-185)."""
    gain = float(rng.uniform(0.6, 1.3))
    out = np.clip(image.astype(np.float32) * gain, 0, 255)
    mean = luma(out.astype(np.uint8))
    if mean < 60 or mean > 185:
        out = np.clip(out * (np.clip(mean, 60, 185) / max(mean, 1.0)), 0, 255)
    return np.asarray(out, dtype=np.uint8)


def encode(image: NDArray[Any], ext: str, *params: int) -> bytes:
    """Encoded bytes of a raster."""
    ok, encoded = cv2.imencode(ext, image, list(params))
    assert ok, ext
    return bytes(encoded.tobytes())


def jpeg(image: NDArray[Any], quality: int = 90) -> bytes:
    """A JPEG at ``quality``."""
    return encode(image, ".jpg", cv2.IMWRITE_JPEG_QUALITY, quality)


def png(image: NDArray[Any]) -> bytes:
    """A PNG (lossless)."""
    return encode(image, ".png", cv2.IMWRITE_PNG_COMPRESSION, 3)


def png_chunk(data: bytes, kind: bytes) -> int:
    """Where the length field of the first ``kind`` chunk of a PNG starts."""
    pos = 8
    while True:
        length, found = struct.unpack_from(">I4s", data, pos)
        if found == kind:
            return pos
        pos += 12 + length


# ---- one maker per label ----------------------------------------------------------------------


def make_clean(rng: np.random.Generator, index: int) -> Item:
    """A normal photo: 60 % 640x480, the rest other common sizes; 10 % PNG; 10 % subject on
    a plain backdrop."""
    size = (640, 480) if rng.random() < 0.6 else CLEAN_SIZES[int(rng.integers(len(CLEAN_SIZES)))]
    plain = rng.random() < 0.1
    image = subject_on_backdrop(rng, *size) if plain else normal_exposure(rng, photo(rng, *size))
    as_png = rng.random() < 0.1
    data = png(image) if as_png else jpeg(image, int(rng.integers(80, 96)))
    detail = {"width": size[0], "height": size[1], "plain_backdrop": plain}
    return Item("clean", data, ".png" if as_png else ".jpg", detail)


def make_blurry(rng: np.random.Generator, index: int) -> Item:
    sigma = float(rng.uniform(2.0, 6.0))
    image = cv2.GaussianBlur(normal_exposure(rng, photo(rng)), (0, 0), sigma)
    return Item("blurry", jpeg(image, 90), ".jpg", {"sigma": round(sigma, 2)})


def make_dark(rng: np.random.Generator, index: int) -> Item:
    gain = float(rng.uniform(0.04, 0.15))
    noisy = photo(rng).astype(np.float32) * gain + rng.normal(0, 1.0, (480, 640, 3))
    image = np.clip(noisy, 0, 255).astype(np.uint8)
    return Item("dark", jpeg(image, 90), ".jpg", {"gain": round(gain, 3), "luma": luma(image)})


def make_overexposed(rng: np.random.Generator, index: int) -> Item:
    gain, offset = float(rng.uniform(1.5, 2.2)), float(rng.uniform(70, 120))
    image = np.clip(photo(rng).astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
    detail = {"gain": round(gain, 2), "offset": round(offset), "luma": luma(image)}
    return Item("overexposed", jpeg(image, 90), ".jpg", detail)


def make_low_information(rng: np.random.Generator, index: int) -> Item:
    """A flat field (lens cap, blank wall, empty sky) with sensor noise, maybe a faint ramp."""
    image = np.empty((480, 640, 3), np.float32)
    image[:] = rng.uniform(30, 220, 3)
    ramp = float(rng.uniform(0, 8)) if rng.random() < 0.5 else 0.0
    image += np.linspace(0, ramp, 640, dtype=np.float32)[None, :, None]
    image += rng.normal(0, float(rng.uniform(1, 4)), image.shape).astype(np.float32)
    image = np.clip(image, 0, 255).astype(np.uint8)
    as_png = rng.random() < 0.3
    data = png(image) if as_png else jpeg(image, 90)
    return Item("low_information", data, ".png" if as_png else ".jpg", {"ramp": round(ramp, 1)})


def make_grayscale(rng: np.random.Generator, index: int) -> Item:
    gray = cv2.cvtColor(normal_exposure(rng, photo(rng)), cv2.COLOR_BGR2GRAY)
    image = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    as_png = rng.random() < 0.2
    data = png(image) if as_png else jpeg(image, 90)
    return Item("grayscale_as_colour", data, ".png" if as_png else ".jpg")


def make_odd_aspect(rng: np.random.Generator, index: int) -> Item:
    ratio = float(rng.uniform(4.5, 8.0))
    short = int(rng.integers(200, 360))
    size = (int(short * ratio), short) if rng.random() < 0.7 else (short, int(short * ratio))
    image = normal_exposure(rng, photo(rng, *size))
    detail = {"width": size[0], "height": size[1], "ratio": round(ratio, 2)}
    return Item("odd_aspect_ratio", jpeg(image, 90), ".jpg", detail)


def make_too_small(rng: np.random.Generator, index: int) -> Item:
    short = int(rng.integers(16, 49))
    long = int(short * rng.uniform(1.0, 1.5))
    size = (long, short) if rng.random() < 0.7 else (short, long)
    image = cv2.resize(normal_exposure(rng, photo(rng)), size, interpolation=cv2.INTER_AREA)
    as_png = rng.random() < 0.3
    data = png(image) if as_png else jpeg(image, 90)
    return Item(
        "too_small", data, ".png" if as_png else ".jpg", {"width": size[0], "height": size[1]}
    )


def make_too_large(rng: np.random.Generator, index: int) -> Item:
    width, height = 8000, 7000
    image = normal_exposure(rng, photo(rng, width, height))
    return Item("too_large", jpeg(image, 85), ".jpg", {"width": width, "height": height})


def make_truncated(rng: np.random.Generator, index: int) -> Item:
    data = jpeg(normal_exposure(rng, photo(rng)), 90)
    keep = float(rng.uniform(0.3, 0.9))
    return Item("truncated_jpeg", data[: int(len(data) * keep)], ".jpg", {"kept": round(keep, 2)})


def make_png_checksum(rng: np.random.Generator, index: int) -> Item:
    """A PNG with one chunk failing its CRC: either the stored CRC or a data byte changed."""
    data = bytearray(png(normal_exposure(rng, photo(rng))))
    pos = png_chunk(bytes(data), b"IDAT")
    (length,) = struct.unpack_from(">I", data, pos)
    if index % 2 == 0:
        where = "crc"
        data[pos + 8 + length] ^= 0x5A
    else:
        where = "data"
        offset = pos + 8 + int(rng.integers(length // 4, length))
        data[offset] ^= 0x5A
    return Item("png_checksum", bytes(data), ".png", {"damaged": where})


def make_zero_bytes(rng: np.random.Generator, index: int) -> Item:
    return Item("zero_bytes", b"", ".jpg" if index % 2 == 0 else ".png")


def make_undecodable(rng: np.random.Generator, index: int) -> Item:
    """Random bytes or text saved under an image name."""
    if index % 3 == 2:
        text = "<html><body><h1>502 Bad Gateway</h1></body></html>\n" * int(rng.integers(1, 40))
        return Item("undecodable", text.encode(), ".png", {"kind": "text"})
    size = int(rng.integers(1_000, 200_000))
    junk = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    return Item("undecodable", junk, ".jpg", {"kind": "random"})


def make_bomb(rng: np.random.Generator, index: int) -> Item:
    """A small real image whose header declares a huge size (valid header, valid CRC)."""
    side = int(rng.integers(20_000, 60_000))
    small = normal_exposure(rng, photo(rng, 160, 120))
    if index % 2 == 0:
        real = png(small)
        pos = png_chunk(real, b"IHDR")
        body = b"IHDR" + struct.pack(">II", side, side) + real[pos + 16 : pos + 21]
        header = struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body))
        data = real[:pos] + header + real[pos + 25 :]
        ext = ".png"
    else:
        data = jpeg(small, 90)
        sof = data.index(b"\xff\xc0")
        data = data[: sof + 5] + struct.pack(">HH", side, side) + data[sof + 9 :]
        ext = ".jpg"
    return Item("decompression_bomb", data, ext, {"declared": f"{side}x{side}"})


def near_copies(
    rng: np.random.Generator, original: Pixels
) -> list[tuple[str, bytes, dict[str, Any]]]:
    """One JPEG copy of ``original`` per transform: (transform, bytes, detail).

    Crops keep 95 % / 90 % of the width and of the height at a random offset (a centred crop
    is one case of it); the offset, as a fraction of the side, is in the detail. Rotation turns
    about the centre and fills the corners by reflection.
    """
    h, w = original.shape[:2]
    copies: list[tuple[str, bytes, dict[str, Any]]] = []
    half = cv2.resize(original, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    copies.append(("resize50", jpeg(half, 90), {}))
    copies.append(("jpeg40", jpeg(original, 40), {}))
    for name, keep in (("crop5", 0.95), ("crop10", 0.90)):
        cw, ch = round(w * keep), round(h * keep)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        detail = {"keep": keep, "offset_x": round(x / w, 3), "offset_y": round(y / h, 3)}
        copies.append((name, jpeg(original[y : y + ch, x : x + cw], 90), detail))
    for name, gain in (("bright+20", 1.2), ("bright-20", 0.8)):
        changed = np.clip(original.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        copies.append((name, jpeg(changed, 90), {"gain": gain}))
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 3.0, 1.0)
    turned = cv2.warpAffine(original, matrix, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    copies.append(("rotate3", jpeg(turned, 90), {"degrees": 3.0}))
    return copies


MAKERS: dict[str, Callable[[np.random.Generator, int], Item]] = {
    "clean": make_clean,
    "blurry": make_blurry,
    "dark": make_dark,
    "overexposed": make_overexposed,
    "low_information": make_low_information,
    "grayscale_as_colour": make_grayscale,
    "odd_aspect_ratio": make_odd_aspect,
    "too_small": make_too_small,
    "too_large": make_too_large,
    "truncated_jpeg": make_truncated,
    "png_checksum": make_png_checksum,
    "zero_bytes": make_zero_bytes,
    "undecodable": make_undecodable,
    "decompression_bomb": make_bomb,
}


# ---- the corpus -------------------------------------------------------------------------------


def _streams(seed: int) -> Callable[[str, int], np.random.Generator]:
    """An independent random stream per (kind, index)."""

    def stream(kind: str, index: int) -> np.random.Generator:
        key = [seed, zlib.crc32(kind.encode()), index]
        return np.random.default_rng(np.random.SeedSequence(key))

    return stream


def accuracy_items(seed: int) -> list[Item]:
    """Every file of the accuracy corpus, in arrival order, named."""
    stream = _streams(seed)
    items: list[Item] = []
    for label, maker in MAKERS.items():
        items += [maker(stream(label, i), i) for i in range(COUNTS[label])]
    # exposure and sharpness hard cases (imported here: that module draws with photo())
    from bench.clean_bench.corpus_exposure import exposure_items

    items += exposure_items(stream)
    from bench.clean_bench.corpus_near import near_items

    items += near_items(stream, NEAR_SCENES)
    for i in range(COUNTS["exact_duplicate"]):
        rng = stream("exact_duplicate", i)
        original = jpeg(normal_exposure(rng, photo(rng)), int(rng.integers(80, 96)))
        group = f"exact-{i:03d}"
        items.append(Item("clean", original, ".jpg", {"width": 640, "height": 480}, group))
        pixels = cv2.imdecode(np.frombuffer(original, np.uint8), cv2.IMREAD_UNCHANGED)
        assert pixels is not None
        copy = Item("exact_duplicate", png(pixels), ".png", {}, group, "lossless_png")
        items.append(copy)
    for i in range(COUNTS["near_duplicate"]):
        rng = stream("near_duplicate", i)
        pixels = normal_exposure(rng, photo(rng))
        group = f"near-{i:03d}"
        items.append(Item("clean", jpeg(pixels, 90), ".jpg", {"width": 640, "height": 480}, group))
        for transform, data, detail in near_copies(rng, pixels):
            items.append(Item("near_duplicate", data, ".jpg", detail, group, transform))
    # Arrival order: shuffled, then within each duplicate group the original takes the
    # earliest of the group's places, so the first-arrived copy is always the original.
    order = np.random.default_rng(np.random.SeedSequence([seed, 1])).permutation(len(items))
    shuffled = [items[i] for i in order]
    groups: dict[str, list[int]] = {}
    for place, item in enumerate(shuffled):
        if item.group:
            groups.setdefault(item.group, []).append(place)
    for places in groups.values():
        members = sorted((shuffled[p] for p in places), key=lambda it: it.transform is not None)
        for place, member in zip(places, members, strict=True):
            shuffled[place] = member
    for place, item in enumerate(shuffled):
        item.name = f"img_{place:04d}{item.ext}"
    return shuffled


def throughput_items(seed: int, count: int) -> list[Item]:
    """Plain 640x480 JPEG photos, all different."""
    stream = _streams(seed)
    items = []
    for i in range(count):
        rng = stream("throughput", i)
        data = jpeg(normal_exposure(rng, photo(rng)), int(rng.integers(80, 96)))
        items.append(Item("clean", data, ".jpg", name=f"tp_{i:05d}.jpg"))
    return items


def kept_manifest(out: Path, params: dict[str, Any], force: bool) -> dict[str, Any] | None:
    """The manifest of a corpus already built with ``params`` (None: build it again)."""
    path = out / "manifest.json"
    if force or not path.exists():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest if manifest.get("params") == params else None


def emptied(out: Path) -> None:
    """An empty folder at ``out``, whatever was there before."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)


def build(
    throughput: int = 1500, seed: int = SEED, force: bool = False, out: Path = CORPUS
) -> dict[str, Any]:
    """The corpus manifest, generating the files first unless an identical corpus is there."""
    from bench.clean_bench import corpus_exposure

    params = {"version": VERSION, "seed": seed, "counts": COUNTS, "throughput": throughput}
    params["exposure_cases"] = corpus_exposure.VERSION
    params["near_cases"] = NEAR_SCENES
    kept = kept_manifest(out, params, force)
    if kept is not None:
        return kept
    started = time.perf_counter()
    print(f"generating the clean corpus in {out} (seed {seed})...", flush=True)
    emptied(out)
    images, fast = out / "images", out / "throughput"
    images.mkdir()
    fast.mkdir()
    files = []
    for item in accuracy_items(seed):
        (images / item.name).write_bytes(item.data)
        entry: dict[str, Any] = {"name": item.name, "label": item.label, "bytes": len(item.data)}
        if item.group:
            entry["group"] = item.group
        if item.transform:
            entry["transform"] = item.transform
        entry.update(item.detail)
        files.append(entry)
    originals = {f["group"]: f["name"] for f in files if f.get("group") and "transform" not in f}
    for entry in files:
        if "transform" in entry:
            entry["original"] = originals[entry["group"]]
    names = []
    for item in throughput_items(seed, throughput):
        (fast / item.name).write_bytes(item.data)
        names.append(item.name)
    manifest = {
        "params": params,
        "images_dir": "images",
        "throughput_dir": "throughput",
        "files": files,
        "throughput": names,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    elapsed = time.perf_counter() - started
    print(f"  {len(files)} labeled images + {len(names)} throughput JPEGs in {elapsed:.0f} s")
    return manifest


def main() -> None:
    """Build the corpus and print how many files of each label it holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throughput", type=int, default=1500, help="640x480 JPEGs to upload")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--force", action="store_true", help="regenerate even if present")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # run as a script: bench.clean_bench is imported by build
    manifest = build(args.throughput, args.seed, args.force)
    labels: dict[str, int] = {}
    for entry in manifest["files"]:
        key = entry["label"] + (f"/{entry['transform']}" if "transform" in entry else "")
        labels[key] = labels.get(key, 0) + 1
    for key, count in sorted(labels.items()):
        print(f"  {key:32} {count:>5}")
    print(f"  {'throughput JPEGs':32} {len(manifest['throughput']):>5}")


if __name__ == "__main__":
    main()
