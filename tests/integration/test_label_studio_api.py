"""The Label Studio client and conversions against the real Label Studio server of the stack."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import httpx
import pytest

from deploy.stack.config import load_settings
from deploy.stack.labelstudio import LabelStudio
from deploy.stack.stack import servers
from services.labeling_dispatch.domain.label_studio import (
    labeling_config,
    prediction,
    shapes_from_results,
)
from services.labeling_dispatch.domain.ontology import OntologySpec, validate_shapes
from services.labeling_dispatch.vendor_edges.label_studio_api import (
    LabelStudioApi,
    LabelStudioError,
    TaskImport,
)
from shared import endpoints

if not any(isinstance(server, LabelStudio) for server in servers(load_settings({}))):
    pytest.skip("Label Studio is not part of the local stack", allow_module_level=True)

SPEC = OntologySpec.model_validate(
    {
        "classes": [
            {
                "name": "car",
                "shape": "bbox",
                "attributes": [{"name": "color", "type": "enum", "values": ["red", "blue"]}],
            },
            {"name": "road & lane", "shape": "polygon"},
            {"name": "indoor", "shape": "classification"},
        ]
    }
)
WIDTH, HEIGHT = 640, 480
IMAGE_URL = "http://127.0.0.1:18333/conveyor-raw/not-fetched-by-the-server.jpg"


@pytest.fixture
async def label_studio(stack: None) -> AsyncIterator[LabelStudioApi]:
    settings = load_settings()
    assert LabelStudio(settings).health() is None, "Label Studio of the stack is not healthy"
    async with httpx.AsyncClient() as http:
        yield LabelStudioApi(http, endpoints.LABEL_STUDIO_URL, settings.label_studio_token)


async def test_the_development_token_is_the_admins(label_studio: LabelStudioApi) -> None:
    me = await label_studio.whoami()
    assert me.email == load_settings().label_studio_admin_email


async def test_an_annotation_made_in_label_studio_comes_back_in_pixels(
    label_studio: LabelStudioApi,
) -> None:
    config = labeling_config(SPEC)
    project = await label_studio.create_project(f"conveyor test {uuid.uuid4().hex[:8]}", config)
    assert ElementTree.fromstring(project.label_config).find("RectangleLabels") is not None
    before = datetime.now(UTC) - timedelta(seconds=1)
    pre_label = prediction(
        SPEC,
        [{"class": "car", "type": "bbox", "bbox": {"x": 1, "y": 2, "width": 3, "height": 4}}],
        width=WIDTH,
        height=HEIGHT,
        model_version="test-model",
    )
    (task_id,) = await label_studio.import_tasks(
        project.id, [TaskImport(data={"image": IMAGE_URL}, predictions=[pre_label])]
    )

    # What the labeling screen posts when a labeler draws a box, picks a colour, outlines a
    # road and ticks "indoor": percentages of the image as the browser loaded it.
    size = {"original_width": WIDTH, "original_height": HEIGHT, "image_rotation": 0}
    drawn = await label_studio.create_annotation(
        task_id,
        [
            {
                "id": "box1",
                "from_name": "bbox",
                "to_name": "image",
                "type": "rectanglelabels",
                "value": {
                    "x": 10,
                    "y": 25,
                    "width": 50,
                    "height": 12.5,
                    "rotation": 0,
                    "rectanglelabels": ["car"],
                },
                **size,
            },
            {
                "id": "box1",
                "from_name": "attribute_0_0",
                "to_name": "image",
                "type": "choices",
                "value": {"choices": ["blue"]},
                **size,
            },
            {
                "id": "road1",
                "from_name": "polygon",
                "to_name": "image",
                "type": "polygonlabels",
                "value": {
                    "points": [[0, 50], [100, 50], [100, 100], [0, 100]],
                    "closed": True,
                    "polygonlabels": ["road & lane"],
                },
                **size,
            },
            {
                "id": "c1",
                "from_name": "classification",
                "to_name": "image",
                "type": "choices",
                "value": {"choices": ["indoor"]},
            },
        ],
    )

    updated = [task async for task in label_studio.tasks_updated_since(project.id, before)]
    assert [task.id for task in updated] == [task_id]
    assert updated[0].data["image"] == IMAGE_URL
    assert [a.id for a in updated[0].annotations] == [drawn.id]
    (stored,) = await label_studio.task_annotations(task_id)
    assert stored.completed_by == (await label_studio.whoami()).id

    converted = shapes_from_results(SPEC, stored.result, width=WIDTH, height=HEIGHT)
    assert converted.problems == []
    shapes, problems = validate_shapes(SPEC, converted.shapes, width=WIDTH, height=HEIGHT)
    assert problems == []
    assert shapes[0]["bbox"] == {"x": 64.0, "y": 120.0, "width": 320.0, "height": 60.0}
    assert shapes[0]["attributes"] == {"color": "blue"}
    assert shapes[1]["points"] == [[0.0, 240.0], [640.0, 240.0], [640.0, 480.0], [0.0, 480.0]]
    assert shapes[2] == {"class": "indoor", "type": "classification", "attributes": {}}

    # The task's updated_at (later than the annotation's own) is the reconcile cursor.
    after = updated[0].updated_at or datetime.now(UTC)
    assert [task.id async for task in label_studio.tasks_updated_since(project.id, after)] == []


async def test_reconcile_pages_until_label_studio_says_there_are_no_more(
    label_studio: LabelStudioApi,
) -> None:
    project = await label_studio.create_project("conveyor paging", labeling_config(SPEC))
    before = datetime.now(UTC) - timedelta(seconds=1)
    ids = await label_studio.import_tasks(
        project.id, [TaskImport(data={"image": f"{IMAGE_URL}?n={n}"}) for n in range(5)]
    )
    listed = [
        task.id async for task in label_studio.tasks_updated_since(project.id, before, page_size=2)
    ]
    assert listed == ids  # oldest first, across three pages, the last one short
    exact = [
        task.id async for task in label_studio.tasks_updated_since(project.id, before, page_size=5)
    ]
    assert exact == ids  # a full last page: the next one is LS's 404, taken as the end


async def test_webhooks_users_and_rework(label_studio: LabelStudioApi) -> None:
    project = await label_studio.create_project("conveyor webhooks", labeling_config(SPEC))
    hook = await label_studio.create_webhook(
        project.id,
        f"{endpoints.LABELING_URL}/v1/vendors/{uuid.uuid4()}/label-studio",
        actions=["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"],
        headers={"X-Conveyor-Vendor-Token": "a-shared-secret"},
    )
    assert hook.headers == {"X-Conveyor-Vendor-Token": "a-shared-secret"}
    assert [h.id for h in await label_studio.list_webhooks(project.id)] == [hook.id]

    annotator = await label_studio.create_user(f"annotator-{uuid.uuid4().hex[:8]}@conveyor.local")
    assert annotator.id > 0

    (task_id,) = await label_studio.import_tasks(
        project.id, [TaskImport(data={"image": IMAGE_URL})]
    )
    choice = {"from_name": "classification", "to_name": "image", "type": "choices"}
    answer = await label_studio.create_annotation(
        task_id, [{"id": "c", **choice, "value": {"choices": ["indoor"]}}]
    )
    await label_studio.convert_to_draft(answer.id)
    assert await label_studio.task_annotations(task_id) == []


async def test_a_bad_labeling_config_is_refused_with_label_studios_reason(
    label_studio: LabelStudioApi,
) -> None:
    with pytest.raises(LabelStudioError) as refused:
        await label_studio.create_project(
            "conveyor bad config",
            '<View><RectangleLabels name="box" toName="missing"><Label value="a"/>'
            "</RectangleLabels></View>",
        )
    assert refused.value.status_code == 400
    assert 'toName=\\"missing\\" not found' in refused.value.excerpt
