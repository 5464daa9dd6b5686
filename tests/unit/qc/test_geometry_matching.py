"""IoU of boxes and polygons, and the optimal pairing of two annotators' shapes."""

from __future__ import annotations

import pytest

from services.qc.domain.geometry import Box, box_iou, iou_matrix, polygon_area, shape_iou
from services.qc.domain.matching import match_shapes

from .shapes import box, label, polygon

# An L: the 10x10 square less its 5x5 quarter at x < 5, y > 5 (the notch).
ELL = polygon("road", (0, 0), (10, 0), (10, 10), (5, 10), (5, 5), (0, 5))


def test_box_iou_is_intersection_over_union() -> None:
    assert box_iou(Box(0, 0, 10, 10), Box(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou(Box(0, 0, 10, 10), Box(10, 0, 10, 10)) == 0.0
    assert box_iou(Box(0, 0, 10, 10), Box(0, 0, 10, 10)) == 1.0


def test_concave_polygon_iou_sees_the_notch() -> None:
    assert polygon_area(ELL["points"]) == 75.0
    assert shape_iou(ELL, box("road", 0, 0, 10, 10)) == pytest.approx(0.75)
    # The box fills exactly the notch: a convex-hull IoU would say they overlap.
    assert shape_iou(ELL, box("road", 0, 5, 5, 5)) == 0.0
    assert shape_iou(ELL, ELL) == pytest.approx(1.0)


def test_iou_matrix_mixes_boxes_and_polygons() -> None:
    m = iou_matrix([ELL, box("car", 0, 0, 10, 10)], [box("car", 0, 0, 10, 5)])
    assert m.shape == (2, 1)
    assert m[0, 0] == pytest.approx(50 / 75)
    assert m[1, 0] == pytest.approx(0.5)


def test_a_missing_box_is_unmatched_and_lowers_f1() -> None:
    a = [box("car", 0, 0, 10, 10), box("car", 50, 50, 10, 10)]
    b = [box("car", 1, 0, 10, 10)]
    result = match_shapes(a, b)
    assert [(m.a, m.b) for m in result.matches] == [(0, 0)]
    assert result.matches[0].iou == pytest.approx(90 / 110)
    assert result.unmatched_a == (1,) and result.unmatched_b == ()
    assert result.f1.numerator == 2 and result.f1.denominator == 3


def test_same_object_with_two_classes_is_a_class_disagreement() -> None:
    result = match_shapes([box("car", 0, 0, 10, 10)], [box("truck", 0, 0, 10, 10)])
    assert result.matches == ()
    assert [(m.a, m.b, m.iou) for m in result.class_disagreements] == [(0, 0, 1.0)]
    assert result.unmatched_a == () and result.unmatched_b == ()
    assert result.f1.value == 0.0


def test_assignment_is_optimal_where_greedy_pairing_loses_a_match() -> None:
    # a1-b1 0.54, a2-b1 0.82, a2-b2 0.54, a1-b2 0.18: best-first takes a2-b1 and strands a1.
    a = [box("car", 0, 0, 10, 10), box("car", 4, 0, 10, 10)]
    b = [box("car", 3, 0, 10, 10), box("car", 7, 0, 10, 10)]
    result = match_shapes(a, b)
    assert [(m.a, m.b) for m in result.matches] == [(0, 0), (1, 1)]


def test_threshold_is_inclusive_and_non_regions_are_ignored() -> None:
    a = [label("night"), box("car", 0, 0, 10, 10)]
    b = [box("car", 0, 0, 10, 5)]  # IoU exactly 0.5
    result = match_shapes(a, b, iou_threshold=0.5)
    assert [(m.a, m.b) for m in result.matches] == [(1, 0)]
    assert result.regions_a == 1
    assert match_shapes(a, b, iou_threshold=0.51).matches == ()


def test_threshold_outside_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        match_shapes([], [], iou_threshold=0.0)


def test_empty_answers_match_nothing() -> None:
    result = match_shapes([], [box("car", 0, 0, 1, 1)])
    assert result.matches == () and result.unmatched_b == (0,)
    assert result.f1.value == 0.0 and result.iou.value is None
