"""Accuracy: Conveyor's checks and the peers' results scored against the corpus's labels.

Conveyor's checks run directly on the files in arrival order, through the clean service's own
decisions (``services.clean.domain``, the functions its cleaning use case calls): the findings
of ``analyze_image`` (structural defects, hashes only when comparable), the duplicate decision
(pixel digest first, then the nearest of the dataset's earlier full and crop hashes at the
policy's radius, held in memory here instead of mirrored from Postgres) and the verdict, all
with the default policy. A change to those decisions in the service shows up in these figures.

A defect counts as found when its code is among the verdict's reasons or flags. Precision and
recall per defect are strict: a flag on a file labeled otherwise is a false positive, and where
a row misses, the labels its false positives came from are listed. Near duplicates are scored
per transform: a copy is found when it is flagged as a duplicate of a member of its own group
(the original or another copy of it); precision for a transform is TP / (TP + copies matched to
a wrong group + non-copies flagged as near duplicates), i.e. as if the dataset held only that
kind of copy.

The peers (see ``peers``) are scored on the same files: cleanvision with its defaults (its
checks map onto ours as in ``CLEANVISION_ISSUE``; its duplicate *sets* become "every member but
the first-arrived is a duplicate of the set's earliest member of its own group"), imagededup's
pHash with its default ``max_distance_threshold`` of 10 (a file is a duplicate of its closest
earlier match).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench import clean_corpus
from services.clean import domain
from services.clean.checks import DEFAULT_THRESHOLDS, analyze_image, hamming_distance
from services.clean.near_index import DatasetHashes
from services.clean.policy import PolicyRules

from .stats import pct, ratio

# ---- what each tool calls each defect ----------------------------------------------------------

# Conveyor codes that mean each labeled defect.
CONVEYOR_CODES: dict[str, frozenset[str]] = {
    "blurry": frozenset({"blurry"}),
    "dark": frozenset({"dark"}),
    "overexposed": frozenset({"overexposed"}),
    "low_information": frozenset({"low_information"}),
    "grayscale_as_colour": frozenset({"grayscale_as_colour"}),
    "odd_aspect_ratio": frozenset({"odd_aspect_ratio"}),
    "too_small": frozenset({"too_small"}),
    "too_large": frozenset({"too_large"}),
    "truncated_jpeg": frozenset({"truncated"}),
    "png_checksum": frozenset({"checksum_mismatch"}),
    "zero_bytes": frozenset({"empty"}),
    # only when no more specific reason is given: a truncated or checksum-damaged file that
    # also fails to decode carries decode_failed too (true), and is scored in its own row
    "undecodable": frozenset({"unrecognized_format", "header_unreadable", "decode_failed"}),
    "decompression_bomb": frozenset({"decompression_bomb"}),
    "exact_duplicate": frozenset({"exact_duplicate"}),
}
# cleanvision issue types that mean each labeled defect (odd_size is split by the side of the
# median image area the file is on: below = too small, above = too large).
CLEANVISION_ISSUE = {
    "blurry": "blurry",
    "dark": "dark",
    "overexposed": "light",
    "low_information": "low_information",
    "grayscale_as_colour": "grayscale",
    "odd_aspect_ratio": "odd_aspect_ratio",
    "too_small": "odd_size",
    "too_large": "odd_size",
}
SPECIFIC_CORRUPTION = frozenset({"truncated", "checksum_mismatch", "empty", "decompression_bomb"})
# Labels of files whose picture has no quality defect: "precision vs clean" counts only the
# false positives on these (a flag on a file with another defect is left out).
CLEAN_SIDE = frozenset({"clean", "exact_duplicate", "near_duplicate"})
CORRUPT_CLASSES = (
    "truncated_jpeg",
    "png_checksum",
    "zero_bytes",
    "undecodable",
    "decompression_bomb",
)
# The metric behind each threshold check, for the diagnosis of a missed target.
METRIC_OF = {
    code: (t.metric, t.limit, t.fails_when)
    for code, t in DEFAULT_THRESHOLDS.items()
    if code in CONVEYOR_CODES
}


# ---- Conveyor's pass over the corpus -----------------------------------------------------------


def run_conveyor(files: list[dict[str, Any]], folder: Path) -> dict[str, dict[str, Any]]:
    """Conveyor's verdict on each file, in arrival order, as one dataset under the default
    policy (what the cleaning use case decides per asset)."""
    rules = PolicyRules()
    state: dict[str, Any] = {
        "rules": rules,
        "thresholds": rules.threshold_set(),
        "copy": DatasetHashes(),  # the service's in-memory hashes of the dataset
        "originals": {},  # pixel digest -> asset id of the first file with those pixels
        "known": {},  # asset id -> stored features (clean.image_features)
        "names": {},  # asset id -> file name
    }
    results: dict[str, dict[str, Any]] = {}
    with quiet_stderr():
        for arrival, entry in enumerate(files):
            results[entry["name"]] = _check_one(
                arrival, entry["name"], (folder / entry["name"]).read_bytes(), state
            )
    return results


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence what libpng and libjpeg print on damaged files (fd 2) for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# ---- one file through Conveyor's checks, duplicate decision and verdict ------------------------


def _check_one(arrival: int, name: str, data: bytes, state: dict[str, Any]) -> dict[str, Any]:
    """One file through the checks and the service's duplicate decision and verdict."""
    rules: PolicyRules = state["rules"]
    names: dict[str, str] = state["names"]
    asset_id = uuid.UUID(int=arrival + 1)  # each file is an asset of its own
    names[str(asset_id)] = name
    started = time.process_time()
    report = analyze_image(data, state["thresholds"])
    findings = domain.image_findings(report, rules)
    duplicate = domain.find_duplicate(
        asset_id, arrival, findings, state["originals"], state["copy"], rules, state["known"]
    )
    if findings.features is not None:
        state["known"][asset_id] = findings.features
    verdict = domain.verdict(findings, duplicate, rules)
    elapsed = time.process_time() - started
    return {
        "codes": sorted({c.code for c in (*verdict.reasons, *verdict.flags)}),
        "rejected": verdict.rejected,
        "duplicate": [duplicate.code, names[duplicate.of_asset], duplicate.distance]
        if duplicate
        else None,
        "metrics": dict(report.metrics),
        "phash": report.phash,
        "near_via": duplicate.via if duplicate else None,  # "full" or "crop" hash match
        "cpu_s": elapsed,
    }


# ---- 1. accuracy: scoring ----------------------------------------------------------------------


def score_flags(files: list[dict[str, Any]], label: str, flagged: set[str]) -> dict[str, Any]:
    """Strict precision and recall of one defect: ``flagged`` are the files a tool flags.

    A file is a positive of its label and of any code its picture also has (``also``: a blurred
    banner is blurry and of an odd aspect ratio)."""
    positives = {f["name"] for f in files if label in (f["label"], *f.get("also", ()))}
    labels = {f["name"]: f["label"] for f in files}
    tp = len(positives & flagged)
    false = flagged - positives
    false_clean = sum(labels[n] in CLEAN_SIDE for n in false)
    return {
        "n": len(positives),
        "tp": tp,
        "fp": len(false),
        "fn": len(positives - flagged),
        "precision": ratio(tp, len(flagged)),
        "recall": ratio(tp, len(positives)),
        "precision_vs_clean": ratio(tp, tp + false_clean),
        "fp_sources": dict(Counter(labels[n] for n in false).most_common()),
        "missed": sorted(positives - flagged),
        "false_positives": sorted(false),
    }


def score_duplicates(
    files: list[dict[str, Any]], matches: dict[str, str], kind: str
) -> dict[str, Any]:
    """Precision and recall of duplicates: ``matches`` maps each flagged file to the earlier
    file it duplicates. ``kind`` is ``exact`` (the lossless copies) or ``near`` (per transform,
    see the module docstring)."""
    by_name = {f["name"]: f for f in files}
    copies = [f for f in files if "transform" in f]
    negatives = {f["name"] for f in files if "transform" not in f}

    def right(name: str) -> bool:
        other = by_name.get(matches.get(name, ""), {})
        return bool(other) and other.get("group") == by_name[name]["group"]

    false_flags = sorted(n for n in matches if n in negatives)
    fp_sources = dict(Counter(by_name[n]["label"] for n in false_flags).most_common())
    false_clean = sum(by_name[n]["label"] in CLEAN_SIDE for n in false_flags)
    if kind == "exact":
        wanted = [f["name"] for f in copies if f["label"] == "exact_duplicate"]
        tp = sum(right(n) for n in wanted)
        wrong = sum(n in matches and not right(n) for n in wanted)
        return {
            "n": len(wanted),
            "tp": tp,
            "fp": len(false_flags) + wrong,
            "fn": len(wanted) - tp,
            "precision": ratio(tp, tp + wrong + len(false_flags)),
            "recall": ratio(tp, len(wanted)),
            "precision_vs_clean": ratio(tp, tp + wrong + false_clean),
            "fp_sources": fp_sources,
            "missed": sorted(n for n in wanted if not right(n)),
            "false_positives": false_flags,
        }
    rows: dict[str, Any] = {}
    near = [f for f in copies if f["label"] == "near_duplicate"]
    for transform in [*clean_corpus.TRANSFORMS, "all"]:
        wanted = [f["name"] for f in near if transform in ("all", f["transform"])]
        tp = sum(right(n) for n in wanted)
        wrong = sum(n in matches and not right(n) for n in wanted)
        rows[transform] = {
            "n": len(wanted),
            "tp": tp,
            "wrong_group": wrong,
            "fp": len(false_flags) + wrong,
            "fn": len(wanted) - tp,
            "precision": ratio(tp, tp + wrong + len(false_flags)),
            "recall": ratio(tp, len(wanted)),
            "precision_vs_clean": ratio(tp, tp + wrong + false_clean),
            "fp_sources": fp_sources,
            "missed": sorted(n for n in wanted if not right(n)),
        }
    rows["false_positives"] = false_flags
    return rows


def conveyor_scores(
    files: list[dict[str, Any]], results: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Conveyor's rows of the accuracy table."""
    rows: dict[str, Any] = {}
    for label in clean_corpus.DEFECTS:
        flagged = {n for n, r in results.items() if CONVEYOR_CODES[label] & set(r["codes"])}
        if label == "undecodable":
            flagged = {n for n in flagged if not SPECIFIC_CORRUPTION & set(results[n]["codes"])}
        rows[label] = score_flags(files, label, flagged)
    exact = {
        n: r["duplicate"][1]
        for n, r in results.items()
        if r["duplicate"] and r["duplicate"][0] == "exact_duplicate"
    }
    near = {
        n: r["duplicate"][1]
        for n, r in results.items()
        if r["duplicate"] and r["duplicate"][0] == "near_duplicate"
    }
    rows["exact_duplicate"] = score_duplicates(files, exact, "exact")
    rows["near_duplicate"] = score_duplicates(files, near, "near")
    return rows


def set_matches(files: list[dict[str, Any]], sets: list[list[str]]) -> dict[str, str]:
    """Duplicate sets as "each member but the first-arrived duplicates an earlier member":
    the earliest earlier member of its own group where there is one, else the set's first."""
    arrival = {f["name"]: i for i, f in enumerate(files)}
    group = {f["name"]: f.get("group") for f in files}
    matches: dict[str, str] = {}
    for members in sets:
        ordered = sorted(members, key=lambda n: arrival[n])
        for place, name in enumerate(ordered[1:], start=1):
            earlier = ordered[:place]
            same = [e for e in earlier if group[e] is not None and group[e] == group[name]]
            matches[name] = same[0] if same else earlier[0]
    return matches


def cleanvision_scores(files: list[dict[str, Any]], result: dict[str, Any]) -> dict[str, Any]:
    """cleanvision's rows of the accuracy table."""
    flags: dict[str, list[str]] = result["flags"]
    sizes: dict[str, list[int]] = result.get("sizes", {})
    areas = [w * h for w, h in sizes.values()]
    median_area = float(np.median(areas)) if areas else 0.0
    rows: dict[str, Any] = {}
    for label in clean_corpus.DEFECTS:
        if label in CORRUPT_CLASSES:
            rows[label] = {
                "na": "no corrupt-file check (it raises on files PIL cannot open; "
                f"{len(result['unreadable'])} files left out)"
            }
            continue
        issue = CLEANVISION_ISSUE[label]
        flagged = {n for n, found in flags.items() if issue in found}
        if label in ("too_small", "too_large"):
            below = {n for n in flagged if n in sizes and sizes[n][0] * sizes[n][1] < median_area}
            flagged = below if label == "too_small" else flagged - below
        rows[label] = score_flags(files, label, flagged)
    rows["exact_duplicate"] = score_duplicates(
        files, set_matches(files, result["sets"]["exact_duplicates"]), "exact"
    )
    rows["near_duplicate"] = score_duplicates(
        files, set_matches(files, result["sets"]["near_duplicates"]), "near"
    )
    return rows


def imagededup_scores(files: list[dict[str, Any]], result: dict[str, Any]) -> dict[str, Any]:
    """imagededup's rows: near duplicates only (closest earlier match within distance 10)."""
    arrival = {f["name"]: i for i, f in enumerate(files)}
    matches: dict[str, str] = {}
    for name, found in result["duplicates"].items():
        earlier = [
            (d, arrival[o], o) for o, d in found if o in arrival and arrival[o] < arrival[name]
        ]
        if earlier:
            matches[name] = min(earlier)[2]
    na = "no such check (a duplicate finder only)"
    rows: dict[str, Any] = {label: {"na": na} for label in clean_corpus.DEFECTS}
    rows["exact_duplicate"] = {"na": "no pixel-exact check (pHash only; see near rows)"}
    rows["near_duplicate"] = score_duplicates(files, matches, "near")
    return rows


def diagnose(
    files: list[dict[str, Any]], results: dict[str, dict[str, Any]], rows: dict[str, Any]
) -> dict[str, Any]:
    """For each Conveyor row under 0.95: the measured values that show why."""
    notes: dict[str, Any] = {}
    for label in clean_corpus.DEFECTS:
        row = rows[label]
        if min(row["precision"] or 0, row["recall"] or 0) >= 0.95:
            continue
        note: dict[str, Any] = {"fp_sources": row["fp_sources"]}
        code = next(iter(CONVEYOR_CODES[label]))
        if code in METRIC_OF:
            metric, limit, fails_when = METRIC_OF[code]
            note["metric"] = f"{metric} (fails when {fails_when} {limit:g})"

            def values(names: list[str], metric: str = metric) -> list[float]:
                return sorted(
                    round(results[n]["metrics"][metric], 3)
                    for n in names
                    if metric in results[n]["metrics"]
                )

            note["missed_values"] = values(row["missed"])
            note["false_positive_values"] = values(row["false_positives"])
            positives = [f["name"] for f in files if f["label"] == label]
            clean = [f["name"] for f in files if f["label"] == "clean"]
            for key, names in (("defect", positives), ("clean", clean)):
                vals = values(names)
                if vals:
                    note[f"{key}_range"] = {
                        "min": vals[0],
                        "p05": round(pct(vals, 5), 3),
                        "p50": round(pct(vals, 50), 3),
                        "p95": round(pct(vals, 95), 3),
                        "max": vals[-1],
                    }
        else:
            note["missed_codes"] = {n: results[n]["codes"] for n in row["missed"]}
        notes[label] = note
    near = rows["near_duplicate"]
    distances: dict[str, list[int]] = {}
    for transform in clean_corpus.TRANSFORMS:
        found: list[int] = []
        for f in files:
            if f.get("transform") != transform:
                continue
            mine, original = results[f["name"]]["phash"], results[f["original"]]["phash"]
            if mine is not None and original is not None:
                found.append(hamming_distance(mine, original))
        distances[transform] = sorted(found)
    crops: dict[str, Any] = {}
    missed = set(near["all"]["missed"])
    for transform in ("crop5", "crop10"):
        shifts: dict[str, list[float]] = {"found": [], "missed": []}
        for f in files:
            if f.get("transform") == transform:
                centre = (1 - f["keep"]) / 2
                shift = max(abs(f["offset_x"] - centre), abs(f["offset_y"] - centre))
                shifts["missed" if f["name"] in missed else "found"].append(shift)
        crops[transform] = {
            k: {"count": len(v), "mean_shift_from_centre": statistics.mean(v) if v else None}
            for k, v in shifts.items()
        }
    notes["near_duplicate"] = {
        "crop_offsets": crops,
        "distance_to_original": {
            t: {"p50": pct(d, 50), "p90": pct(d, 90), "max": max(d) if d else None}
            for t, d in distances.items()
        },
        "false_positive_sources": near["all"]["fp_sources"],
        "false_positive_distances": sorted(
            results[n]["duplicate"][2] for n in near["false_positives"]
        ),
    }
    unrelated = [
        hamming_distance(results[a["name"]]["phash"], results[b["name"]]["phash"])
        for a, b in zip(files[::2], files[1::2], strict=False)
        if results[a["name"]]["phash"] is not None
        and results[b["name"]]["phash"] is not None
        and (a.get("group") is None or a.get("group") != b.get("group"))
    ]
    notes["near_duplicate"]["unrelated_pairs"] = {
        "pairs": len(unrelated),
        "min": min(unrelated) if unrelated else None,
        "p01": pct(unrelated, 1),
        "at_or_under_10": sum(d <= 10 for d in unrelated),
    }
    return notes


# ---- the accuracy figures ----------------------------------------------------------------------


def figures(
    files: list[dict[str, Any]],
    results: dict[str, dict[str, Any]],
    cleanvision: dict[str, Any],
    imagededup: dict[str, Any],
) -> dict[str, Any]:
    """Every tool's rows of the accuracy table; a peer that could not run gets its reason in
    each of Conveyor's rows."""
    conveyor = conveyor_scores(files, results)
    accuracy: dict[str, Any] = {
        "files": len(files),
        "conveyor": conveyor,
        "cleanvision": cleanvision
        if "na" in cleanvision
        else cleanvision_scores(files, cleanvision),
        "imagededup": imagededup if "na" in imagededup else imagededup_scores(files, imagededup),
    }
    for tool in ("cleanvision", "imagededup"):
        if "na" in accuracy[tool]:
            reason = accuracy[tool]["na"]
            accuracy[tool] = {label: {"na": reason} for label in conveyor}
    return accuracy
