"""Label Studio's formats <-> Conveyor's: labeling config, results in percent, predictions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from services.labeling_dispatch.domain.label_studio import (
    labeling_config,
    prediction,
    prediction_results,
    shapes_from_results,
)
from services.labeling_dispatch.domain.ontology import OntologySpec, validate_shapes
from services.labeling_dispatch.vendor_edges.label_studio_api import updated_after_query

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
            {"name": 'road "A" & <lane>', "shape": "polygon"},
            {
                "name": "person",
                "shape": "keypoints",
                "keypoints": ["nose", "left_eye"],
                "attributes": [{"name": "pose", "type": "enum", "values": ["up", "down"]}],
            },
            {
                "name": "indoor",
                "shape": "classification",
                "attributes": [{"name": "lit", "type": "bool"}],
            },
            {"name": "night", "shape": "classification"},
        ]
    }
)
W, H = 640, 480


def rectangle(
    x: float, y: float, w: float, h: float, label: str = "car", **extra: Any
) -> dict[str, Any]:
    return {
        "id": "r1",
        "from_name": "bbox",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": W,
        "original_height": H,
        "image_rotation": 0,
        "value": {
            "x": x,
            "y": y,
            "width": w,
            "height": h,
            "rotation": 0,
            "rectanglelabels": [label],
        }
        | extra,
    }


def choice(control: str, value: str, region: str = "r1") -> dict[str, Any]:
    return {
        "id": region,
        "from_name": control,
        "to_name": "image",
        "type": "choices",
        "value": {"choices": [value]},
    }


def point(name: str, x: float, y: float, region: str) -> dict[str, Any]:
    return {
        "id": region,
        "from_name": "keypoints_2",
        "to_name": "image",
        "type": "keypointlabels",
        "original_width": W,
        "original_height": H,
        "value": {"x": x, "y": y, "width": 0.6, "keypointlabels": [name]},
    }


# --- labeling config -----------------------------------------------------------------------


def test_the_config_has_one_control_per_kind_of_shape_and_escapes_names() -> None:
    config = labeling_config(SPEC)
    root = ElementTree.fromstring(config)
    assert root.tag == "View"
    image = root.find("Image")
    assert image is not None and image.get("value") == "$image"
    bbox = root.find("RectangleLabels[@name='bbox']")
    polygon = root.find("PolygonLabels[@name='polygon']")
    keypoints = root.find("KeyPointLabels[@name='keypoints_2']")
    classification = root.find("Choices[@name='classification']")
    assert bbox is not None and [e.get("value") for e in bbox] == ["car"]
    assert polygon is not None and [e.get("value") for e in polygon] == ['road "A" & <lane>']
    assert keypoints is not None and [e.get("value") for e in keypoints] == ["nose", "left_eye"]
    assert classification is not None
    assert [e.get("value") for e in classification] == ["indoor", "night"]
    assert "&amp; &lt;lane&gt;" in config and 'road "A"' not in config


def test_attributes_become_per_region_controls_shown_for_their_class_only() -> None:
    root = ElementTree.fromstring(labeling_config(SPEC))
    car = root.find("View[@whenLabelValue='car']")
    assert car is not None and car.get("visibleWhen") == "region-selected"
    color = car.find("Choices[@name='attribute_0_0']")
    occluded = car.find("Choices[@name='attribute_0_1']")
    note = car.find("TextArea[@name='attribute_0_2']")
    assert color is not None and [c.get("value") for c in color] == ["red", "blue"]
    assert occluded is not None and [c.get("value") for c in occluded] == ["true", "false"]
    assert note is not None and note.get("perRegion") == "true"
    assert all(c.get("perRegion") == "true" for c in (color, occluded))
    lit = root.find("View[@whenChoiceValue='indoor']/Choices[@name='attribute_3_0']")
    assert lit is not None and lit.get("perRegion") is None  # image-level, as the class is


def test_a_config_without_some_kinds_leaves_their_controls_out() -> None:
    spec = OntologySpec.model_validate({"classes": [{"name": "cat", "shape": "bbox"}]})
    root = ElementTree.fromstring(labeling_config(spec))
    assert [e.tag for e in root] == ["Image", "RectangleLabels"]


# --- results -> canonical shapes -------------------------------------------------------------


def test_a_rectangle_in_percent_becomes_a_pixel_bbox_with_its_attributes() -> None:
    results = [
        rectangle(10, 25, 50, 12.5),
        choice("attribute_0_0", "blue"),
        choice("attribute_0_1", "false"),
        {"id": "r1", "from_name": "attribute_0_2", "type": "textarea", "value": {"text": ["dent"]}},
    ]
    converted = shapes_from_results(SPEC, results, width=None, height=None)
    assert converted.problems == []
    assert converted.shapes == [
        {
            "class": "car",
            "type": "bbox",
            "bbox": {"x": 64.0, "y": 120.0, "width": 320.0, "height": 60.0},
            "attributes": {"color": "blue", "occluded": False, "note": "dent"},
        }
    ]
    assert validate_shapes(SPEC, converted.shapes, width=W, height=H)[1] == []


def test_the_results_own_image_size_wins_over_the_assets() -> None:
    result = rectangle(50, 50, 10, 10) | {"original_width": 1000, "original_height": 200}
    shape = shapes_from_results(SPEC, [result], width=W, height=H).shapes[0]
    assert shape["bbox"] == {"x": 500.0, "y": 100.0, "width": 100.0, "height": 20.0}
    no_size = {k: v for k, v in rectangle(50, 50, 10, 10).items() if not k.startswith("original")}
    shape = shapes_from_results(SPEC, [no_size], width=W, height=H).shapes[0]
    assert shape["bbox"]["x"] == 320.0


def test_a_result_without_any_image_size_is_a_problem() -> None:
    no_size = {k: v for k, v in rectangle(50, 50, 10, 10).items() if not k.startswith("original")}
    converted = shapes_from_results(SPEC, [no_size], width=None, height=None)
    assert converted.shapes == []
    assert [(p.field, p.code) for p in converted.problems] == [
        ("result[0].original_width", "malformed")
    ]


def test_a_polygon_in_percent_becomes_pixel_points() -> None:
    result = {
        "id": "p1",
        "from_name": "polygon",
        "type": "polygonlabels",
        "original_width": W,
        "original_height": H,
        "value": {"points": [[0, 0], [50, 0], [25, 100]], "polygonlabels": ['road "A" & <lane>']},
    }
    converted = shapes_from_results(SPEC, [result], width=None, height=None)
    assert converted.shapes == [
        {
            "class": 'road "A" & <lane>',
            "type": "polygon",
            "points": [[0.0, 0.0], [320.0, 0.0], [160.0, 480.0]],
            "attributes": {},
        }
    ]


def test_points_group_into_instances_a_repeated_name_starting_the_next() -> None:
    results = [
        point("nose", 10, 10, "a"),
        point("left_eye", 12, 8, "b"),
        choice("attribute_2_0", "down", region="b"),
        point("nose", 50, 50, "c"),
    ]
    converted = shapes_from_results(SPEC, results, width=None, height=None)
    assert converted.problems == []
    first, second = converted.shapes
    assert first["keypoints"] == [
        {"name": "nose", "x": 64.0, "y": 48.0, "visible": True},
        {"name": "left_eye", "x": 76.8, "y": 38.4, "visible": True},
    ]
    assert first["attributes"] == {"pose": "down"}
    assert second == {
        "class": "person",
        "type": "keypoints",
        "keypoints": [{"name": "nose", "x": 320.0, "y": 240.0, "visible": True}],
        "attributes": {},
    }


def test_chosen_classes_become_classifications_with_image_level_attributes() -> None:
    results = [
        {
            "id": "x",
            "from_name": "classification",
            "type": "choices",
            "value": {"choices": ["indoor", "night"]},
        },
        choice("attribute_3_0", "true", region="y"),
    ]
    converted = shapes_from_results(SPEC, results, width=None, height=None)
    assert converted.shapes == [
        {"class": "indoor", "type": "classification", "attributes": {"lit": True}},
        {"class": "night", "type": "classification", "attributes": {}},
    ]


def test_an_unknown_class_and_a_box_off_the_image_are_left_for_the_validator() -> None:
    converted = shapes_from_results(
        SPEC,
        [rectangle(90, 10, 20, 10, label="truck"), rectangle(95, 10, 20, 10)],
        width=W,
        height=H,
    )
    assert converted.problems == []
    problems = validate_shapes(SPEC, converted.shapes, width=W, height=H)[1]
    assert {(p.index, p.code) for p in problems} >= {(0, "unknown_class"), (1, "out_of_bounds")}


def test_what_has_no_canonical_form_is_reported_per_result() -> None:
    rotated = rectangle(10, 10, 10, 10, rotation=30)
    on_rotated_image = rectangle(10, 10, 10, 10) | {"image_rotation": 90}
    two_labels = rectangle(10, 10, 10, 10)
    two_labels["value"]["rectanglelabels"] = ["car", "bus"]
    unknown_control = rectangle(10, 10, 10, 10) | {"from_name": "brush"}
    converted = shapes_from_results(
        SPEC,
        [rotated, on_rotated_image, two_labels, unknown_control, "junk"],
        width=None,
        height=None,
    )
    assert converted.shapes == []
    assert [p.field for p in converted.problems] == [
        "result[0].value.rotation",
        "result[1].image_rotation",
        "result[2].value.rectanglelabels",
        "result[3].from_name",
        "result[4]",
    ]
    assert shapes_from_results(SPEC, {"not": "a list"}, width=W, height=H).problems[0].field == (
        "result"
    )


# --- canonical shapes -> predictions -----------------------------------------------------------


SHAPES: list[dict[str, Any]] = [
    {
        "class": "car",
        "type": "bbox",
        "bbox": {"x": 64, "y": 120, "width": 320, "height": 60},
        "attributes": {"color": "red", "occluded": True, "note": "dent"},
        "score": 0.8,
    },
    {"class": 'road "A" & <lane>', "type": "polygon", "points": [[0, 0], [320, 0], [160, 480]]},
    {
        "class": "person",
        "type": "keypoints",
        "keypoints": [
            {"name": "nose", "x": 64, "y": 48, "visible": False},
            {"name": "left_eye", "x": 76.8, "y": 38.4, "visible": True},
        ],
        "attributes": {"pose": "up"},
        "score": 0.6,
    },
    {"class": "indoor", "type": "classification", "attributes": {"lit": False}},
]


def test_a_predicted_bbox_is_sent_in_percent_with_its_score_and_attributes() -> None:
    results = prediction_results(SPEC, SHAPES[:1], width=W, height=H)
    box, color, occluded, note = results
    assert box["type"] == "rectanglelabels" and box["from_name"] == "bbox"
    assert box["value"] == {
        "x": 10.0,
        "y": 25.0,
        "width": 50.0,
        "height": 12.5,
        "rotation": 0,
        "rectanglelabels": ["car"],
    }
    assert (box["original_width"], box["original_height"], box["score"]) == (W, H, 0.8)
    assert {r["id"] for r in results} == {box["id"]}
    assert color["value"] == {"choices": ["red"]} and occluded["value"] == {"choices": ["true"]}
    assert note["type"] == "textarea" and note["value"] == {"text": ["dent"]}


def test_invisible_predicted_points_are_not_sent() -> None:
    results = prediction_results(SPEC, SHAPES[2:3], width=W, height=H)
    points = [r for r in results if r["type"] == "keypointlabels"]
    assert [p["value"]["keypointlabels"] for p in points] == [["left_eye"]]
    pose = next(r for r in results if r["from_name"] == "attribute_2_0")
    assert pose["id"] == points[0]["id"]


def test_predictions_read_back_as_the_shapes_they_came_from() -> None:
    visible = [s for s in SHAPES if s["class"] != "person"]
    results = prediction_results(SPEC, visible, width=W, height=H)
    back = shapes_from_results(SPEC, results, width=None, height=None)
    assert back.problems == []
    expected = [
        {k: v for k, v in s.items() if k != "score"} | {"attributes": s.get("attributes", {})}
        for s in visible
    ]
    assert back.shapes == expected  # rounded to 1e-6 px: no float noise left
    assert validate_shapes(SPEC, back.shapes, width=W, height=H)[1] == []


def test_a_prediction_carries_the_model_and_the_mean_score() -> None:
    made = prediction(SPEC, SHAPES, width=W, height=H, model_version="detector-3")
    assert made["model_version"] == "detector-3"
    assert made["score"] == pytest.approx(0.7)
    assert prediction(SPEC, SHAPES[1:2], width=W, height=H, model_version="m")["score"] is None


# --- the reconcile query ---------------------------------------------------------------------


def test_the_updated_since_filter_always_carries_microseconds_in_utc() -> None:
    moment = datetime(2026, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    query = updated_after_query(moment)
    assert '"value":"2026-05-01T12:00:00.000000Z"' in query
    assert '"filter":"filter:tasks:updated_at"' in query and '"operator":"greater"' in query
    naive = updated_after_query(datetime(2026, 5, 1, 12, 0, 0, 5))
    assert '"value":"2026-05-01T12:00:00.000005Z"' in naive
    assert updated_after_query(datetime(2026, 5, 1, 12, tzinfo=UTC)) == updated_after_query(
        datetime(2026, 5, 1, 12)
    )


def test_the_annotation_in_a_captured_label_studio_webhook_converts_to_pixels() -> None:
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "label_studio_webhooks.json"
    calls = json.loads(fixture.read_text())["calls"]
    assert [c["body"]["action"] for c in calls] == [
        "ANNOTATION_CREATED",
        "ANNOTATION_UPDATED",
        "ANNOTATIONS_DELETED",
    ]
    created = calls[0]["body"]
    assert calls[0]["headers"]["X-Conveyor-Vendor-Token"] == "header-secret"  # static header
    assert created["task"]["data"]["conveyor_task_id"] == "0b8f7d2e-0000-4000-8000-000000000001"
    spec = OntologySpec.model_validate({"classes": [{"name": "car", "shape": "bbox"}]})
    converted = shapes_from_results(spec, created["annotation"]["result"], width=None, height=None)
    assert converted.shapes[0]["bbox"] == {"x": 64.0, "y": 120.0, "width": 320.0, "height": 60.0}
    assert calls[2]["body"]["annotations"] == [{"id": created["annotation"]["id"]}]
