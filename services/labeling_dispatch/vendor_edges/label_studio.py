"""Label Studio vendors: a delivery becomes tasks imported into the job's Label Studio project.

A delivery's tasks are imported into the project of their pass (the task's replica), made on
first use by a :class:`ProjectDirectory`. Each imported task carries Conveyor's task id and the
delivery id in its ``data``, so annotations coming back name the task, and a retried delivery
(the first try's answer lost) finds what it imported before and imports only the rest. Imports
into one server are made one at a time, so a try rarely times out; one that does may still land
in Label Studio after the retry looked (reconcile then finds two Label Studio tasks of one
Conveyor task: an answer to either counts once).

Annotations come back on Conveyor's Label Studio webhook and by reconcile
(``use_cases/label_studio.py``), not through this edge.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from services.labeling_dispatch.domain.label_studio import IMAGE, prediction
from services.labeling_dispatch.domain.ontology import OntologySpec
from services.labeling_dispatch.vendor_edges.base import Outbound, SendOutcome, VendorTarget
from services.labeling_dispatch.vendor_edges.label_studio_api import (
    CONVEYOR_TASK_KEY,
    LabelStudioApi,
    LabelStudioError,
    TaskImport,
)

TASK_KEY = CONVEYOR_TASK_KEY
"""The key of Conveyor's task id in an imported task's ``data``."""
DELIVERY_KEY = "conveyor_delivery_id"
"""The key of the delivery id in an imported task's ``data`` (a retry's idempotency check)."""
REWORK_KEY = "conveyor_rework_comment"
PREDICTION_MODEL = "conveyor-predictions"


class ProjectDirectory(Protocol):
    """Finds, or makes on first use, the Label Studio project of one pass of a job."""

    async def project_for(self, vendor: VendorTarget, job: dict[str, Any], pass_no: int) -> int: ...


class LabelStudioEdge:
    """Sends deliveries to a Label Studio server as task imports."""

    kind = "label_studio"

    def __init__(
        self,
        api_for: Callable[[VendorTarget], LabelStudioApi],
        projects: ProjectDirectory,
        timeout: float,
    ) -> None:
        self._api_for = api_for
        self._projects = projects
        self._timeout = timeout

    async def send(self, vendor: VendorTarget, delivery: Outbound) -> SendOutcome:
        """Import the delivery's tasks (those not imported by an earlier try); never raises."""
        started = time.perf_counter()
        # One import at a time per server: Label Studio (SQLite, one process) slows down so
        # much under concurrent imports that tries time out, and a timed-out import that lands
        # later is imported twice by the retry.
        async with _server_lock(self._api_for(vendor).base_url):
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._send(vendor, delivery, time.perf_counter())
            except TimeoutError:
                return SendOutcome(None, _since(started), error="timeout (no answer in time)")

    async def _send(self, vendor: VendorTarget, delivery: Outbound, started: float) -> SendOutcome:
        try:
            body = json.loads(delivery.body)
            spec = OntologySpec.model_validate({"classes": body["job"]["ontology"]["classes"]})
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            return SendOutcome(None, 0.0, error=f"unreadable delivery: {exc}"[:500])
        api = self._api_for(vendor)
        passes: dict[int, list[dict[str, Any]]] = {}
        for task in body["tasks"]:
            passes.setdefault(int(task["replica"]), []).append(task)
        imported = 0
        try:
            for pass_no, tasks in sorted(passes.items()):
                project = await self._projects.project_for(vendor, body["job"], pass_no)
                already = (
                    set()
                    if delivery.first_try
                    else await api.task_ids_with(project, DELIVERY_KEY, str(delivery.delivery_id))
                )
                todo = [t for t in tasks if t["task_id"] not in already]
                if todo:
                    await api.import_tasks(
                        project, [_task_import(spec, t, str(delivery.delivery_id)) for t in todo]
                    )
                imported += len(todo)
        except LabelStudioError as exc:
            return SendOutcome(
                exc.status_code, _since(started), error=str(exc)[:500], excerpt=exc.excerpt
            )
        return SendOutcome(200, _since(started), excerpt=f"imported {imported} task(s)")


_locks: dict[str, asyncio.Lock] = {}


def _server_lock(base_url: str) -> asyncio.Lock:
    """The lock serialising imports into one Label Studio server (this process's)."""
    return _locks.setdefault(base_url, asyncio.Lock())


def _task_import(spec: OntologySpec, task: dict[str, Any], delivery_id: str) -> TaskImport:
    """One Label Studio task: the image link, Conveyor's ids, the pre-labels if any."""
    image = task["image"]
    data: dict[str, Any] = {
        IMAGE: image["url"],
        TASK_KEY: task["task_id"],
        DELIVERY_KEY: delivery_id,
    }
    if task.get("rework_comment"):
        data[REWORK_KEY] = task["rework_comment"]
    predictions: Sequence[dict[str, Any]] = task.get("predictions") or []
    pre_labels = []
    if predictions and image.get("width") and image.get("height"):
        known = {cls.name for cls in spec.classes}
        shapes = [s for s in predictions if isinstance(s, dict) and s.get("class") in known]
        try:
            if shapes:
                pre_labels.append(
                    prediction(
                        spec,
                        shapes,
                        width=int(image["width"]),
                        height=int(image["height"]),
                        model_version=PREDICTION_MODEL,
                    )
                )
        except (KeyError, TypeError, ValueError):
            pre_labels = []  # a pre-label is a help, not a must: the task goes without it
    return TaskImport(data=data, predictions=pre_labels)


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
