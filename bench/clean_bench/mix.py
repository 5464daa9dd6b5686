"""A realistic mix: what clean costs on the sizes and formats people actually upload.

The 640x480 JPEGs of part 2 are the cheapest files clean ever sees. This part uploads a mix
instead, generated from one seed into ``bench/out/clean-mix/`` (kept while its parameters are
unchanged, ``manifest.json`` written last):

- about half 1920x1080, JPEG and PNG; half of those PNGs photo-like with sensor noise
  (3-5 MB each, since noise is what makes a PNG big);
- a quarter 640x480 (JPEG, some PNG);
- an eighth 4000x3000 JPEGs (a 12 MP phone or camera photo);
- the rest other shapes: 1280x720 and 2560x1440 JPEG, 1080x1920 portrait JPEG;
- a few 5-10 s videos: MJPEG in AVI and H.264 in MP4 (PyAV; x264 preset veryfast), 1280x720
  and 1920x1080, panning across a photo-like scene or a static noisy camera with a walker.

Six scene types, drawn per file: shapes and textures (``clean_corpus.photo``), a subject on a
plain backdrop, a printed document, dense foliage, sky over a horizon, a street at night.
Files are shuffled (by the seed) so that sizes and kinds interleave as uploads would.

What it measures (``in_process_costs``): CPU per file of the service's own analysis in this
process, one file at a time: ``analyze_image`` with the default policy's thresholds for images,
``measuring.check_video_file`` (the checks, and frame sampling when the policy accepts the
video) for videos. That is the floor the clean service's CPU per file is compared with in the
end-to-end run (``throughput.end_to_end``), target ratio <= 1.5.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from bench.clean_corpus import emptied, jpeg, kept_manifest, photo, png, subject_on_backdrop
from bench.clean_video import footage, static_camera
from services.clean.checks import analyze_image
from services.clean.policy import PolicyRules
from services.clean.settings import CleanSettings
from services.clean.use_cases.measuring import check_video_file

from . import throughput
from .stack import ROOT

MIX = ROOT / "bench" / "out" / "clean-mix"
VERSION = 1
SEED = 20261202
WARMUP = "warmup.jpg"

Pixels = NDArray[np.uint8]


@dataclass(frozen=True)
class Slot:
    """One file of the mix before it is made: its kind (the report's row), size and format."""

    kind: str
    width: int
    height: int
    ext: str  # .jpg, .png, .avi, .mp4


# ---- scenes -------------------------------------------------------------------------------------


def noisy(image: NDArray[Any], sigma: float, rng: np.random.Generator) -> Pixels:
    """The picture with Gaussian sensor noise of ``sigma`` levels."""
    out = image.astype(np.float32) + rng.normal(0, sigma, image.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def document(rng: np.random.Generator, width: int, height: int) -> Pixels:
    """A printed page photographed: off-white paper, lines of dark text, a shadowed edge."""
    paper = rng.uniform(215, 245)
    page = np.full((height, width, 3), round(paper), np.uint8)
    scale = max(width, height) / 1000
    line_height = int(rng.uniform(22, 34) * scale)
    margin = int(width * rng.uniform(0.06, 0.12))
    alphabet = "abcdefghijklmnopqrstuvwxyz      ABCDEFGHIJ0123456789.,"
    for y in range(margin + line_height, height - margin, line_height):
        words = "".join(alphabet[i] for i in rng.integers(0, len(alphabet), 80))
        cv2.putText(
            page, words, (margin, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (30, 30, 35), 1
        )
    shade = np.linspace(rng.uniform(0.7, 0.9), 1.0, width, dtype=np.float32)[None, :, None]
    return noisy(page.astype(np.float32) * shade, rng.uniform(1.5, 3.0), rng)


def foliage(rng: np.random.Generator, width: int, height: int) -> Pixels:
    """Dense leaves and grass: noise at three scales over green-brown tints."""
    texture = np.zeros((height, width), np.float32)
    for sigma, weight in ((1.0, 40.0), (4.0, 50.0), (16.0, 60.0)):
        white = rng.normal(0, 1, (height, width)).astype(np.float32)
        layer = np.asarray(cv2.GaussianBlur(white, (0, 0), sigma), np.float32)
        texture += layer / (layer.std() + 1e-6) * weight
    tint = rng.uniform((40, 90, 30), (90, 160, 90)).astype(np.float32)  # BGR
    image = tint[None, None, :] + texture[:, :, None] * np.float32(0.6)
    return noisy(image, rng.uniform(2.0, 5.0), rng)


def sky(rng: np.random.Generator, width: int, height: int) -> Pixels:
    """A clear-to-hazy sky over a dark horizon with a few soft clouds."""
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    top = rng.uniform((150, 90, 40), (230, 160, 110)).astype(np.float32)
    low = rng.uniform((200, 190, 170), (250, 240, 230)).astype(np.float32)
    image = np.ascontiguousarray(np.broadcast_to(top * (1 - rows) + low * rows, (height, width, 3)))
    clouds = np.zeros((height, width), np.float32)
    for _ in range(int(rng.integers(2, 8))):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height // 2)))
        axes = (int(rng.uniform(0.05, 0.2) * width), int(rng.uniform(0.02, 0.06) * height))
        cv2.ellipse(clouds, centre, axes, 0, 0, 360, 230.0, -1)
    clouds = np.asarray(cv2.GaussianBlur(clouds, (0, 0), height * 0.015 + 1), np.float32)
    image = np.maximum(image, clouds[:, :, None])
    horizon = int(height * rng.uniform(0.55, 0.8))
    xs = np.linspace(0, width, 24).astype(np.int32)
    ys = horizon + rng.normal(0, height * 0.03, 24).astype(np.int32)
    ground = np.array([[0, height], *zip(xs, ys, strict=True), [width, height]], np.int32)
    cv2.fillPoly(image, [ground], tuple(float(c) for c in rng.uniform(10, 60, 3)))
    return noisy(image, rng.uniform(1.0, 3.0), rng)


def night(rng: np.random.Generator, width: int, height: int) -> Pixels:
    """A street at night: dim shapes, bright lamps with glow, high-ISO noise."""
    image = photo(rng, width, height).astype(np.float32) * np.float32(rng.uniform(0.3, 0.45))
    glow = np.zeros_like(image)
    for _ in range(int(rng.integers(4, 12))):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        radius = int(rng.uniform(0.005, 0.02) * max(width, height)) + 1
        cv2.circle(glow, centre, radius, tuple(float(c) for c in rng.uniform(180, 255, 3)), -1)
    image += cv2.GaussianBlur(glow, (0, 0), max(width, height) / 150) * 1.5 + glow
    return noisy(image, rng.uniform(5.0, 9.0), rng)


SCENES: dict[str, Callable[[np.random.Generator, int, int], Pixels]] = {
    "shapes": photo,
    "subject": subject_on_backdrop,
    "document": document,
    "foliage": foliage,
    "sky": sky,
    "night": night,
}


# ---- the plan -----------------------------------------------------------------------------------


def plan(images: int, videos: int, seed: int) -> list[Slot]:
    """Which files the mix holds, in upload order (shuffled by the seed)."""
    half, quarter, eighth = images // 2, images // 4, images // 8
    slots: list[Slot] = []
    for i in range(half):
        # 1080p: half JPEG, a quarter clean-ish PNG, a quarter noisy photo-like PNG
        kind = ("1080p jpeg", "1080p png", "1080p jpeg", "1080p noisy png")[i % 4]
        slots.append(Slot(kind, 1920, 1080, ".png" if "png" in kind else ".jpg"))
    for i in range(quarter):
        kind, ext = ("640x480 png", ".png") if i % 4 == 3 else ("640x480 jpeg", ".jpg")
        slots.append(Slot(kind, 640, 480, ext))
    slots += [Slot("4000x3000 jpeg", 4000, 3000, ".jpg") for _ in range(eighth)]
    others = ((1280, 720), (1080, 1920), (2560, 1440))
    for i in range(images - len(slots)):
        width, height = others[i % len(others)]
        slots.append(Slot("other jpeg", width, height, ".jpg"))
    for i in range(videos):
        width, height = ((1280, 720), (1920, 1080))[(i // 2) % 2]
        kind, ext = ("mjpeg avi", ".avi") if i % 2 == 0 else ("h264 mp4", ".mp4")
        slots.append(Slot(kind, width, height, ext))
    order = np.random.default_rng([seed, 0]).permutation(len(slots))
    return [slots[int(i)] for i in order]


def _picture(rng: np.random.Generator, slot: Slot) -> tuple[str, Pixels]:
    scene = str(rng.choice(list(SCENES)))
    if slot.kind == "1080p noisy png":
        scene = str(rng.choice(["shapes", "foliage", "night"]))
    if slot.width * slot.height > 4_000_000:
        # a phone's 12 MP: drawn at half size and scaled up (soft at the pixel level, as such
        # photos are), then its own sensor noise; a quarter of the time to generate
        half = SCENES[scene](rng, slot.width // 2, slot.height // 2)
        full = cv2.resize(half, (slot.width, slot.height), interpolation=cv2.INTER_CUBIC)
        image = noisy(full, rng.uniform(1.5, 3.0), rng)
    else:
        image = SCENES[scene](rng, slot.width, slot.height)
    if slot.kind == "1080p noisy png":
        image = noisy(image, rng.uniform(4.0, 7.0), rng)
    return scene, image


def _image(rng: np.random.Generator, slot: Slot, path: Path) -> dict[str, Any]:
    scene, image = _picture(rng, slot)
    data = png(image) if slot.ext == ".png" else jpeg(image, int(rng.integers(82, 96)))
    path.write_bytes(data)
    return {"scene": scene}


def _video(rng: np.random.Generator, slot: Slot, path: Path) -> dict[str, Any]:
    seconds = float(rng.uniform(5.0, 10.0))
    rate = int(rng.choice([25, 30]))
    count = round(seconds * rate)
    scene = "static" if rng.uniform() < 0.3 else "pan"
    if scene == "static":
        pictures = static_camera(rng, slot.width, slot.height, count)
    else:
        pictures = footage(rng, slot.width, slot.height, count)  # RGB
    if slot.ext == ".avi":
        # about 150 KB a frame at 1080p, 70 KB at 720p: a camera's MJPEG at quality 80-90
        bit_rate = round(slot.width * slot.height * rate * rng.uniform(0.5, 0.7))
        _encode(path, pictures, rate, "mjpeg", "yuvj420p", bit_rate)
    else:
        bit_rate = round(slot.width * slot.height * rate * rng.uniform(0.12, 0.2))
        _encode(path, pictures, rate, "libx264", "yuv420p", bit_rate, {"preset": "veryfast"})
    return {"scene": scene, "seconds": round(seconds, 2), "rate": rate}


def _encode(
    path: Path,
    pictures: list[Pixels],
    rate: int,
    codec: str,
    pix_fmt: str,
    bit_rate: int,
    options: dict[str, str] | None = None,
) -> None:
    """Encode RGB ``pictures`` with PyAV (the container follows the file name)."""
    height, width = pictures[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, options=options or {})
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.bit_rate = bit_rate
        for picture in pictures:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode())


def build(
    images: int = 200, videos: int = 6, seed: int = SEED, force: bool = False, out: Path = MIX
) -> dict[str, Any]:
    """The mix's manifest, generating the files first unless an identical mix is there."""
    params = {"version": VERSION, "seed": seed, "images": images, "videos": videos}
    kept = kept_manifest(out, params, force)
    if kept is not None:
        return kept
    started = time.perf_counter()
    print(f"generating the realistic mix in {out} (seed {seed})...", flush=True)
    emptied(out)
    files = []
    for index, slot in enumerate(plan(images, videos, seed)):
        rng = np.random.default_rng([seed, 1, index])
        name = f"mix_{index:04d}{slot.ext}"
        make = _video if slot.ext in (".avi", ".mp4") else _image
        detail = make(rng, slot, out / name)
        files.append(
            {
                "name": name,
                "kind": slot.kind,
                "size": f"{slot.width}x{slot.height}",
                "bytes": (out / name).stat().st_size,
                **detail,
            }
        )
    manifest = {"params": params, "files": files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    total = sum(f["bytes"] for f in files) / 1e6
    print(f"  {len(files)} files, {total:.0f} MB in {time.perf_counter() - started:.0f} s")
    return manifest


# ---- in-process floor ---------------------------------------------------------------------------


def in_process_costs(manifest: dict[str, Any], folder: Path = MIX) -> dict[str, Any]:
    """CPU of the service's own analysis per file, here, one file at a time, by kind.

    A video's cost includes analysing the frames sampled from it: they come back to clean as
    image assets of their own. OpenCV's thread pool is off, as in the service; FFmpeg's frame
    threads count (process CPU time), as they do in the service.
    """
    rules, settings = PolicyRules(), CleanSettings()
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    spent: defaultdict[str, list[float]] = defaultdict(list)
    sizes: defaultdict[str, list[int]] = defaultdict(list)
    frames = 0
    try:
        for entry in manifest["files"][:10]:  # first-call costs of OpenCV, NumPy and FFmpeg
            _analyze(folder / entry["name"], rules, settings)
        for entry in manifest["files"]:
            started = time.process_time()
            frames += _analyze(folder / entry["name"], rules, settings)
            spent[entry["kind"]].append(time.process_time() - started)
            sizes[entry["kind"]].append(entry["bytes"])
    finally:
        cv2.setNumThreads(threads)
    kinds = {
        kind: {
            "files": len(cpu),
            "mean_mb": sum(sizes[kind]) / len(cpu) / 1e6,
            "cpu_ms_per_file": sum(cpu) / len(cpu) * 1000,
            "cpu_s": sum(cpu),
        }
        for kind, cpu in sorted(spent.items())
    }
    total = sum(k["cpu_s"] for k in kinds.values())
    files = sum(k["files"] for k in kinds.values())
    return {
        "files": files,
        "megabytes": sum(sum(s) for s in sizes.values()) / 1e6,
        "sampled_frames": frames,
        "cpu_s": total,
        "cpu_ms_per_file": total / files * 1000,
        "kinds": kinds,
    }


def _analyze(path: Path, rules: PolicyRules, settings: CleanSettings) -> int:
    """Analyse one file as the service does; how many frames it sampled (videos)."""
    if path.suffix not in (".avi", ".mp4"):
        analyze_image(path.read_bytes(), rules.threshold_set())
        return 0
    _, frames = check_video_file(str(path), rules, settings)
    for frame in frames:
        analyze_image(frame.jpeg, rules.threshold_set())
    return len(frames)


def warmup_picture(seed: int = SEED) -> Path:
    """A picture outside the mix, to take the first asset's costs before timing."""
    path = MIX / WARMUP
    if not path.exists():
        path.write_bytes(jpeg(photo(np.random.default_rng([seed, 2])), 90))
    return path


def run(
    images: int, videos: int, concurrency: int, per_request: int, skip_e2e: bool = False
) -> dict[str, Any]:
    """The mix's figures: corpus, in-process floor, and the stack end to end."""
    manifest = build(images, videos)
    files = paths(manifest)
    print("4. realistic mix: the service's analysis in-process...", flush=True)
    local = in_process_costs(manifest)
    print(f"  {local['cpu_s']:.1f} CPU s for {local['files']} files", flush=True)
    if skip_e2e:
        e2e: dict[str, Any] = {"na": "skipped (--skip-e2e)"}
    else:
        e2e = throughput.end_to_end(
            files, warmup_picture(), concurrency, per_request, [], 0.0, local["sampled_frames"]
        )
    kinds: defaultdict[str, int] = defaultdict(int)
    for entry in manifest["files"]:
        kinds[entry["kind"]] += 1
    ratio = None if "na" in e2e else e2e["clean_cpu_s"] / local["cpu_s"]
    return {
        "corpus": {
            "path": str(MIX.relative_to(ROOT)),
            "params": manifest["params"],
            "kinds": dict(kinds),
            "megabytes": local["megabytes"],
        },
        "in_process": local,
        "end_to_end": e2e,
        "clean_cpu_ratio": ratio,
    }


def paths(manifest: dict[str, Any], folder: Path = MIX) -> list[Path]:
    """The mix's files in upload order."""
    return [folder / f["name"] for f in manifest["files"]]
