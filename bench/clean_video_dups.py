"""Clean benchmark, duplicate videos: recall per edit, pair precision, time-range error, cost.

The corpus is generated on the spot into ``bench/out/clean-video-dups/`` (nothing downloaded):
``SOURCES`` source clips of five scene kinds (a pan across a photo-like scene, a hand-held pan
with shake, a slow zoom, a static camera with one or two subjects walking, shapes bouncing over
a still picture), 6-12 s, 24/25/30 fps, 320x240 to 640x360, MPEG-4 Part 2 in MP4 or H.264 in
Matroska. Every source is then edited by decoding and re-encoding it (each edit one copy):

- ``reencode``: the other codec and container, 300-800 kb/s;
- ``resize``: half (or two thirds of) the size, same codec;
- ``trim_start`` / ``trim_end`` / ``trim_both``: 1-3 s cut off (not a multiple of the sampling
  period);
- ``combo``: both ends trimmed, resized, the other codec at a low rate, and another frame rate.

Hard negatives, none of which may match anything: ``same_backdrop`` (the same scene kind on the
same backdrop, other motion: for static cameras, other subjects on other paths), ``slideshow``
(4-5 stills of a source, each held 1.5-2.5 s), ``black_intro`` (pairs of short clips that open
on the same second of black), ``few_frames`` (0.75 s of a source, then other footage).

Arrival order: sources first, then copies and negatives shuffled. Each clip is analysed with
:func:`analyze_video` (the service's one decode pass) and looked up in a
:class:`~services.clean.video_index.DatasetVideos` before joining it, as the service does.
A reported pair is right when both clips come from one source. Every negative is also aligned
directly with the source it imitates (``align``), so a false match the candidate search hides
still counts.

Cost: the fingerprint's share of the decode pass (hash and block means per sample, times
samples), and lookup time at 1 000 and 10 000 videos (the corpus's signatures repeated with
their hashes scrambled per copy, so they keep the structure of real clips but match nothing).

Run alone: ``.venv/bin/python bench/clean_video_dups.py [--force] [--sources N] [--seed N]``;
another seed makes (and keeps) its own corpus in ``clean-video-dups-seed<N>/`` and writes
``clean_video_dups-seed<N>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.clean_corpus import photo  # noqa: E402
from services.clean.checks.video import analyze_video  # noqa: E402
from services.clean.checks.video.fingerprint import (  # noqa: E402
    FINE,
    MIN_OVERLAP_SECONDS,
    SAMPLE_PERIOD,
    FrameHasher,
    VideoSignature,
    align,
    block_means,
    frame_hash,
)
from services.clean.video_index import DatasetVideos, StoredSignature  # noqa: E402

Pixels = NDArray[np.uint8]
OUT = ROOT / "bench" / "out" / "clean-video-dups"  # the default seed's corpus
SEED = 7
SOURCES = 30
KINDS = ("pan", "handheld", "zoom", "walkers", "shapes")
EDITS = ("reencode", "resize", "trim_start", "trim_end", "trim_both", "combo")
SIZES = ((320, 240), (480, 270), (640, 360), (400, 300))
RATES: tuple[int | Fraction, ...] = (25, 30, 24, Fraction(30000, 1001))
FORMATS = (("mp4", "mpeg4"), ("mkv", "libx264"))
TARGET_RECALL, TARGET_PRECISION = 0.9, 0.99


# ---- pictures ---------------------------------------------------------------------------------


def backdrop(seed: int, width: int, height: int) -> Pixels:
    """A photo-like RGB picture, the same for the same seed."""
    return np.ascontiguousarray(photo(np.random.default_rng(seed), width, height)[:, :, ::-1])


def _bounce(position: float, span: float) -> float:
    folded = position % (2 * span) if span > 0 else 0.0
    return folded if folded <= span else 2 * span - folded


def scene_frames(
    kind: str, scene_seed: int, motion_seed: int, width: int, height: int, times: list[float]
) -> Iterator[Pixels]:
    """Frames of one scene kind at ``times`` (seconds): the backdrop follows ``scene_seed``,
    the motion ``motion_seed``."""
    motion = np.random.default_rng(motion_seed)
    if kind in ("pan", "handheld"):
        big = backdrop(scene_seed, int(width * 1.8), int(height * 1.6))
        speed = motion.uniform(0.25, 0.7) * width
        angle = motion.uniform(0, 2 * np.pi)
        x0, y0 = motion.uniform(0, 0.8 * width), motion.uniform(0, 0.6 * height)
        shake = 4.0 if kind == "handheld" else 0.0
        phases = motion.uniform(0, 6, 2)
        for t in times:
            x = _bounce(x0 + speed * np.cos(angle) * t, 0.8 * width)
            y = _bounce(y0 + speed * np.sin(angle) * t, 0.6 * height)
            x += shake * np.sin(7.3 * t + phases[0])
            y += shake * np.sin(5.1 * t + phases[1])
            left = int(np.clip(x, 0, 0.8 * width))
            top = int(np.clip(y, 0, 0.6 * height))
            yield np.ascontiguousarray(big[top : top + height, left : left + width])
    elif kind == "zoom":
        big = backdrop(scene_seed, width * 2, height * 2)
        cx, cy = motion.uniform(0.35, 0.65, 2)
        rate = motion.uniform(0.04, 0.09) * (1 if motion.random() < 0.5 else -1)
        for t in times:
            scale = float(np.clip(1.0 - (0.1 + rate * t if rate > 0 else 0.9 + rate * t), 0.3, 1.0))
            w, h = 2 * width * scale, 2 * height * scale
            left = int(np.clip(cx * 2 * width - w / 2, 0, 2 * width - w))
            top = int(np.clip(cy * 2 * height - h / 2, 0, 2 * height - h))
            crop = big[top : top + int(h), left : left + int(w)]
            yield np.asarray(
                cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA), np.uint8
            )
    elif kind == "walkers":
        still = backdrop(scene_seed, width, height).astype(np.float32)
        noise_rng = np.random.default_rng(motion_seed + 1)
        people = []
        for _ in range(int(motion.integers(1, 3))):
            w, h = int(width * motion.uniform(0.07, 0.12)), int(height * motion.uniform(0.25, 0.4))
            people.append(
                (
                    w,
                    h,
                    motion.uniform(20, 235, 3),
                    int(motion.integers(height // 4, height - h)),
                    motion.uniform(0, width),
                    motion.uniform(0.12, 0.3) * width * (1 if motion.random() < 0.5 else -1),
                )
            )
        for t in times:
            picture = still + noise_rng.normal(0, 2.5, still.shape).astype(np.float32)
            for w, h, colour, top, start, pace in people:
                left = int(_bounce(start + pace * t, width - w))
                picture[top : top + h, left : left + w] = colour
            yield np.clip(picture, 0, 255).astype(np.uint8)
    else:  # shapes
        picture_0 = backdrop(scene_seed, width, height)
        balls = [
            (
                float(motion.uniform(0, width)),
                float(motion.uniform(0, height)),
                (
                    float(motion.uniform(-0.5, 0.5)) * width,
                    float(motion.uniform(-0.5, 0.5)) * width,
                ),
                int(motion.integers(height // 14, height // 6)),
                tuple(float(c) for c in motion.integers(0, 256, 3)),
            )
            for _ in range(int(motion.integers(2, 5)))
        ]
        for t in times:
            drawn = picture_0.copy()
            for x, y, (vx, vy), radius, paint in balls:
                centre = (int(_bounce(x + vx * t, width)), int(_bounce(y + vy * t, height)))
                cv2.circle(drawn, centre, radius, paint, -1, cv2.LINE_AA)
            yield drawn


# ---- encoding and editing -----------------------------------------------------------------------


def encode(
    path: Path,
    frames: Iterator[Pixels],
    rate: int | Fraction,
    codec: str,
    bit_rate: int,
) -> None:
    """Write RGB frames as a clip (kept if already made: every random choice is drawn before
    this call, so the corpus is the same either way; --force starts afresh)."""
    if path.exists():
        return
    partial = path.with_name(f".{path.name}")
    with av.open(str(partial), "w", format=_MUXERS[path.suffix]) as container:
        stream = container.add_stream(codec, rate=rate)
        assert isinstance(stream, av.VideoStream)
        first = next(frames)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt, stream.bit_rate = "yuv420p", bit_rate
        for picture in _chain(first, frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode())
    partial.rename(path)


_MUXERS = {".mp4": "mp4", ".mkv": "matroska"}


def _chain(first: Pixels, rest: Iterator[Pixels]) -> Iterator[Pixels]:
    yield first
    yield from rest


def decoded(path: Path) -> Iterator[tuple[float, Pixels]]:
    """A clip's frames as (seconds from its first frame, RGB)."""
    with av.open(str(path)) as container:
        origin: float | None = None
        for frame in container.decode(video=0):
            moment = float(frame.time or 0.0)
            origin = moment if origin is None else origin
            yield moment - origin, np.asarray(frame.to_ndarray(format="rgb24"), np.uint8)


def edited(
    source: Path,
    start: float,
    end: float,
    rate: float,
    size: tuple[int, int] | None,
) -> Iterator[Pixels]:
    """The source's footage from ``start`` to ``end`` seconds, resampled to ``rate`` (the frame
    on screen at each output time) and resized to ``size``."""
    step, index = 1.0 / rate, 0
    shown: Pixels | None = None
    for moment, picture in decoded(source):
        # 2 ms: Matroska rounds times to milliseconds, so a frame may read 0.267 for 0.2667
        while shown is not None and start + index * step < moment - 2e-3:
            if start + index * step >= end - 1e-6:
                return
            yield shown
            index += 1
        if size is not None:
            picture = np.asarray(cv2.resize(picture, size, interpolation=cv2.INTER_AREA), np.uint8)
        shown = picture
    while shown is not None and start + index * step < end - 1e-6:
        yield shown
        index += 1


@dataclass
class Clip:
    """One clip of the corpus: its family (the source it comes from; negatives have their own),
    what it is, and where its footage sits in the family's source (source time = clip time +
    ``offset``, over ``start``-``end`` of the source)."""

    name: str
    family: str
    label: str
    path: Path
    offset: float = 0.0
    start: float = 0.0
    end: float = 0.0
    imitates: str | None = None  # the source a negative imitates
    extra: dict[str, Any] = field(default_factory=dict)


def build(seed: int, sources: int, out: Path) -> list[Clip]:
    """Generate the corpus (sources, copies, negatives) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    clips: list[Clip] = []
    for index in range(sources):
        kind = KINDS[index % len(KINDS)]
        width, height = SIZES[index % len(SIZES)]
        rate = RATES[index % len(RATES)]
        ext, codec = FORMATS[index % 2]
        seconds = float(rng.uniform(6, 12))
        scene_seed, motion_seed = int(rng.integers(1 << 30)), int(rng.integers(1 << 30))
        count = round(seconds * float(rate))
        times = [f / float(rate) for f in range(count)]
        path = out / f"src{index:02d}.{ext}"
        encode(
            path,
            scene_frames(kind, scene_seed, motion_seed, width, height, times),
            rate,
            codec,
            2_000_000,
        )
        duration = count / float(rate)
        family = f"src{index:02d}"
        clips.append(Clip(family, family, "source", path, 0.0, 0.0, duration, extra={"kind": kind}))
        other_ext, other_codec = FORMATS[(index + 1) % 2]
        for edit in EDITS:
            cut_start = (
                float(rng.uniform(1, 3)) if edit in ("trim_start", "trim_both", "combo") else 0.0
            )
            cut_end = (
                float(rng.uniform(1, 3)) if edit in ("trim_end", "trim_both", "combo") else 0.0
            )
            size = None
            if edit in ("resize", "combo"):
                factor = 0.5 if rng.random() < 0.5 else 2 / 3
                size = (int(width * factor) // 2 * 2, int(height * factor) // 2 * 2)
            out_rate: int | Fraction = rate
            if edit == "combo":
                out_rate = RATES[(index + 1 + int(rng.integers(0, 3))) % len(RATES)]
            use_ext, use_codec = (
                (other_ext, other_codec) if edit in ("reencode", "combo") else (ext, codec)
            )
            bit_rate = (
                int(rng.integers(300_000, 800_000)) if edit in ("reencode", "combo") else 1_500_000
            )
            copy = out / f"src{index:02d}_{edit}.{use_ext}"
            encode(
                copy,
                edited(path, cut_start, duration - cut_end, float(out_rate), size),
                out_rate,
                use_codec,
                bit_rate,
            )
            clips.append(
                Clip(copy.stem, family, edit, copy, cut_start, cut_start, duration - cut_end)
            )
        # same place or scenery, other motion
        negative = out / f"neg{index:02d}_same_backdrop.{ext}"
        encode(
            negative,
            scene_frames(kind, scene_seed, motion_seed + 17, width, height, times),
            rate,
            codec,
            2_000_000,
        )
        clips.append(Clip(negative.stem, negative.stem, "same_backdrop", negative, imitates=family))
        if index % 3 == 0:  # a slideshow of stills from the source
            stills = sorted(rng.uniform(0, duration - 0.5, int(rng.integers(4, 6))))
            holds = [float(rng.uniform(1.5, 2.5)) for _ in stills]
            pictures = dict(
                (round(t, 3), p)
                for t, p in decoded(path)
                if any(abs(t - s) < 0.5 / float(rate) for s in stills)
            )
            frames = [
                pictures[min(pictures, key=lambda k: abs(k - s))]
                for s, hold in zip(stills, holds, strict=True)
                for _ in range(round(hold * 25))
            ]
            show = out / f"neg{index:02d}_slideshow.mp4"
            encode(show, iter(frames), 25, "mpeg4", 1_500_000)
            clips.append(Clip(show.stem, show.stem, "slideshow", show, imitates=family))
        if index % 3 == 1:  # 0.75 s of the source, then other footage
            other_kind = KINDS[(index + 2) % len(KINDS)]
            begin = float(rng.uniform(0, duration - 1))
            borrowed = list(edited(path, begin, begin + 0.75, 25.0, None))
            later = [i / 25 for i in range(100)]
            rest = scene_frames(other_kind, scene_seed + 5, motion_seed + 5, width, height, later)
            mixed = out / f"neg{index:02d}_few_frames.mp4"
            encode(mixed, _chain(borrowed[0], iter([*borrowed[1:], *rest])), 25, "mpeg4", 1_500_000)
            clips.append(Clip(mixed.stem, mixed.stem, "few_frames", mixed, imitates=family))
        if index % 3 == 2:  # two short clips opening on the same second of black
            for part in range(2):
                black = [np.zeros((height, width, 3), np.uint8)] * 25
                later = [i / 25 for i in range(50)]
                rest = scene_frames(
                    KINDS[(index + part) % len(KINDS)],
                    scene_seed + 9 + part,
                    motion_seed + part,
                    width,
                    height,
                    later,
                )
                short = out / f"neg{index:02d}_black_intro{part}.mp4"
                encode(short, _chain(black[0], iter([*black[1:], *rest])), 25, "mpeg4", 1_500_000)
                clips.append(Clip(short.stem, short.stem, "black_intro", short))
    return clips


# ---- scoring -------------------------------------------------------------------------------------


def fingerprint_of(path: Path) -> tuple[VideoSignature, float]:
    """A clip's signature from the decode pass, timed from its start, and the pass's seconds."""
    began = time.perf_counter()
    report = analyze_video(path)
    spent = time.perf_counter() - began
    scan = report.scan
    if scan is None or scan.fingerprint is None or scan.first_timestamp is None:
        raise RuntimeError(f"{path.name} did not decode")
    return scan.fingerprint.from_start(scan.first_timestamp, scan.decoded_duration), spent


def truth(new: Clip, old: Clip) -> tuple[float, float, float, float]:
    """The shared footage of two clips of one family: (new start, new end, old start, old end)."""
    start, end = max(new.start, old.start), min(new.end, old.end)
    return start - new.offset, end - new.offset, start - old.offset, end - old.offset


def score(clips: list[Clip], seed: int) -> dict[str, Any]:
    """Look every clip up in arrival order, then score pairs, edits, ranges and negatives."""
    rng = np.random.default_rng(seed + 1)
    sources = [c for c in clips if c.label == "source"]
    rest = [c for c in clips if c.label != "source"]
    order = [sources[i] for i in rng.permutation(len(sources))] + [
        rest[i] for i in rng.permutation(len(rest))
    ]
    signatures: dict[str, VideoSignature] = {}
    decode_seconds: list[float] = []
    index = DatasetVideos()
    ids = {c.name: uuid.uuid5(uuid.NAMESPACE_URL, c.name) for c in clips}
    by_id = {ids[c.name]: c for c in clips}
    pairs: list[dict[str, Any]] = []
    lookups: list[float] = []
    for arrival, clip in enumerate(order, start=1):
        signature, spent = fingerprint_of(clip.path)
        signatures[clip.name] = signature
        decode_seconds.append(spent)
        began = time.perf_counter()
        found = index.find(signature)
        lookups.append(time.perf_counter() - began)
        index.add(StoredSignature(arrival, ids[clip.name], signature))
        if found is None:
            continue
        old = by_id[found.asset_id]
        o = found.overlap
        pair: dict[str, Any] = {
            "new": clip.name,
            "old": old.name,
            "label": clip.label,
            "right": old.family == clip.family,
            "found": [o.start, o.end, o.other_start, o.other_end],
        }
        if pair["right"]:
            expected = truth(clip, old)
            pair["expected"] = [round(v, 3) for v in expected]
            pair["error"] = round(
                max(abs(a - b) for a, b in zip(pair["found"], expected, strict=True)), 3
            )
        pairs.append(pair)
    recall = {}
    for edit in EDITS:
        copies = [c for c in clips if c.label == edit]
        hit = {p["new"] for p in pairs if p["label"] == edit and p["right"]}
        # copies shorter than the minimum shared footage cannot be reported by design
        short = [c for c in copies if c.end - c.start < MIN_OVERLAP_SECONDS]
        recall[edit] = {
            "n": len(copies),
            "found": len(hit),
            "recall": len(hit) / len(copies),
            "under_minimum": len(short),
            "under_minimum_found": sum(c.name in hit for c in short),
        }
    right = sum(p["right"] for p in pairs)
    errors = [p["error"] for p in pairs if "error" in p]
    negatives = [c for c in clips if c.imitates is not None]
    direct_false = []
    for clip in negatives:
        overlap = align(signatures[clip.name], signatures[clip.imitates or ""])
        if overlap is not None:
            direct_false.append(
                {
                    "negative": clip.name,
                    "overlap": [overlap.start, overlap.end, overlap.other_start, overlap.other_end],
                }
            )
    per_negative: dict[str, int] = {}
    for c in clips:
        if c.label in ("same_backdrop", "slideshow", "few_frames", "black_intro"):
            per_negative[c.label] = per_negative.get(c.label, 0) + 1
    return {
        "clips": len(clips),
        "recall": recall,
        "pairs": len(pairs),
        "right_pairs": right,
        "precision": right / len(pairs) if pairs else 1.0,
        "false_pairs": [p for p in pairs if not p["right"]],
        "negatives": per_negative,
        "direct_negative_alignments": len(negatives),
        "direct_false_matches": direct_false,
        "range_error_seconds": _spread(errors),
        "missed": [
            c.name
            for c in clips
            if c.label in EDITS and c.name not in {p["new"] for p in pairs if p["right"]}
        ],
        "lookup_ms_corpus": _spread([s * 1000 for s in lookups]),
        "decode_ms_per_clip": _spread([s * 1000 for s in decode_seconds]),
        "samples_per_clip": statistics.mean(len(s) for s in signatures.values()),
        "signatures": signatures,
    }


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "p50": round(ordered[len(ordered) // 2], 3),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
        "max": round(ordered[-1], 3),
    }


def signature_cost(rng: np.random.Generator, samples: int = 2000) -> float:
    """Milliseconds to hash one sample (hash, 8 x 8 and 16 x 16 block means of a 64 x 64
    thumbnail)."""
    thumbnails = rng.integers(0, 256, (samples, 64, 64), dtype=np.uint8)
    began = time.perf_counter()
    for thumbnail in thumbnails:
        frame_hash(thumbnail)
        block_means(thumbnail)
        block_means(thumbnail, FINE)
    return (time.perf_counter() - began) * 1000 / samples


def fingerprint_overhead(paths: list[Path], rounds: int = 3) -> dict[str, float]:
    """CPU milliseconds of the decode pass per clip with the fingerprint and without it (the
    hasher's ``add`` made a no-op), interleaved so both see the same machine load."""
    with_it: list[float] = []
    without: list[float] = []
    keep = FrameHasher.add
    try:
        for _ in range(rounds):
            for path in paths:
                for enabled, spent in ((True, with_it), (False, without)):
                    FrameHasher.add = keep if enabled else _ignored  # type: ignore[method-assign]
                    began = time.process_time()
                    analyze_video(path)
                    spent.append((time.process_time() - began) * 1000)
    finally:
        FrameHasher.add = keep  # type: ignore[method-assign]
    mean_with, mean_without = statistics.mean(with_it), statistics.mean(without)
    return {
        "with_ms": round(mean_with, 1),
        "without_ms": round(mean_without, 1),
        "ratio": round(mean_with / mean_without, 3),
    }


def _ignored(self: FrameHasher, timestamp: float | None, thumbnail: Pixels) -> None:
    """A hasher that keeps nothing (the peer of the overhead measurement)."""


def lookup_cost(
    signatures: list[VideoSignature], sizes: tuple[int, ...], rng: np.random.Generator
) -> dict[str, dict[str, float]]:
    """Lookup milliseconds (p50, p95) of the corpus's clips in datasets of ``sizes`` videos
    that hold none of their footage (corpus signatures, hashes scrambled per copy)."""
    figures = {}
    for size in sizes:
        index = DatasetVideos()
        for position in range(size):
            model = signatures[position % len(signatures)]
            mask = np.uint64(int(rng.integers(0, 1 << 62)) * 4 + 3)
            index.add(
                StoredSignature(
                    position + 1,
                    uuid.UUID(int=position + 1),
                    VideoSignature(
                        model.times, model.hashes ^ mask, model.blocks, model.duration, model.fine
                    ),
                )
            )
        spent = []
        for signature in signatures[:40]:
            began = time.perf_counter()
            index.find(signature)
            spent.append((time.perf_counter() - began) * 1000)
        figures[str(size)] = {
            **_spread(spent),
            "indexed_hashes": index.indexed_hashes,
            "memory_mib": round(index.nbytes / 2**20, 1),
        }
    return figures


def corpus_dir(seed: int) -> Path:
    """Where a seed's corpus is kept: the cut points and picks follow the seed, so clips made
    under another seed must never be reused for it."""
    return OUT if seed == SEED else OUT.with_name(f"{OUT.name}-seed{seed}")


def run(seed: int = SEED, sources: int = SOURCES, out: Path | None = None) -> dict[str, Any]:
    """Build the corpus, score it, measure the cost; the figures as a dict."""
    out = corpus_dir(seed) if out is None else out
    began = time.perf_counter()
    clips = build(seed, sources, out)
    built = time.perf_counter() - began
    scored = score(clips, seed)
    signatures = list(scored.pop("signatures").values())
    rng = np.random.default_rng(seed + 2)
    per_sample = signature_cost(rng)
    scored["build_seconds"] = round(built, 1)
    scored["signature_ms_per_sample"] = round(per_sample, 4)
    scored["signature_ms_per_clip"] = round(per_sample * scored["samples_per_clip"], 2)
    # the stored form per second of video: samples (time, hash, 8 x 8 means) and the finer grid
    sample = signatures[0]
    per_second = 1 / SAMPLE_PERIOD
    scored["stored_bytes_per_second"] = {
        "samples": round(len(sample.pack()) / len(sample) * per_second),
        "fine_blocks": round(len(sample.pack_fine() or b"") / len(sample) * per_second),
    }
    scored["lookup_ms"] = lookup_cost(signatures, (1000, 10000), rng)
    scored["decode_pass_cpu"] = fingerprint_overhead(
        [c.path for c in clips if c.label == "source"][:8]
    )
    return scored


def print_table(result: dict[str, Any]) -> None:
    """The figures, as the docs show them."""
    print(f"duplicate videos: {result['clips']} clips")
    print(
        f"{'edit':<12} {'n':>3} {'found':>5} {'recall':>7}  target >= {TARGET_RECALL}"
        f"  (copies under {MIN_OVERLAP_SECONDS} s: found of n)"
    )
    for edit, row in result["recall"].items():
        verdict = "PASS" if row["recall"] >= TARGET_RECALL else "MISS"
        print(
            f"{edit:<12} {row['n']:>3} {row['found']:>5} {row['recall']:>7.3f}  {verdict}"
            f"  ({row['under_minimum_found']} of {row['under_minimum']})"
        )
    precision = result["precision"]
    verdict = "PASS" if precision >= TARGET_PRECISION else "MISS"
    print(
        f"pairs reported {result['pairs']}, right {result['right_pairs']}, "
        f"precision {precision:.3f} (target >= {TARGET_PRECISION}: {verdict})"
    )
    print(f"hard negatives {result['negatives']}")
    print(
        f"negatives aligned directly with the clip they imitate: "
        f"{len(result['direct_false_matches'])} false of {result['direct_negative_alignments']}"
    )
    print(f"time-range error (s): {result['range_error_seconds']}")
    print(
        f"signature: {result['signature_ms_per_sample']} ms/sample, "
        f"{result['signature_ms_per_clip']} ms/clip ({result['samples_per_clip']:.0f} samples); "
        f"decode pass per clip (ms): {result['decode_ms_per_clip']}"
    )
    cpu = result["decode_pass_cpu"]
    print(
        f"decode pass CPU per clip: {cpu['with_ms']} ms with the fingerprint, "
        f"{cpu['without_ms']} ms without (x{cpu['ratio']})"
    )
    print(f"lookup in the corpus (ms): {result['lookup_ms_corpus']}")
    for size, row in result["lookup_ms"].items():
        print(f"lookup at {size} videos (ms): {row}")
    if result["missed"]:
        print("missed:", ", ".join(result["missed"]))
    for pair in result["false_pairs"]:
        print("false pair:", pair)
    for item in result["direct_false_matches"]:
        print("direct false match:", item)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--sources", type=int, default=SOURCES)
    parser.add_argument("--force", action="store_true", help="generate the corpus afresh")
    args = parser.parse_args()
    out = corpus_dir(args.seed)
    if args.force and out.exists():
        for made in out.iterdir():
            made.unlink()
    result = run(args.seed, args.sources, out)
    result["seed"] = args.seed
    print_table(result)
    suffix = "" if args.seed == SEED else f"-seed{args.seed}"
    target = ROOT / "bench" / "out" / f"clean_video_dups{suffix}.json"
    target.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
