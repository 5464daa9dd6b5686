"""Which shape of one annotator is which shape of another.

Shapes are paired by an optimal assignment (Hungarian, scipy's ``linear_sum_assignment``) that
maximises the summed IoU over pairs at or above the threshold. A greedy "best IoU first" pairing
can take the one box two neighbours both overlap and leave a real pair unmatched; the optimal
assignment does not.

Pairs are made within a class first. Shapes left over on both sides are then paired across
classes: such a pair is the same object given two classes (a class disagreement), which review
wants to see separately from a box one annotator simply forgot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from services.qc.domain.geometry import Shape, iou_matrix, is_region
from services.qc.domain.ratios import Mean, Ratio

DEFAULT_IOU_THRESHOLD = 0.5
# An IoU computed in floating point may land a hair under a threshold it meets exactly.
_IOU_SLACK = 1e-9


@dataclass(frozen=True)
class Match:
    """Shape ``a`` of the first annotation and shape ``b`` of the second (list indexes)."""

    a: int
    b: int
    iou: float


@dataclass(frozen=True)
class PairMatching:
    """How two annotations of one asset correspond; indexes are into the original shape lists.

    Only region shapes (boxes, polygons) take part; ``regions_a``/``regions_b`` count them.
    """

    matches: tuple[Match, ...]
    class_disagreements: tuple[Match, ...]
    unmatched_a: tuple[int, ...]
    unmatched_b: tuple[int, ...]
    regions_a: int
    regions_b: int

    @property
    def f1(self) -> Ratio:
        """Same-class matches as an F1 (a class disagreement counts as a miss on both sides)."""
        return Ratio(2 * len(self.matches), self.regions_a + self.regions_b)

    @property
    def iou(self) -> Mean:
        """Mean IoU of the same-class matches."""
        return Mean(sum(m.iou for m in self.matches), len(self.matches))


def check_threshold(iou_threshold: float) -> None:
    """Refuse a threshold outside (0, 1]: at 0 every pair of disjoint shapes would match."""
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"IoU threshold must be in (0, 1], got {iou_threshold}")


def assign(iou: NDArray[np.float64], iou_threshold: float) -> list[Match]:
    """The optimal pairing of rows with columns among cells at or above the threshold."""
    if iou.size == 0:
        return []
    floor = iou_threshold - _IOU_SLACK
    weights = np.where(iou >= floor, iou, 0.0)
    rows, cols = linear_sum_assignment(weights, maximize=True)
    return [
        Match(int(r), int(c), float(iou[r, c]))
        for r, c in zip(rows, cols, strict=True)
        if iou[r, c] >= floor
    ]


def match_shapes(
    a: Sequence[Shape], b: Sequence[Shape], *, iou_threshold: float = DEFAULT_IOU_THRESHOLD
) -> PairMatching:
    """Pair the region shapes of annotation ``a`` with those of ``b``."""
    check_threshold(iou_threshold)
    ra = [i for i, s in enumerate(a) if is_region(s)]
    rb = [j for j, s in enumerate(b) if is_region(s)]
    iou = iou_matrix([a[i] for i in ra], [b[j] for j in rb])
    same_class = np.array(
        [[a[i]["class"] == b[j]["class"] for j in rb] for i in ra], dtype=bool
    ).reshape(len(ra), len(rb))
    # One assignment over the class-masked matrix equals one assignment per class.
    within = assign(np.where(same_class, iou, 0.0), iou_threshold)
    left_a = sorted(set(range(len(ra))) - {m.a for m in within})
    left_b = sorted(set(range(len(rb))) - {m.b for m in within})
    # Leftover same-class pairs are all under the threshold (else the assignment took them),
    # so whatever pairs here is a cross-class pair.
    across = [
        Match(left_a[m.a], left_b[m.b], m.iou)
        for m in assign(iou[np.ix_(left_a, left_b)], iou_threshold)
    ]
    paired_a = {m.a for m in within} | {m.a for m in across}
    paired_b = {m.b for m in within} | {m.b for m in across}

    def to_original(matches: list[Match]) -> tuple[Match, ...]:
        return tuple(sorted((Match(ra[m.a], rb[m.b], m.iou) for m in matches), key=_by_a))

    return PairMatching(
        matches=to_original(within),
        class_disagreements=to_original(across),
        unmatched_a=tuple(ra[i] for i in range(len(ra)) if i not in paired_a),
        unmatched_b=tuple(rb[j] for j in range(len(rb)) if j not in paired_b),
        regions_a=len(ra),
        regions_b=len(rb),
    )


def _by_a(match: Match) -> int:
    return match.a
