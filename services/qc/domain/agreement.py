"""Chance-corrected agreement on image-level classes across a job.

Raw agreement flatters a job where one class dominates (two annotators who always answer "day"
on a daytime dataset agree 100% and learned nothing). Krippendorff's alpha (nominal), Cohen's
kappa (two raters) and Fleiss' kappa (N raters) subtract what chance alone would give.

Own code (a few lines of counting each) rather than three libraries at run time; the unit tests
check every figure against the reference implementation (``krippendorff``, scikit-learn's
``cohen_kappa_score``, statsmodels' ``fleiss_kappa``) on the same data. Each returns ``None``
where the statistic is undefined (every rating in one class: expected disagreement is zero).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

Ratings = Mapping[str, Mapping[str, Hashable]]
"""Item (asset) id -> rater (annotator) id -> the class given; a rater absent is missing."""


def krippendorff_alpha(ratings: Ratings) -> float | None:
    """Krippendorff's alpha for nominal data; items with fewer than two ratings carry no
    pairable value and are left out, as the coefficient defines."""
    coincidences: dict[tuple[Hashable, Hashable], float] = {}
    for by_rater in ratings.values():
        values = list(by_rater.values())
        m = len(values)
        if m < 2:
            continue
        for c, k in itertools.permutations(values, 2):
            coincidences[(c, k)] = coincidences.get((c, k), 0.0) + 1 / (m - 1)
    totals: dict[Hashable, float] = {}
    for (c, _), weight in coincidences.items():
        totals[c] = totals.get(c, 0.0) + weight
    n = sum(totals.values())
    observed = sum(w for (c, k), w in coincidences.items() if c != k)
    expected = sum(totals[c] * totals[k] for c, k in itertools.permutations(totals, 2))
    if n <= 1 or expected == 0:
        return None
    return 1.0 - (n - 1) * observed / expected


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters over the same items, in the same order."""
    if len(first) != len(second):
        raise ValueError("both raters must rate the same items")
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    count_a, count_b = Counter(first), Counter(second)
    expected = sum(count_a[c] * count_b[c] for c in count_a) / (n * n)
    if expected == 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(items: Sequence[Sequence[Hashable]]) -> float | None:
    """Fleiss' kappa; every item must have the same number (at least 2) of ratings."""
    if not items:
        return None
    n = len(items[0])
    if n < 2 or any(len(item) != n for item in items):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings on every item")
    per_class: Counter[Hashable] = Counter()
    agreement = 0.0
    for item in items:
        counts = Counter(item)
        per_class.update(counts)
        agreement += (sum(c * c for c in counts.values()) - n) / (n * (n - 1))
    observed = agreement / len(items)
    total = n * len(items)
    expected = sum((c / total) ** 2 for c in per_class.values())
    if expected == 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


@dataclass(frozen=True)
class RaterPairKappa:
    """Cohen's kappa of two annotators over the items both rated."""

    a: str
    b: str
    kappa: float | None
    items: int


@dataclass(frozen=True)
class JobAgreement:
    """A job's classification agreement, each figure with the number of items it rests on."""

    alpha: float | None
    alpha_items: int
    fleiss: float | None
    fleiss_items: int
    fleiss_raters: int
    rater_pairs: tuple[RaterPairKappa, ...]


def job_agreement(ratings: Ratings, *, min_shared_items: int = 1) -> JobAgreement:
    """All three figures for a job.

    Fleiss' kappa needs a constant number of raters per item, so it uses the items rated by the
    largest number of raters seen (an asset whose replicas timed out is left out of it, but not
    out of alpha, which handles missing ratings). Cohen's kappa is given for every pair of
    annotators who rated at least ``min_shared_items`` items in common.
    """
    alpha_items = sum(1 for r in ratings.values() if len(r) >= 2)
    raters = max((len(r) for r in ratings.values()), default=0)
    complete = (
        [list(r.values()) for r in ratings.values() if len(r) == raters] if raters >= 2 else []
    )
    names = sorted({name for r in ratings.values() for name in r})
    pairs = []
    for a, b in itertools.combinations(names, 2):
        shared = [r for r in ratings.values() if a in r and b in r]
        if len(shared) >= max(min_shared_items, 1):
            kappa = cohen_kappa([r[a] for r in shared], [r[b] for r in shared])
            pairs.append(RaterPairKappa(a, b, kappa, len(shared)))
    return JobAgreement(
        alpha=krippendorff_alpha(ratings),
        alpha_items=alpha_items,
        fleiss=fleiss_kappa(complete),
        fleiss_items=len(complete),
        fleiss_raters=raters if complete else 0,
        rater_pairs=tuple(pairs),
    )
