"""Exposure and sharpness checks scored in-process, in seconds, without the services.

The clean corpus (with the cases of ``corpus_exposure``) goes through the same pass as the
accuracy part of ``make bench-clean`` (``accuracy.run_conveyor``: ``analyze_image``, the clean
service's findings, duplicate decision and verdict under the default policy), then prints
precision and recall of the exposure, sharpness and information checks, what each hard case
was flagged with, and the cost of the pixel metrics on a 640x480 image.

Run: ``.venv/bin/python -m bench.clean_bench.exposure [--json PATH]``. The corpus is built in its
own folder (``bench/out/clean-exposure-corpus``, no throughput files), so this can run while
``make bench-clean`` uses its own.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench import clean_corpus
from services.clean.checks import analyze_image
from services.clean.checks.quality import luminance, measure, normalized, tile_contrast

from . import accuracy

OUT = clean_corpus.ROOT / "bench" / "out"
CODES = ("blurry", "dark", "overexposed", "low_information", "odd_aspect_ratio")
# The metrics shown per case: old and new measures side by side.
SHOWN = ("edge_sharpness", "mean_luminance", "clipped_highlights")


def scores(files: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Precision and recall per code (the accuracy table's rows) and the flags on each case."""
    rows = accuracy.conveyor_scores(files, results)
    table = {
        code: {k: rows[code][k] for k in ("n", "tp", "fp", "fn", "precision", "recall")}
        | {"fp_sources": rows[code]["fp_sources"]}
        for code in CODES
    }
    cases: dict[str, dict[str, Any]] = defaultdict(lambda: {"n": 0, "flagged": Counter()})
    for entry in files:
        key = f"{entry['label']}/{entry.get('case', '-')}/{entry.get('scene', '-')}"
        cases[key]["n"] += 1
        codes = set(results[entry["name"]]["codes"]) & set(CODES)
        cases[key]["flagged"].update(codes)
    return {"checks": table, "cases": {k: dict(v) for k, v in sorted(cases.items())}}


def metric_ranges(
    files: list[dict[str, Any]], results: dict[str, dict[str, Any]], metrics: list[str]
) -> dict[str, dict[str, list[float]]]:
    """Min, median and max of each metric per label/case."""
    grouped: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for entry in files:
        key = f"{entry['label']}/{entry.get('case', '-')}"
        for metric in metrics:
            value = results[entry["name"]]["metrics"].get(metric)
            if value is not None:
                grouped[key][metric].append(value)
    return {
        key: {
            m: [round(min(v), 3), round(statistics.median(v), 3), round(max(v), 3)]
            for m, v in values.items()
        }
        for key, values in sorted(grouped.items())
    }


def cost(repeats: int = 60) -> dict[str, float]:
    """Median ms per 640x480 photo: the whole analysis, and the pixel metrics alone."""
    rng = np.random.default_rng(7)
    image = clean_corpus.normal_exposure(rng, clean_corpus.photo(rng))
    data = clean_corpus.jpeg(image, 90)
    gray = normalized(luminance(image))
    whole, metrics, tiles = [], [], []
    for _ in range(repeats):
        started = time.perf_counter()
        analyze_image(data)
        whole.append(time.perf_counter() - started)
        started = time.perf_counter()
        measure(gray, None, 640, 480)
        metrics.append(time.perf_counter() - started)
        started = time.perf_counter()
        tile_contrast(gray)
        tiles.append(time.perf_counter() - started)
    return {
        "analyze_image_ms": round(statistics.median(whole) * 1e3, 3),
        "measure_ms": round(statistics.median(metrics) * 1e3, 3),
        "tile_contrast_ms": round(statistics.median(tiles) * 1e3, 3),
        "decode_ms": round(_decode_ms(data, repeats), 3),
    }


def _decode_ms(data: bytes, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def main() -> None:
    """Build (or reuse) the corpus, score it, print the table, write the figures as JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", type=Path, default=OUT / "clean-exposure.json")
    parser.add_argument("--metrics", default=",".join(SHOWN), help="metrics shown per case")
    args = parser.parse_args()
    folder = OUT / "clean-exposure-corpus"
    manifest = clean_corpus.build(throughput=0, out=folder)
    files = manifest["files"]
    started = time.process_time()
    results = accuracy.run_conveyor(files, folder / manifest["images_dir"])
    cpu = time.process_time() - started
    figures = scores(files, results)
    shown = args.metrics.split(",")
    figures["metric_ranges"] = metric_ranges(files, results, shown)
    figures["cost"] = cost()
    figures["files"] = len(files)
    figures["cpu_s"] = round(cpu, 1)
    print(f"{len(files)} files, {cpu:.1f} CPU s")
    print(f"{'check':18} {'n':>4} {'tp':>4} {'fp':>4} {'fn':>4} {'P':>6} {'R':>6}  fp from")
    for code, row in figures["checks"].items():
        p, r = row["precision"], row["recall"]
        print(
            f"{code:18} {row['n']:>4} {row['tp']:>4} {row['fp']:>4} {row['fn']:>4} "
            f"{p if p is None else f'{p:.3f}':>6} {r if r is None else f'{r:.3f}':>6}  "
            f"{row['fp_sources']}"
        )
    print("flags per case (label/case/scene):")
    for key, case in figures["cases"].items():
        if key.split("/")[1] != "-":
            print(f"  {key:42} {case['n']:>3}  {dict(case['flagged'])}")
    print("metric ranges [min, median, max]:")
    for key, values in figures["metric_ranges"].items():
        print(f"  {key:36} {values}")
    print("cost:", figures["cost"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    per_file = {n: {"codes": r["codes"], "metrics": r["metrics"]} for n, r in results.items()}
    args.json.write_text(json.dumps({**figures, "per_file": per_file}, indent=1, default=str))


if __name__ == "__main__":
    main()
