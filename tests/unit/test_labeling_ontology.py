"""Ontology specs and the check of annotations against them (pure, no I/O)."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from pydantic import ValidationError

from services.labeling_dispatch.domain.ontology import (
    OntologySpec,
    Problem,
    segments_meet,
    validate_shapes,
)

SPEC = OntologySpec.model_validate(
    {
        "classes": [
            {
                "name": "car",
                "shape": "bbox",
                "attributes": [
                    {"name": "color", "type": "enum", "values": ["red", "blue"], "required": True},
                    {"name": "occluded", "type": "bool"},
                    {"name": "note", "type": "text"},
                ],
            },
            {"name": "road", "shape": "polygon"},
            {"name": "person", "shape": "keypoints", "keypoints": ["nose", "left_eye"]},
            {"name": "indoor", "shape": "classification"},
        ]
    }
)


def car(**bbox: Any) -> dict[str, Any]:
    box = {"x": 10, "y": 20, "width": 100, "height": 50} | bbox
    return {"class": "car", "type": "bbox", "bbox": box, "attributes": {"color": "red"}}


def road(points: object) -> dict[str, Any]:
    return {"class": "road", "type": "polygon", "points": points}


def check(*shapes: object, width: int | None = 640, height: int | None = 480) -> list[Problem]:
    return validate_shapes(SPEC, list(shapes), width=width, height=height)[1]


def codes(problems: list[Problem]) -> list[tuple[int | None, str, str]]:
    return [(p.index, p.field, p.code) for p in problems]


# --- specs ---------------------------------------------------------------------------------


def spec_error(spec: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        OntologySpec.model_validate(spec)
    return str(caught.value)


def test_spec_refuses_repeated_class_names() -> None:
    classes = [{"name": "car", "shape": "bbox"}, {"name": "car", "shape": "polygon"}]
    assert "class names repeat" in spec_error({"classes": classes})


def test_spec_refuses_repeated_attribute_names() -> None:
    attrs = [{"name": "a", "type": "bool"}, {"name": "a", "type": "text"}]
    assert "repeats attributes" in spec_error(
        {"classes": [{"name": "car", "shape": "bbox", "attributes": attrs}]}
    )


@pytest.mark.parametrize("values", [None, [], ["a", "a"]])
def test_spec_enum_needs_distinct_values(values: list[str] | None) -> None:
    attr = {"name": "color", "type": "enum", "values": values}
    spec_error({"classes": [{"name": "car", "shape": "bbox", "attributes": [attr]}]})


def test_spec_values_only_on_enums() -> None:
    attr = {"name": "ok", "type": "bool", "values": ["yes"]}
    assert "only enum" in spec_error(
        {"classes": [{"name": "car", "shape": "bbox", "attributes": [attr]}]}
    )


@pytest.mark.parametrize("keypoints", [None, [], ["nose", "nose"]])
def test_spec_keypoints_class_needs_distinct_keypoint_names(keypoints: list[str] | None) -> None:
    spec_error({"classes": [{"name": "p", "shape": "keypoints", "keypoints": keypoints}]})


def test_spec_keypoint_names_only_on_keypoints_classes() -> None:
    spec_error({"classes": [{"name": "car", "shape": "bbox", "keypoints": ["nose"]}]})


@pytest.mark.parametrize(
    "spec",
    [
        {"classes": []},
        {"classes": [{"name": "car", "shape": "bbox"}], "extra": 1},
        {"classes": [{"name": "car", "shape": "bbox", "colour": "red"}]},
        {"classes": [{"name": "car", "shape": "circle"}]},
        {"classes": [{"name": " car", "shape": "bbox"}]},
        {"classes": [{"name": "", "shape": "bbox"}]},
    ],
)
def test_spec_refuses_extra_fields_and_bad_values(spec: dict[str, Any]) -> None:
    spec_error(spec)


# --- valid shapes and their normal form ------------------------------------------------------


def test_every_kind_of_valid_shape_passes_and_is_normalised() -> None:
    shapes = [
        car() | {"score": 0.93},
        road([[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]),
        {
            "class": "person",
            "type": "keypoints",
            "keypoints": [{"name": "nose", "x": 1, "y": 2}, {"name": "left_eye", "x": 3, "y": 4}],
        },
        {"class": "indoor", "type": "classification"},
    ]
    normalised, problems = validate_shapes(SPEC, shapes, width=640, height=480)
    assert problems == []
    assert normalised[0] == {
        "class": "car",
        "type": "bbox",
        "score": 0.93,
        "attributes": {"color": "red"},
        "bbox": {"x": 10.0, "y": 20.0, "width": 100.0, "height": 50.0},
    }
    # the explicit closing point is dropped
    assert normalised[1]["points"] == [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]
    assert normalised[2]["keypoints"][0] == {"name": "nose", "x": 1.0, "y": 2.0, "visible": True}
    assert normalised[3] == {"class": "indoor", "type": "classification", "attributes": {}}


def test_bbox_exactly_on_the_border_is_valid() -> None:
    assert check(car(x=0, y=0, width=640, height=480)) == []


def test_a_coordinate_within_half_a_pixel_outside_is_clamped_onto_the_image() -> None:
    normalised, problems = validate_shapes(
        SPEC, [car(x=-0.4, y=0, width=640.8, height=480.5)], width=640, height=480
    )
    assert problems == []
    assert normalised[0]["bbox"] == {"x": 0.0, "y": 0.0, "width": 640.0, "height": 480.0}


def test_unknown_image_size_skips_the_bounds_check() -> None:
    assert check(car(x=5000, y=9000), width=None, height=None) == []


def test_an_empty_annotation_is_valid() -> None:
    assert check() == []


# --- every problem, each with its index and field -------------------------------------------


def test_every_problem_of_every_shape_is_reported() -> None:
    problems = check(
        {"class": "truck", "type": "bbox", "bbox": {"x": 0, "y": 0, "width": 1, "height": 1}},
        car(width=0),
        "not an object",
        {"class": "car", "type": "polygon", "points": [[0, 0], [1, 0], [0, 1]]},
        car(x=600, y=-10),
    )
    assert codes(problems) == [
        (0, "class", "unknown_class"),
        (1, "bbox", "degenerate"),
        (2, "", "malformed"),
        (3, "type", "wrong_shape"),
        (3, "attributes.color", "missing_attribute"),
        (4, "bbox", "out_of_bounds"),
        (4, "bbox", "out_of_bounds"),
    ]


def test_shapes_that_are_not_a_list_are_malformed() -> None:
    _, problems = validate_shapes(SPEC, {"class": "car"}, width=10, height=10)
    assert codes(problems) == [(None, "shapes", "malformed")]


def test_attribute_problems() -> None:
    shape = car() | {
        "attributes": {"color": "green", "occluded": "yes", "note": "x" * 1001, "speed": 3}
    }
    assert codes(check(shape)) == [
        (0, "attributes.color", "bad_attribute_value"),
        (0, "attributes.occluded", "bad_attribute_value"),
        (0, "attributes.note", "bad_attribute_value"),
        (0, "attributes.speed", "unknown_attribute"),
    ]


def test_bool_attribute_refuses_numbers_and_text_refuses_non_strings() -> None:
    shape = car() | {"attributes": {"color": "red", "occluded": 1, "note": 5}}
    assert [p.code for p in check(shape)] == ["bad_attribute_value", "bad_attribute_value"]


def test_attributes_must_be_an_object() -> None:
    assert codes(check(car() | {"attributes": ["red"]})) == [(0, "attributes", "malformed")]


@pytest.mark.parametrize(
    ("shape", "field"),
    [
        ({"type": "bbox", "bbox": {"x": 0, "y": 0, "width": 1, "height": 1}}, "class"),
        ({k: v for k, v in car().items() if k != "type"}, "type"),
        ({"class": "indoor", "type": "hexagon"}, "type"),
        ({"class": "car", "type": "bbox", "attributes": {"color": "red"}}, "bbox"),
        (car() | {"bbox": [0, 0, 1, 1]}, "bbox"),
        (car() | {"bbox": {"x": 0, "y": 0, "width": 1}}, "bbox.height"),
        (car() | {"bbox": {"x": "0", "y": 0, "width": 1, "height": 1}}, "bbox.x"),
        (car() | {"bbox": {"x": True, "y": 0, "width": 1, "height": 1}}, "bbox.x"),
        (car() | {"bbox": {"x": 0, "y": 0, "width": 1, "height": 1, "z": 0}}, "bbox.z"),
        (car() | {"points": [[0, 0]]}, "points"),
        (road("0,0 1,1 2,0"), "points"),
        (road([[0, 0], [1, 0], [0]]), "points[2]"),
        (road([[0, 0], [1, 0], [0, None]]), "points[2][1]"),
        ({"class": "indoor", "type": "classification", "score": "high"}, "score"),
        ({"class": "indoor", "type": "classification", "score": 1.5}, "score"),
    ],
)
def test_malformed_entries_name_the_field(shape: dict[str, Any], field: str) -> None:
    assert codes(check(shape)) == [(0, field, "malformed")]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(bad: float) -> None:
    assert codes(check(car(y=bad))) == [(0, "bbox.y", "not_finite")]
    assert codes(check(road([[0, 0], [bad, 0], [0, 1]]))) == [(0, "points[1][0]", "not_finite")]


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, 0), (-5, 10)])
def test_bbox_without_area_is_degenerate(width: float, height: float) -> None:
    assert codes(check(car(width=width, height=height))) == [(0, "bbox", "degenerate")]


def test_bbox_entirely_outside_the_image_is_out_of_bounds_once_per_corner() -> None:
    assert [p.code for p in check(car(x=700, y=10))] == ["out_of_bounds", "out_of_bounds"]


# --- polygons ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "points",
    [
        [[0, 0], [1, 1]],
        [[0, 0], [1, 1], [1, 1], [0, 0]],  # two distinct points only
        [[0, 0], [1, 1], [2, 2]],  # a line
        [[0, 0], [1, 0], [2, 0], [3, 0]],  # a longer line, doubling back
    ],
)
def test_polygon_without_area_is_degenerate(points: list[list[float]]) -> None:
    assert codes(check(road(points))) == [(0, "points", "degenerate")]


def test_bow_tie_polygon_is_self_intersecting() -> None:
    assert codes(check(road([[0, 0], [10, 10], [10, 0], [0, 10]]))) == [
        (0, "points", "self_intersecting")
    ]
    # an uneven bow tie has a non-zero signed area: still refused
    assert codes(check(road([[0, 0], [10, 10], [10, 0], [0, 4]]))) == [
        (0, "points", "self_intersecting")
    ]


def test_concave_polygon_with_close_edges_is_valid() -> None:
    # a U shape: the inner edges come within 1 px of each other without touching
    u_shape = [[0, 0], [10, 0], [10, 10], [5.5, 10], [5.5, 1], [4.5, 1], [4.5, 10], [0, 10]]
    assert check(road(u_shape)) == []


def test_vertex_touching_another_edge_is_self_intersecting() -> None:
    # the vertex (5, 0) lies on the bottom edge: two loops meeting at a point, not a simple polygon
    touching = [[0, 0], [10, 0], [10, 10], [5, 0], [0, 10]]
    assert codes(check(road(touching))) == [(0, "points", "self_intersecting")]


def test_polygon_visiting_a_vertex_twice_is_self_intersecting() -> None:
    figure_eight = [[0, 0], [5, 5], [10, 0], [10, 10], [5, 5], [0, 10]]
    assert codes(check(road(figure_eight))) == [(0, "points", "self_intersecting")]


def test_collinear_overlapping_edges_are_self_intersecting() -> None:
    # the outline runs along y=0 twice, in opposite directions
    overlapping = [[0, 0], [10, 0], [10, 5], [8, 5], [8, 0], [2, 0], [2, 5], [0, 5]]
    assert codes(check(road(overlapping))) == [(0, "points", "self_intersecting")]


def test_polygon_folding_back_on_an_edge_is_self_intersecting() -> None:
    spike = [[0, 0], [10, 0], [10, 10], [5, 10], [5, 20], [5, 15], [0, 10]]
    assert [p.code for p in check(road(spike), width=None, height=None)] == ["self_intersecting"]


def test_polygon_points_outside_the_image_are_named() -> None:
    assert codes(check(road([[0, 0], [700, 0], [0, 500]]))) == [
        (0, "points[1]", "out_of_bounds"),
        (0, "points[2]", "out_of_bounds"),
    ]


@pytest.mark.parametrize(
    ("p1", "p2", "q1", "q2", "meet"),
    [
        ((0, 0), (10, 10), (0, 10), (10, 0), True),  # proper crossing
        ((0, 0), (10, 0), (5, 0), (5, 5), True),  # an end on the other segment
        ((0, 0), (10, 0), (10, 0), (20, 5), True),  # shared end
        ((0, 0), (10, 0), (5, 0), (15, 0), True),  # collinear overlap
        ((0, 0), (10, 0), (10.5, 0), (15, 0), False),  # collinear, apart
        ((0, 0), (10, 0), (5, 0.001), (5, 5), False),  # close, not touching
        ((0, 0), (10, 10), (0, 1), (10, 11), False),  # parallel
        ((0, 0), (4, 4), (5, 0), (5, 10), False),  # would cross if extended
    ],
)
def test_segments_meet(
    p1: tuple[float, float],
    p2: tuple[float, float],
    q1: tuple[float, float],
    q2: tuple[float, float],
    meet: bool,
) -> None:
    assert segments_meet(p1, p2, q1, q2) is meet
    assert segments_meet(q2, q1, p2, p1) is meet


def test_large_simple_polygon_is_checked_quickly() -> None:
    circle = [
        [320 + 200 * math.cos(2 * math.pi * k / 5000), 240 + 200 * math.sin(2 * math.pi * k / 5000)]
        for k in range(5000)
    ]
    started = time.perf_counter()
    assert check(road(circle)) == []
    assert time.perf_counter() - started < 1.0


# --- keypoints and classification -------------------------------------------------------------


def test_keypoint_problems() -> None:
    shape = {
        "class": "person",
        "type": "keypoints",
        "keypoints": [
            {"name": "nose", "x": 1, "y": 2},
            {"name": "tail", "x": 1, "y": 2},
            {"name": "nose", "x": 3, "y": 4},
            {"name": "left_eye", "x": 900, "y": 2, "visible": "yes"},
            {"x": 1},
        ],
    }
    assert codes(check(shape)) == [
        (0, "keypoints[1].name", "unknown_keypoint"),
        (0, "keypoints[2].name", "duplicate_keypoint"),
        (0, "keypoints[3].visible", "malformed"),
        (0, "keypoints[3]", "out_of_bounds"),
        (0, "keypoints[4].name", "malformed"),
        (0, "keypoints[4].y", "malformed"),
    ]


def test_keypoints_must_be_a_non_empty_list() -> None:
    shape = {"class": "person", "type": "keypoints", "keypoints": []}
    assert codes(check(shape)) == [(0, "keypoints", "malformed")]


def test_classification_carries_no_geometry() -> None:
    shape = {"class": "indoor", "type": "classification", "bbox": {"x": 0}}
    assert codes(check(shape)) == [(0, "bbox", "malformed")]


def test_valid_shapes_are_kept_when_others_are_not() -> None:
    normalised, problems = validate_shapes(SPEC, [car(), car(width=-1)], width=640, height=480)
    assert len(normalised) == 1
    assert [p.index for p in problems] == [1]


def test_one_bbox_is_checked_in_well_under_100_microseconds() -> None:
    shapes = [car()]
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        validate_shapes(SPEC, shapes, width=640, height=480)
    assert (time.perf_counter() - started) / rounds < 100e-6
