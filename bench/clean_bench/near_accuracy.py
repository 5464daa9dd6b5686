"""Near duplicates under harder edits, scored in-process through the service's own decisions.

The files of ``corpus_near`` (originals with one copy per edit, hard-negative siblings) go
through ``analyze_image``, ``domain.image_findings`` and ``domain.find_duplicate`` in arrival
order, as one dataset under the default policy, with every judged image's stored features at
hand (what the service reads from ``clean.image_features``). ``--hashes-only`` drops the
features, which leaves the hash decision the service made before verification existed.
The tiny and keypoint-poor pictures of ``corpus_near.tiny_items`` (``--tiny`` per generator,
with as many mined pairs of unrelated pictures stage 1 proposes, ``--tiny-negatives hash``:
that the hash rule alone would match, as before the crop placement search) arrive after
the rest, so the rest's arrival order is the same with or without them.

Per edit: recall (a copy matched to a member of its own group) and pair precision, TP / (TP +
copies matched to another group + originals matched at all), i.e. as if the dataset held only
that edit's copies next to every original and sibling. Also printed: features per image (ms,
bytes), candidates per lookup, stage 1's recall per edit (the copy's own group among its
candidates), verifications per image and their CPU time (``verify`` counted in ``domain``'s
place), and the duplicate decision's time per image (stage 1 timed outside it, as the service
runs it once per run before judging).

``.venv/bin/python -m bench.clean_bench.near_accuracy [--per-scene N] [--tiny N] [--hashes-only]``
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from dataclasses import replace
from typing import Any, Literal

import cv2
import numpy as np

from bench import clean_corpus
from bench.clean_bench import corpus_near
from bench.clean_bench.stats import pct, ratio
from services.clean import domain
from services.clean.checks import (
    Features,
    Verification,
    analyze_image,
    compare_pictures,
    image_features,
    verify,
)
from services.clean.checks.quality import luminance, normalized
from services.clean.near_index import DatasetHashes
from services.clean.policy import PolicyRules


def arrival_order(items: list[clean_corpus.Item], seed: int) -> list[clean_corpus.Item]:
    """Shuffled, then each group's original moved to the group's earliest place."""
    order = np.random.default_rng(seed).permutation(len(items))
    shuffled = [items[i] for i in order]
    places: dict[str, list[int]] = {}
    for place, item in enumerate(shuffled):
        places.setdefault(item.group or "", []).append(place)
    for group in places.values():
        members = sorted((shuffled[p] for p in group), key=lambda it: it.transform is not None)
        for place, member in zip(group, members, strict=True):
            shuffled[place] = member
    return shuffled


class CountedVerify:
    """``verify`` counted and timed (CPU), put in ``domain``'s place for one run: stage 2's
    cost per image is the number of verifications times their cost. The pictures-only
    comparison of keypoint-poor pairs (``compare_pictures``) is counted apart, in ``pictures``."""

    def __init__(self) -> None:
        self.calls = 0
        self.cpu_ms: list[float] = []
        self.pictures_ms: list[float] = []

    def __call__(self, mine: Features, theirs: Features) -> Verification:
        started = time.process_time()
        try:
            return verify(mine, theirs)
        finally:
            self.calls += 1
            self.cpu_ms.append((time.process_time() - started) * 1000)

    def pictures(
        self, mine: Features, theirs: Features, via: Literal["full", "crop"]
    ) -> Verification:
        started = time.process_time()
        try:
            return compare_pictures(mine, theirs, via)
        finally:
            self.pictures_ms.append((time.process_time() - started) * 1000)


def run(items: list[clean_corpus.Item], hashes_only: bool) -> dict[str, Any]:
    """Every item through the service's decisions; what each was matched to, and the costs."""
    counted = CountedVerify()
    setattr(domain, "verify", counted)  # noqa: B010  # measured here, restored below
    setattr(domain, "compare_pictures", counted.pictures)  # noqa: B010
    try:
        return _run(items, hashes_only, counted)
    finally:
        setattr(domain, "verify", verify)  # noqa: B010
        setattr(domain, "compare_pictures", compare_pictures)  # noqa: B010


def _run(
    items: list[clean_corpus.Item], hashes_only: bool, counted: CountedVerify
) -> dict[str, Any]:
    rules = PolicyRules()
    thresholds = rules.threshold_set()
    copy = DatasetHashes()
    originals: dict[str, uuid.UUID] = {}
    known: dict[uuid.UUID, bytes] = {}
    group_of: dict[uuid.UUID, str | None] = {}
    matched: list[tuple[clean_corpus.Item, str | None]] = []
    decide_ms: list[float] = []
    stage1_ms: list[float] = []
    candidates: list[int] = []
    verifications: list[int] = []
    own_proposed: dict[str, list[bool]] = {}
    sizes: list[int] = []
    for arrival, item in enumerate(items):
        asset = uuid.UUID(int=arrival + 1)
        group_of[asset] = item.group
        findings = domain.image_findings(analyze_image(item.data, thresholds), rules)
        if hashes_only:
            findings = replace(findings, features=None)
        shortlist = None
        if findings.phash is not None:  # stage 1, once, as the service runs it
            looked = time.perf_counter()
            shortlist = copy.shortlist(findings.phash, findings.crops)
            stage1_ms.append((time.perf_counter() - looked) * 1000)
            proposed = shortlist.proposed
            candidates.append(len(proposed))
            if item.transform is not None:  # stage 1's recall: its own group proposed
                own = any(group_of[p.asset_id] == item.group for p in proposed)
                own_proposed.setdefault(item.transform, []).append(own)
        calls = counted.calls
        started = time.perf_counter()
        duplicate = domain.find_duplicate(
            asset, arrival, findings, originals, copy, rules, known, shortlist
        )
        decide_ms.append((time.perf_counter() - started) * 1000)
        if findings.phash is not None:
            verifications.append(counted.calls - calls)
        if findings.features is not None:
            known[asset] = findings.features
            sizes.append(len(findings.features))
        near = None
        if duplicate is not None and duplicate.code == "near_duplicate":
            near = group_of[uuid.UUID(duplicate.of_asset)]
        matched.append((item, near))
    scores = score(matched)
    scores["cost"] = {
        "decision_ms_p50": pct(decide_ms, 50),
        "decision_ms_p95": pct(decide_ms, 95),
        "stage1_ms_p50": pct(stage1_ms, 50) if stage1_ms else 0.0,
        "stage1_ms_p95": pct(stage1_ms, 95) if stage1_ms else 0.0,
        "candidates_per_lookup_mean": float(np.mean(candidates)) if candidates else 0.0,
        "candidates_per_lookup_max": max(candidates, default=0),
        "verify_calls_per_image_mean": float(np.mean(verifications)) if verifications else 0.0,
        "verify_calls_per_image_max": max(verifications, default=0),
        "verify_cpu_ms_p50": pct(counted.cpu_ms, 50) if counted.cpu_ms else 0.0,
        "verify_cpu_ms_per_image_mean": sum(counted.cpu_ms) / max(1, len(verifications)),
        "pictures_calls": len(counted.pictures_ms),
        "pictures_cpu_ms_p50": pct(counted.pictures_ms, 50) if counted.pictures_ms else 0.0,
        "pictures_cpu_ms_p95": pct(counted.pictures_ms, 95) if counted.pictures_ms else 0.0,
        "pictures_cpu_ms_per_image_mean": sum(counted.pictures_ms) / max(1, len(verifications)),
        "stage1_own_group": {e: ratio(sum(v), len(v)) for e, v in sorted(own_proposed.items())},
        "feature_bytes_mean": float(np.mean(sizes)) if sizes else 0.0,
        "images": len(items),
    }
    return scores


def score(matched: list[tuple[clean_corpus.Item, str | None]]) -> dict[str, Any]:
    """Recall and pair precision per edit and per scene (see the module docstring)."""
    false_flags = [item for item, group in matched if item.transform is None and group]
    rows: dict[str, Any] = {}
    for edit in (*corpus_near.EDITS, *corpus_near.TINY_EDITS, "all"):
        wanted = [(i, g) for i, g in matched if i.transform and edit in ("all", i.transform)]
        tp = sum(g == i.group for i, g in wanted)
        wrong = sum(g is not None and g != i.group for i, g in wanted)
        rows[edit] = {
            "n": len(wanted),
            "recall": ratio(tp, len(wanted)),
            "precision": ratio(tp, tp + wrong + len(false_flags)),
            "wrong_group": wrong,
            "missed_scenes": sorted(i.detail.get("scene", "") for i, g in wanted if g != i.group),
        }
    rows["false_flags"] = {
        "originals": len(false_flags),
        "scenes": sorted(i.detail.get("scene", "") for i in false_flags),
    }
    return rows


def feature_cost(repeats: int = 15) -> dict[str, Any]:
    """In-process CPU ms of ``image_features`` at 640x480 and 1920x1080, next to the whole
    ``analyze_image`` of the same JPEG (which now includes it) measured in the same run, and of
    one ``verify`` of a 20 % crop against its original."""
    rng = np.random.default_rng(5)
    figures: dict[str, Any] = {}
    for width, height in ((640, 480), (1920, 1080)):
        image = clean_corpus.normal_exposure(rng, clean_corpus.photo(rng, width, height))
        data = clean_corpus.jpeg(image, 90)
        gray = normalized(luminance(image))
        features_ms, analysis_ms = [], []
        for _ in range(repeats):
            started = time.process_time()
            image_features(gray).packed()
            middle = time.process_time()
            analyze_image(data)
            analysis_ms.append((time.process_time() - middle) * 1000)
            features_ms.append((middle - started) * 1000)
        crop = normalized(luminance(image[height // 10 :, : width * 8 // 10]))
        mine = Features.unpacked(image_features(crop).packed())
        theirs = Features.unpacked(image_features(gray).packed())
        verify_ms = []
        for _ in range(repeats):
            started = time.process_time()
            verify(mine, theirs)
            verify_ms.append((time.process_time() - started) * 1000)
        figures[f"{width}x{height}"] = {
            "features_ms_p50": pct(features_ms, 50),
            "analyze_image_ms_p50": pct(analysis_ms, 50),
            "share_of_analysis": pct(features_ms, 50) / pct(analysis_ms, 50),
            "verify_ms_p50": pct(verify_ms, 50),
        }
    return figures


def main() -> None:
    """Build the corpus in memory, score it and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-scene", type=int, default=6, help="scenes per scene type")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--tiny", type=int, default=12, help="tiny pictures per generator")
    parser.add_argument("--tiny-pool", type=int, default=2000, help="drawn to mine negatives")
    parser.add_argument(
        "--tiny-negatives",
        choices=("proposed", "hash"),
        default="proposed",
        help="mined among the pairs stage 1 proposes, or (as before) the hash rule matches",
    )
    parser.add_argument("--hashes-only", action="store_true", help="no verification (before)")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--cost-only", action="store_true", help="only the per-image costs")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # as the service runs OpenCV
    print("cost:", json.dumps(feature_cost()))
    if args.cost_only:
        return
    stream = clean_corpus._streams(args.seed)
    items = arrival_order(corpus_near.near_items(stream, args.per_scene), args.seed)
    tiny = (
        corpus_near.tiny_items(stream, args.tiny, args.tiny_pool, args.tiny_negatives)
        if args.tiny
        else []
    )
    items += arrival_order(tiny, args.seed)
    figures = run(items, args.hashes_only)
    print(f"{'edit':14} {'n':>4} {'recall':>7} {'precision':>9} {'wrong':>5}  missed scenes")
    for edit in (*corpus_near.EDITS, *corpus_near.TINY_EDITS, "all"):
        row = figures[edit]
        missed = ",".join(sorted(set(row["missed_scenes"])))
        print(
            f"{edit:14} {row['n']:>4} {row['recall'] or 0:>7.3f} {row['precision'] or 0:>9.3f}"
            f" {row['wrong_group']:>5}  {missed}"
        )
    print("originals matched (false):", figures["false_flags"])
    print("cost:", figures["cost"])
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=1)


if __name__ == "__main__":
    main()
