"""Alpha and kappa: hand-computed cases, and the reference libraries on the same data."""

from __future__ import annotations

import random

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score  # type: ignore[import-untyped]
from statsmodels.stats import inter_rater  # type: ignore[import-untyped]

from services.qc.domain.agreement import (
    cohen_kappa,
    fleiss_kappa,
    job_agreement,
    krippendorff_alpha,
)

CLASSES = ["day", "night", "dusk"]


def job(seed: int, items: int, raters: int, missing: float) -> dict[str, dict[str, str]]:
    """Ratings that agree more than chance: each rater copies a true class 70% of the time."""
    rng = random.Random(seed)
    ratings: dict[str, dict[str, str]] = {}
    for item in range(items):
        truth = rng.choice(CLASSES)
        ratings[f"asset-{item}"] = {
            f"rater-{r}": truth if rng.random() < 0.7 else rng.choice(CLASSES)
            for r in range(raters)
            if rng.random() >= missing
        }
    return ratings


def reliability_matrix(ratings: dict[str, dict[str, str]], raters: int) -> np.ndarray:
    """Raters x items, classes as numbers, NaN where a rater gave nothing."""
    matrix = np.full((raters, len(ratings)), np.nan)
    for column, by_rater in enumerate(ratings.values()):
        for r in range(raters):
            if f"rater-{r}" in by_rater:
                matrix[r, column] = CLASSES.index(by_rater[f"rater-{r}"])
    return matrix


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_alpha_equals_the_krippendorff_package_with_missing_ratings(
    seed: int, missing: float
) -> None:
    ratings = job(seed, items=60, raters=4, missing=missing)
    expected = krippendorff.alpha(
        reliability_data=reliability_matrix(ratings, 4), level_of_measurement="nominal"
    )
    assert krippendorff_alpha(ratings) == pytest.approx(expected, abs=1e-12)


def test_alpha_by_hand() -> None:
    # Two units rated (a, a) and (a, b): coincidences a-a 2, a-b 1, b-a 1; n_a 3, n_b 1, n 4.
    # Do = 2, De = 2 * 3 * 1 / 3 = 2 -> alpha = 1 - 3 * 2 / 6 = 0.
    ratings = {"u1": {"r1": "a", "r2": "a"}, "u2": {"r1": "a", "r2": "b"}, "u3": {"r1": "b"}}
    assert krippendorff_alpha(ratings) == pytest.approx(0.0)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_cohen_kappa_equals_scikit_learn(seed: int) -> None:
    ratings = job(seed, items=80, raters=2, missing=0.0)
    first = [r["rater-0"] for r in ratings.values()]
    second = [r["rater-1"] for r in ratings.values()]
    assert cohen_kappa(first, second) == pytest.approx(cohen_kappa_score(first, second))


def test_cohen_kappa_by_hand() -> None:
    # Observed 3/4; chance 1/2 * 1/4 + 1/2 * 3/4 = 1/2: kappa (0.75 - 0.5) / 0.5.
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_fleiss_kappa_equals_statsmodels(seed: int) -> None:
    ratings = job(seed, items=50, raters=5, missing=0.0)
    items = [list(r.values()) for r in ratings.values()]
    coded = np.array([[CLASSES.index(c) for c in item] for item in items])
    table, _ = inter_rater.aggregate_raters(coded)
    assert fleiss_kappa(items) == pytest.approx(inter_rater.fleiss_kappa(table, method="fleiss"))


def test_undefined_figures_are_none_not_nan() -> None:
    same = {"u1": {"r1": "a", "r2": "a"}, "u2": {"r1": "a", "r2": "a"}}
    assert krippendorff_alpha(same) is None
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None
    assert fleiss_kappa([["a", "a"], ["a", "a"]]) is None
    assert krippendorff_alpha({"u1": {"r1": "a"}}) is None
    assert cohen_kappa([], []) is None
    assert fleiss_kappa([]) is None


def test_fleiss_refuses_uneven_rater_counts() -> None:
    with pytest.raises(ValueError):
        fleiss_kappa([["a", "b"], ["a"]])


def test_job_agreement_counts_what_each_figure_rests_on() -> None:
    ratings = job(7, items=40, raters=3, missing=0.0)
    ratings["late-asset"] = {"rater-0": "day", "rater-1": "day"}  # third replica timed out
    ratings["lonely"] = {"rater-2": "dusk"}
    result = job_agreement(ratings)
    assert result.alpha_items == 41
    assert result.alpha == pytest.approx(krippendorff_alpha(ratings))
    assert (result.fleiss_items, result.fleiss_raters) == (40, 3)
    complete = [list(r.values()) for name, r in ratings.items() if len(r) == 3]
    assert result.fleiss == pytest.approx(fleiss_kappa(complete))
    pairs = {(p.a, p.b): p for p in result.rater_pairs}
    assert sorted(pairs) == [("rater-0", "rater-1"), ("rater-0", "rater-2"), ("rater-1", "rater-2")]
    assert pairs[("rater-0", "rater-1")].items == 41
    assert pairs[("rater-0", "rater-2")].items == 40
    shared = [r for r in ratings.values() if "rater-0" in r and "rater-1" in r]
    assert pairs[("rater-0", "rater-1")].kappa == pytest.approx(
        cohen_kappa_score([r["rater-0"] for r in shared], [r["rater-1"] for r in shared])
    )
