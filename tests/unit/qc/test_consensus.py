"""Consensus of several annotators on one asset, against hand-computed figures."""

from __future__ import annotations

import pytest

from services.qc.domain.consensus import ConsensusPolicy, compute_consensus

from .shapes import box, label, polygon


def test_three_annotators_keep_what_a_majority_drew() -> None:
    result = compute_consensus(
        {
            "ann-c": [box("car", 2, 0, 10, 10), box("dog", 80, 80, 5, 5)],
            "ann-a": [box("car", 0, 0, 10, 10), box("person", 40, 0, 10, 20)],
            "ann-b": [box("car", 1, 0, 10, 10), box("person", 40, 2, 10, 20)],
        }
    )
    assert result.annotators == ("ann-a", "ann-b", "ann-c")
    by_class = {s.shape["class"]: s for s in result.shapes}
    assert sorted(by_class) == ["car", "person"]
    assert by_class["car"].support == ("ann-a", "ann-b", "ann-c")
    assert by_class["car"].shape["bbox"] == pytest.approx(
        {"x": 1.0, "y": 0.0, "width": 10.0, "height": 10.0}
    )
    assert by_class["person"].support == ("ann-a", "ann-b")
    assert by_class["person"].shape["bbox"] == pytest.approx(
        {"x": 40.0, "y": 1.0, "width": 10.0, "height": 20.0}
    )
    assert result.left_out_shapes == 1  # the dog only C saw
    # Pairs a-b, a-c, b-c: car IoUs 90/110, 80/120, 90/110; person IoU (a-b) 180/220.
    ious = [90 / 110, 80 / 120, 90 / 110, 180 / 220]
    assert result.iou.count == 4
    assert result.iou.value == pytest.approx(sum(ious) / 4)
    # Region shapes per pair: a-b 2+2, a-c 2+2, b-c 2+2; matches 2, 1, 1.
    assert (result.f1.numerator, result.f1.denominator) == (8, 12)
    assert result.agreement == pytest.approx(2 * sum(ious) / 12)
    assert result.unmatched_shapes == 4  # a-c: person, dog; b-c: person, dog
    assert result.class_disagreements == 0
    assert result.passed is False
    assert "below" in result.reasons[0]


def test_two_annotators_disagreeing_on_class_agree_on_nothing() -> None:
    result = compute_consensus({"a": [box("car", 0, 0, 10, 10)], "b": [box("truck", 0, 0, 10, 10)]})
    assert result.class_disagreements == 1
    assert result.unmatched_shapes == 0
    assert result.shapes == ()
    assert result.left_out_shapes == 2
    assert result.agreement == 0.0
    assert not result.passed


def test_a_missing_box_lowers_agreement_below_the_policy() -> None:
    replicas = {
        "a": [box("car", 0, 0, 10, 10), box("car", 50, 0, 10, 10)],
        "b": [box("car", 0, 0, 10, 10)],
    }
    result = compute_consensus(replicas)
    # One match with IoU 1 out of 2 + 1 shapes: 2 * 1 / 3.
    assert result.agreement == pytest.approx(2 / 3)
    assert result.unmatched_shapes == 1
    assert [s.shape["bbox"]["x"] for s in result.shapes] == [0.0]
    assert not result.passed
    assert compute_consensus(replicas, ConsensusPolicy(min_agreement=0.6)).passed


def test_full_agreement_passes_with_attributes_voted() -> None:
    red = {"attributes": {"color": "red"}}
    result = compute_consensus(
        {
            "a": [box("car", 0, 0, 10, 10, **red)],
            "b": [box("car", 0, 0, 10, 10, attributes={"color": "blue"})],
            "c": [box("car", 0, 0, 10, 10, **red)],
        }
    )
    assert result.agreement == 1.0 and result.passed and result.reasons == ()
    assert result.label_set == [
        {
            "class": "car",
            "type": "bbox",
            "bbox": {"x": 0.0, "y": 0.0, "width": 10.0, "height": 10.0},
            "attributes": {"color": "red"},
        }
    ]


def test_boxes_with_scores_are_averaged_by_score() -> None:
    result = compute_consensus(
        {"a": [box("car", 0, 0, 100, 10, score=0.9)], "b": [box("car", 10, 0, 100, 10, score=0.1)]}
    )
    assert result.label_set[0]["bbox"] == pytest.approx(
        {"x": 1.0, "y": 0.0, "width": 100.0, "height": 10.0}
    )


def test_polygons_take_the_member_overlapping_the_others_most() -> None:
    square = polygon("road", (0, 0), (10, 0), (10, 10), (0, 10))
    shifted = polygon("road", (1, 0), (11, 0), (11, 10), (1, 10))
    further = polygon("road", (3, 0), (13, 0), (13, 10), (3, 10))
    result = compute_consensus({"a": [square], "b": [shifted], "c": [further]})
    assert result.label_set[0]["points"] == shifted["points"]


def test_image_class_by_majority_vote() -> None:
    result = compute_consensus({"a": [label("night")], "b": [label("night")], "c": [label("day")]})
    assert result.class_votes == {"day": 1, "night": 2}
    assert result.label_set == [{"class": "night", "type": "classification", "attributes": {}}]
    # Class-set F1 over pairs a-b (1 shared), a-c, b-c (none): 2 / 6.
    assert result.agreement == pytest.approx(1 / 3)


def test_no_majority_class_means_no_image_class() -> None:
    result = compute_consensus({"a": [label("night")], "b": [label("day")]})
    assert result.label_set == [] and result.agreement == 0.0


def test_a_shape_joins_at_most_one_cluster_per_annotator() -> None:
    # c1 overlaps b1 well, but b1 is with a1 and c1 with a2: joining them would put two of
    # A's boxes in one object.
    result = compute_consensus(
        {
            "a": [box("car", 0, 0, 10, 10), box("car", 4, 0, 10, 10)],
            "b": [box("car", 1, 0, 10, 10)],
            "c": [box("car", 3, 0, 10, 10)],
        }
    )
    assert sorted(s.support for s in result.shapes) == [("a", "b"), ("a", "c")]


def test_one_answer_never_passes_and_empty_answers_agree() -> None:
    single = compute_consensus({"a": [box("car", 0, 0, 10, 10)]})
    assert single.agreement is None and not single.passed
    assert "at least 2" in single.reasons[0]
    empty = compute_consensus({"a": [], "b": []})
    assert empty.agreement == 1.0 and empty.passed and empty.shapes == ()


def test_keypoints_send_the_asset_to_review() -> None:
    nose = {"name": "nose", "x": 1, "y": 1}
    person = {"class": "person", "type": "keypoints", "keypoints": [nose]}
    result = compute_consensus({"a": [person], "b": [person]})
    assert result.uncompared_shapes == 2
    assert not result.passed and "keypoint" in result.reasons[0]


def test_a_policy_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        ConsensusPolicy(iou_threshold=1.5)
    with pytest.raises(ValueError):
        ConsensusPolicy(min_agreement=-0.1)
