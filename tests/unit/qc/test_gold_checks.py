"""Gold scoring on constructed answers, and the structural findings on one annotation."""

from __future__ import annotations

import pytest

from services.qc.domain.checks import check_annotation
from services.qc.domain.gold import score_against_gold

from .shapes import box, label, polygon

GOLD = [
    box("car", 0, 0, 10, 10),
    box("car", 20, 0, 10, 10),
    box("person", 40, 0, 10, 10),
    box("car", 60, 0, 10, 10),
]


def test_gold_scoring_is_exact_with_its_counts() -> None:
    answer = [
        box("car", 0, 0, 10, 10),  # IoU 1
        box("car", 22, 0, 10, 10),  # IoU 80 / 120
        box("car", 40, 0, 10, 10),  # the person, called a car
        box("car", 100, 0, 10, 10),  # nothing there
    ]
    score = score_against_gold(answer, GOLD)
    assert (score.true_positives, score.false_positives, score.false_negatives) == (2, 2, 2)
    assert (score.precision.numerator, score.precision.denominator) == (2, 4)
    assert (score.recall.numerator, score.recall.denominator) == (2, 4)
    assert (score.f1.numerator, score.f1.denominator) == (4, 8)
    assert score.iou.count == 2
    assert score.iou.value == pytest.approx((1 + 80 / 120) / 2)
    assert (score.class_accuracy.numerator, score.class_accuracy.denominator) == (2, 3)
    assert score.unscored_shapes == 0


def test_a_perfect_answer_scores_one() -> None:
    score = score_against_gold(list(reversed(GOLD)), GOLD)
    assert score.precision.value == score.recall.value == score.f1.value == 1.0
    assert score.iou.value == 1.0 and score.class_accuracy.value == 1.0


def test_the_gold_iou_threshold_decides_a_true_positive() -> None:
    answer = [box("car", 0, 0, 10, 5)]  # IoU 0.5 with the first gold car
    assert score_against_gold(answer, GOLD[:1], iou_threshold=0.5).true_positives == 1
    strict = score_against_gold(answer, GOLD[:1], iou_threshold=0.75)
    assert (strict.true_positives, strict.false_positives, strict.false_negatives) == (0, 1, 1)
    assert strict.class_accuracy.value is None  # nothing found, nothing to name


def test_image_classes_are_scored_as_sets() -> None:
    wrong = score_against_gold([label("day")], [label("night")])
    assert (wrong.true_positives, wrong.false_positives, wrong.false_negatives) == (0, 1, 1)
    assert (wrong.class_accuracy.numerator, wrong.class_accuracy.denominator) == (0, 1)
    right = score_against_gold([label("night"), box("car", 0, 0, 10, 10)], [label("night")])
    assert (right.true_positives, right.false_positives, right.false_negatives) == (1, 1, 0)
    assert right.class_accuracy.value == 1.0


def test_empty_gold_and_empty_answer_leave_figures_undefined() -> None:
    score = score_against_gold([], [])
    assert score.f1.value is None and score.precision.value is None


def test_a_clean_annotation_has_no_findings() -> None:
    shapes = [box("car", 0, 0, 10, 10), box("car", 8, 0, 10, 10), label("night")]
    assert check_annotation(shapes) == []


def test_copies_of_one_box_are_one_duplicate_finding() -> None:
    shapes = [
        box("car", 0, 0, 100, 100),
        box("person", 300, 0, 10, 10),
        box("car", 1, 0, 100, 100),  # IoU 99 / 101 with the first
        box("car", 0, 0, 100, 100),
    ]
    findings = check_annotation(shapes)
    assert [(f.code, f.shapes) for f in findings] == [("duplicate_shape", (0, 2, 3))]
    assert "3 'car' shapes" in findings[0].message


def test_boxes_of_two_classes_on_one_object_overlap() -> None:
    shapes = [box("car", 0, 0, 100, 100), box("truck", 0, 0, 100, 95), box("car", 0, 0, 50, 50)]
    findings = check_annotation(shapes)
    assert [(f.code, f.shapes) for f in findings] == [("overlapping_shapes", (0, 1))]
    assert "'car', 'truck'" in findings[0].message


def test_polygons_are_checked_too() -> None:
    square = polygon("road", (0, 0), (10, 0), (10, 10), (0, 10))
    assert [f.code for f in check_annotation([square, box("road", 0, 0, 10, 10)])] == [
        "duplicate_shape"
    ]


def test_classes_the_policy_forbids_together() -> None:
    shapes = [label("day"), box("car", 0, 0, 10, 10), label("night")]
    findings = check_annotation(shapes, forbidden_together=[("night", "day"), ("car", "boat")])
    assert [(f.code, f.shapes) for f in findings] == [("forbidden_classes", (0, 2))]
    assert findings[0].message == "'day' and 'night' may not appear together in one image"
