"""What a delivery carries to a vendor, and which vendor a released task may go to next."""

from __future__ import annotations

import json
import uuid

from services.labeling_dispatch.domain.batches import (
    BatchItem,
    JobBrief,
    delivery_body,
    excluded_after_release,
    one_replica_per_asset,
    replica_group,
)

JOB = JobBrief(uuid.uuid4(), "cars", uuid.uuid4(), 3, [{"name": "car", "shape": "bbox"}], 600)
A, B, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def _item(asset: uuid.UUID, replica: int) -> BatchItem:
    box = {"class": "car", "type": "bbox", "bbox": {"x": 1, "y": 2, "width": 3, "height": 4}}
    return BatchItem(uuid.uuid4(), asset, replica, "ab" * 32, 640, 480, "image/jpeg", [box], None)


def test_a_delivery_names_tasks_and_links_but_no_asset_nor_gold() -> None:
    delivery_id, vendor_id = uuid.uuid4(), uuid.uuid4()
    items = [_item(A, 0), _item(A, 1), _item(B, 0)]
    body = json.loads(delivery_body(delivery_id, vendor_id, JOB, items, lambda s: f"u/{s}"))
    assert body["delivery_id"] == str(delivery_id)
    assert body["job"]["ontology"] == {
        "id": str(JOB.ontology_id),
        "version": 3,
        "classes": JOB.classes,
    }
    assert body["job"]["lease_seconds"] == 600
    first = body["tasks"][0]
    assert set(first) == {
        "task_id",
        "replica",
        "replica_group",
        "image",
        "predictions",
        "rework_comment",
    }
    assert first["image"] == {
        "url": "u/" + "ab" * 32,
        "width": 640,
        "height": 480,
        "media_type": "image/jpeg",
    }
    text = json.dumps(body)
    assert str(A) not in text and "gold" not in text


def test_replicas_of_one_asset_share_an_opaque_group() -> None:
    assert replica_group(JOB.id, A) == replica_group(JOB.id, A)
    assert replica_group(JOB.id, A) != replica_group(JOB.id, B)
    assert replica_group(uuid.uuid4(), A) != replica_group(JOB.id, A)
    assert str(A).replace("-", "") not in replica_group(JOB.id, A)


def test_a_released_task_excludes_its_vendor_only_if_another_can_take_it() -> None:
    v1, v2 = uuid.uuid4(), uuid.uuid4()
    assert excluded_after_release([], v1, [v1, v2]) == [v1]
    assert excluded_after_release([], v1, [v1]) == []
    # v2 already excluded (it holds another replica): v1 stays possible
    assert excluded_after_release([v2], v1, [v1, v2]) == [v2]
    assert excluded_after_release([v1], v1, [v1, v2]) == [v1]


def test_with_several_vendors_a_batch_holds_one_replica_per_asset() -> None:
    t1, t2, t3, t4 = (uuid.uuid4() for _ in range(4))
    pairs = [(t1, A), (t2, A), (t3, B), (t4, C)]
    assert one_replica_per_asset(pairs, several_vendors=True) == [t1, t3, t4]
    assert one_replica_per_asset(pairs, several_vendors=False) == [t1, t2, t3, t4]
