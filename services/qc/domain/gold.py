"""A vendor's answer to a gold task scored against the known answer.

Every figure comes with its counts (:class:`Ratio`, :class:`Mean`) so a vendor's scorecard is
the exact sum of its gold results, added as they arrive.

Region shapes are paired as two annotators' are (:func:`match_shapes`): a true positive is a
same-class pair at the IoU threshold. A pair found by geometry but given the wrong class is not
a true positive; it counts against class accuracy, which is asked "of the objects the vendor
found, how many did it name right?". Image-level classes are compared as sets (each class in
both answers is a true positive); when both answers name classes, they count as found objects
for class accuracy too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.qc.domain.geometry import COMPARED_TYPES, Shape
from services.qc.domain.matching import DEFAULT_IOU_THRESHOLD, match_shapes
from services.qc.domain.ratios import Mean, Ratio


@dataclass(frozen=True)
class GoldScore:
    """How an answer compares with the gold answer of the same asset."""

    true_positives: int
    false_positives: int
    false_negatives: int
    iou: Mean
    class_accuracy: Ratio
    unscored_shapes: int

    @property
    def precision(self) -> Ratio:
        return Ratio(self.true_positives, self.true_positives + self.false_positives)

    @property
    def recall(self) -> Ratio:
        return Ratio(self.true_positives, self.true_positives + self.false_negatives)

    @property
    def f1(self) -> Ratio:
        tp = self.true_positives
        return Ratio(2 * tp, 2 * tp + self.false_positives + self.false_negatives)


def score_against_gold(
    answer: Sequence[Shape],
    gold: Sequence[Shape],
    *,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
) -> GoldScore:
    """Score ``answer`` against ``gold``; keypoint shapes are counted in ``unscored_shapes``."""
    regions = match_shapes(answer, gold, iou_threshold=iou_threshold)
    found = len(regions.matches)
    answered = _classes(answer)
    expected = _classes(gold)
    both = len(answered & expected)
    named = min(len(answered), len(expected))
    unscored = sum(1 for s in [*answer, *gold] if s.get("type") not in COMPARED_TYPES)
    return GoldScore(
        true_positives=found + both,
        false_positives=regions.regions_a - found + len(answered) - both,
        false_negatives=regions.regions_b - found + len(expected) - both,
        iou=regions.iou,
        class_accuracy=Ratio(found + both, found + len(regions.class_disagreements) + named),
        unscored_shapes=unscored,
    )


def _classes(shapes: Sequence[Shape]) -> set[str]:
    return {s["class"] for s in shapes if s.get("type") == "classification"}
