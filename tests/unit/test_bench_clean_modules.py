"""The clean benchmark's modules import without the stack, and its scoring counts as documented."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from bench.clean_bench.accuracy import score_duplicates, score_flags, set_matches

MODULES = ("accuracy", "peers", "throughput", "lookup", "report", "stack", "stats")


@pytest.mark.parametrize("name", MODULES)
def test_every_bench_clean_module_imports_without_the_stack(name: str) -> None:
    assert importlib.import_module(f"bench.clean_bench.{name}")


def test_score_flags_counts_strict_and_clean_side_precision() -> None:
    files = [
        {"name": "a", "label": "blurry"},
        {"name": "b", "label": "blurry"},
        {"name": "c", "label": "clean"},
        {"name": "d", "label": "dark"},
    ]
    row = score_flags(files, "blurry", {"a", "c", "d"})
    assert (row["n"], row["tp"], row["fp"], row["fn"]) == (2, 1, 2, 1)
    assert row["precision"] == pytest.approx(1 / 3)
    assert row["recall"] == pytest.approx(1 / 2)
    # only the false positive on the clean file counts against precision vs clean
    assert row["precision_vs_clean"] == pytest.approx(1 / 2)
    assert row["fp_sources"] == {"clean": 1, "dark": 1}
    assert row["missed"] == ["b"]
    assert row["false_positives"] == ["c", "d"]


def test_score_flags_without_positives_or_flags_has_no_ratios() -> None:
    row = score_flags([{"name": "c", "label": "clean"}], "blurry", set())
    assert (row["precision"], row["recall"], row["precision_vs_clean"]) == (None, None, None)


def test_score_duplicates_exact_counts_a_wrong_group_and_a_flagged_original() -> None:
    files: list[dict[str, Any]] = [
        {"name": "o1", "label": "clean", "group": "g1"},
        {"name": "x1", "label": "exact_duplicate", "group": "g1", "transform": "lossless_png"},
        {"name": "o2", "label": "clean", "group": "g2"},
        {"name": "x2", "label": "exact_duplicate", "group": "g2", "transform": "lossless_png"},
        {"name": "c", "label": "clean"},
    ]
    row = score_duplicates(files, {"x1": "o1", "x2": "o1", "c": "o2"}, "exact")
    assert (row["n"], row["tp"], row["fp"], row["fn"]) == (2, 1, 2, 1)
    assert row["precision"] == pytest.approx(1 / 3)
    assert row["recall"] == pytest.approx(1 / 2)
    assert row["precision_vs_clean"] == pytest.approx(1 / 3)
    assert row["missed"] == ["x2"]
    assert row["false_positives"] == ["c"]
    assert row["fp_sources"] == {"clean": 1}


def test_score_duplicates_near_scores_each_transform_with_every_false_flag() -> None:
    files: list[dict[str, Any]] = [
        {"name": "o", "label": "clean", "group": "n1"},
        {"name": "r", "label": "near_duplicate", "group": "n1", "transform": "resize50"},
        {"name": "j", "label": "near_duplicate", "group": "n1", "transform": "jpeg40"},
        {"name": "d", "label": "dark"},
    ]
    # j matched to another copy of its own original still counts as found
    rows = score_duplicates(files, {"r": "o", "j": "r", "d": "o"}, "near")
    resize = rows["resize50"]
    assert (resize["n"], resize["tp"], resize["wrong_group"], resize["fp"]) == (1, 1, 0, 1)
    assert resize["precision"] == pytest.approx(1 / 2)
    assert resize["recall"] == pytest.approx(1.0)
    # the false flag is on a dark file, not a clean one
    assert resize["precision_vs_clean"] == pytest.approx(1.0)
    every = rows["all"]
    assert (every["n"], every["tp"], every["fn"]) == (2, 2, 0)
    assert every["precision"] == pytest.approx(2 / 3)
    assert every["fp_sources"] == {"dark": 1}
    assert rows["crop5"]["n"] == 0 and rows["crop5"]["recall"] is None
    assert rows["false_positives"] == ["d"]


def test_set_matches_prefers_the_earliest_member_of_the_same_group() -> None:
    files = [
        {"name": "x", "label": "clean"},
        {"name": "a", "label": "clean", "group": "g1"},
        {"name": "c", "label": "near_duplicate", "group": "g1", "transform": "jpeg40"},
    ]
    assert set_matches(files, [["c", "a", "x"]]) == {"a": "x", "c": "a"}
