"""A small typed client of Label Studio's REST API (open-source server, checked on 1.23.2).

Only what the ``label_studio`` vendor kind needs, over the service's shared
``httpx.AsyncClient``; no SDK (its pins clash with ours). Authentication is the legacy API
token (``Authorization: Token <token>``), which the server accepts only when started with
``LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true`` (the local stack does).

Behaviour worth knowing, observed on the real server:
- the task list filter on ``updated_at`` needs a timestamp with fractional seconds (without
  them the server answers 500), and a page past the end is a 404, not an empty page;
- webhooks are not signed and not retried, and time out after about 1 s: a receiver that is
  slow or down loses the event, so :meth:`LabelStudioApi.tasks_updated_since` is the way to
  catch up;
- the server does not fetch image URLs (the labeler's browser does);
- a task's ``updated_at`` moves when an annotation is created, changed or deleted, and is
  later than the annotation's own: it is the reconcile cursor (tasks imported together can
  share a timestamp to the microsecond; re-read the boundary and drop what is already stored);
- webhook bodies (``tests/fixtures/label_studio_webhooks.json``): ``ANNOTATION_CREATED`` and
  ``ANNOTATION_UPDATED`` carry ``annotation`` (with ``result``, ``completed_by``) and ``task``
  (with the imported ``data``, so put Conveyor's task id there); ``ANNOTATIONS_DELETED`` only
  ``[{"id": ...}]``; the static ``headers`` and the URL's query string arrive as registered;
- a webhook PATCH without ``actions`` leaves it with none (it then never fires);
- a project title needs at least 3 characters; the labeling config is checked only for
  well-formed XML and ``toName`` references (an unknown tag passes).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

UPDATED_AT_FILTER = "filter:tasks:updated_at"
CONVEYOR_TASK_KEY = "conveyor_task_id"  # where Conveyor puts its task id in a task's data
PAGE_SIZE = 100
EXCERPT_CHARS = 300  # of an error answer's body, kept in the exception


class LabelStudioError(Exception):
    """Label Studio answered with an error status, or not at all (``status_code`` None)."""

    def __init__(self, what: str, status_code: int | None, excerpt: str) -> None:
        super().__init__(f"Label Studio: {what} failed ({status_code}): {excerpt}")
        self.status_code = status_code
        self.excerpt = excerpt


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Project(_Answer):
    """A Label Studio project (one per labeling job)."""

    id: int
    title: str
    label_config: str = ""


class Webhook(_Answer):
    """A webhook registered on a project."""

    id: int
    url: str
    project: int | None = None
    actions: list[str] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)


class User(_Answer):
    """A Label Studio user (an annotator)."""

    id: int
    email: str
    username: str = ""


class Annotation(_Answer):
    """One annotation of a task: ``result`` holds LS results (percent coordinates)."""

    id: int
    task: int | None = None
    result: list[dict[str, Any]] = Field(default_factory=list)
    completed_by: int | None = None
    was_cancelled: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Task(_Answer):
    """A task as the task list returns it (``annotations`` with ``fields=all`` only)."""

    id: int
    data: dict[str, Any] = Field(default_factory=dict)
    updated_at: datetime | None = None
    total_annotations: int = 0
    annotations: list[Annotation] = Field(default_factory=list)


class TaskImport(BaseModel):
    """One task to import: its data (``{"image": url, ...}``) and its pre-labels."""

    model_config = ConfigDict(frozen=True)

    data: dict[str, Any]
    predictions: list[dict[str, Any]] = Field(default_factory=list)


def updated_after_query(since: datetime) -> str:
    """The task list's ``query`` parameter: tasks updated after ``since``, oldest first.

    The value always carries microseconds (LS answers 500 to a timestamp without a fraction).
    """
    moment = since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)
    value = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    query = {
        "filters": {
            "conjunction": "and",
            "items": [
                {
                    "filter": UPDATED_AT_FILTER,
                    "operator": "greater",
                    "type": "Datetime",
                    "value": value,
                }
            ],
        },
        "ordering": ["tasks:updated_at"],
    }
    return json.dumps(query, separators=(",", ":"))


class LabelStudioApi:
    """Calls to one Label Studio server with one API token."""

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, token: str, *, timeout: float = 30.0
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Token {token}"}
        self.timeout = timeout

    async def _call(
        self,
        what: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: object = None,
    ) -> httpx.Response:
        try:
            answer = await self.http.request(
                method,
                f"{self.base_url}{path}",
                params=params,
                json=body,
                headers=self.headers,
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise LabelStudioError(what, None, f"{type(exc).__name__}: {exc}") from exc
        if answer.status_code >= 400:
            raise LabelStudioError(what, answer.status_code, answer.text[:EXCERPT_CHARS])
        return answer

    async def whoami(self) -> User:
        """The user the token belongs to (a cheap check of the token and that the URL is a
        Label Studio server: any other answer is a LabelStudioError)."""
        answer = await self._call("whoami", "GET", "/api/current-user/whoami")
        try:
            return User.model_validate(answer.json())
        except ValueError:  # not JSON, or not a user: not Label Studio's API
            raise LabelStudioError(
                "whoami", answer.status_code, "the answer is not a Label Studio user"
            ) from None

    async def create_project(self, title: str, label_config: str, description: str = "") -> Project:
        """A new project with a labeling config (LS checks the XML and answers 400 if bad)."""
        answer = await self._call(
            "create project",
            "POST",
            "/api/projects",
            body={"title": title, "description": description, "label_config": label_config},
        )
        return Project.model_validate(answer.json())

    async def get_project(self, project_id: int) -> Project:
        answer = await self._call("get project", "GET", f"/api/projects/{project_id}")
        return Project.model_validate(answer.json())

    async def import_tasks(self, project_id: int, tasks: Sequence[TaskImport]) -> list[int]:
        """Import tasks with their predictions in one request; their new ids, in order."""
        answer = await self._call(
            "import tasks",
            "POST",
            f"/api/projects/{project_id}/import",
            params={"return_task_ids": "true"},
            body=[task.model_dump() for task in tasks],
        )
        ids = answer.json().get("task_ids")
        if not isinstance(ids, list) or len(ids) != len(tasks):
            raise LabelStudioError("import tasks", answer.status_code, answer.text[:EXCERPT_CHARS])
        return [int(task_id) for task_id in ids]

    async def create_webhook(
        self,
        project_id: int,
        url: str,
        *,
        actions: Sequence[str],
        headers: Mapping[str, str],
        send_payload: bool = True,
    ) -> Webhook:
        """Register a webhook on a project; ``headers`` are sent as they are with every call.

        LS does not sign webhooks: a shared secret in ``headers`` is what the receiver checks.
        """
        answer = await self._call(
            "create webhook",
            "POST",
            "/api/webhooks/",
            body={
                "project": project_id,
                "url": url,
                "send_payload": send_payload,
                "send_for_all_actions": False,
                "actions": list(actions),
                "headers": dict(headers),
                "is_active": True,
            },
        )
        return Webhook.model_validate(answer.json())

    async def list_webhooks(self, project_id: int) -> list[Webhook]:
        answer = await self._call(
            "list webhooks", "GET", "/api/webhooks/", params={"project": project_id}
        )
        return [Webhook.model_validate(item) for item in answer.json()]

    async def tasks_updated_since(
        self, project_id: int, since: datetime, *, page_size: int = PAGE_SIZE
    ) -> AsyncIterator[Task]:
        """Every task of a project updated after ``since``, with its annotations, oldest first.

        Pages until LS answers 404 (its answer past the last page) or a short page.
        """
        query = updated_after_query(since)
        page = 1
        while True:
            try:
                answer = await self._call(
                    "list tasks",
                    "GET",
                    "/api/tasks",
                    params={
                        "project": project_id,
                        "query": query,
                        "fields": "all",
                        "page": page,
                        "page_size": page_size,
                    },
                )
            except LabelStudioError as exc:
                if exc.status_code == 404 and page > 1:
                    return
                raise
            tasks = answer.json().get("tasks", [])
            for task in tasks:
                yield Task.model_validate(task)
            if len(tasks) < page_size:
                return
            page += 1

    async def task_ids_with(self, project_id: int, key: str, value: str) -> set[str]:
        """The Conveyor task ids (``data.conveyor_task_id``) of a project's tasks whose
        ``data[key]`` equals ``value``: e.g. the tasks a delivery imported already."""
        query = {
            "filters": {
                "conjunction": "and",
                "items": [
                    {
                        "filter": f"filter:tasks:data.{key}",
                        "operator": "equal",
                        "type": "String",
                        "value": value,
                    }
                ],
            }
        }
        found: set[str] = set()
        page = 1
        while True:
            try:
                answer = await self._call(
                    "find tasks",
                    "GET",
                    "/api/tasks",
                    params={
                        "project": project_id,
                        "query": json.dumps(query, separators=(",", ":")),
                        "fields": "task_only",
                        "page": page,
                        "page_size": PAGE_SIZE,
                    },
                )
            except LabelStudioError as exc:
                if exc.status_code == 404 and page > 1:
                    return found
                raise
            tasks = answer.json().get("tasks", [])
            found.update(str(t.get("data", {}).get(CONVEYOR_TASK_KEY)) for t in tasks)
            if len(tasks) < PAGE_SIZE:
                return found
            page += 1

    async def task_annotations(self, task_id: int) -> list[Annotation]:
        """Every annotation of a task (cancelled ones included: see ``was_cancelled``)."""
        answer = await self._call("list annotations", "GET", f"/api/tasks/{task_id}/annotations/")
        return [Annotation.model_validate(item) for item in answer.json()]

    async def create_annotation(
        self, task_id: int, result: Sequence[Mapping[str, Any]], *, lead_time: float = 1.0
    ) -> Annotation:
        """Submit an annotation as the token's user would from the labeling screen."""
        answer = await self._call(
            "create annotation",
            "POST",
            f"/api/tasks/{task_id}/annotations/",
            body={"result": list(result), "lead_time": lead_time, "was_cancelled": False},
        )
        return Annotation.model_validate(answer.json())

    async def convert_to_draft(self, annotation_id: int) -> None:
        """Turn a submitted annotation back into its author's draft (rework; no webhook fires)."""
        await self._call(
            "convert annotation to draft",
            "POST",
            f"/api/annotations/{annotation_id}/convert-to-draft",
        )

    async def create_user(
        self, email: str, *, username: str = "", first_name: str = "", last_name: str = ""
    ) -> User:
        """A new user in the token's organisation (an annotator Conveyor assigns replicas to)."""
        answer = await self._call(
            "create user",
            "POST",
            "/api/users/",
            body={
                "email": email,
                "username": username or email,
                "first_name": first_name,
                "last_name": last_name,
            },
        )
        return User.model_validate(answer.json())

    async def update_webhook_headers(
        self, webhook_id: int, headers: Mapping[str, str], *, actions: Sequence[str]
    ) -> None:
        """Replace the static headers a webhook sends (a rotated shared secret).

        ``actions`` must be given again: a PATCH without them leaves the webhook with none.
        """
        await self._call(
            "update webhook",
            "PATCH",
            f"/api/webhooks/{webhook_id}/",
            body={"headers": dict(headers), "actions": list(actions)},
        )

    async def get_user(self, user_id: int) -> User:
        """One user by id (who ``completed_by`` names)."""
        answer = await self._call("get user", "GET", f"/api/users/{user_id}/")
        return User.model_validate(answer.json())

    async def create_annotation_as(
        self, task_id: int, result: Sequence[Mapping[str, Any]], user_id: int
    ) -> Annotation:
        """Submit an annotation on behalf of another user of the organisation (an admin
        token may set ``completed_by``), as that labeler would from the labeling screen."""
        answer = await self._call(
            "create annotation",
            "POST",
            f"/api/tasks/{task_id}/annotations/",
            body={"result": list(result), "completed_by": user_id, "was_cancelled": False},
        )
        return Annotation.model_validate(answer.json())

    async def update_annotation(
        self, annotation_id: int, result: Sequence[Mapping[str, Any]]
    ) -> Annotation:
        """Change a submitted annotation's results (a labeler fixing their work)."""
        answer = await self._call(
            "update annotation",
            "PATCH",
            f"/api/annotations/{annotation_id}/",
            body={"result": list(result)},
        )
        return Annotation.model_validate(answer.json())

    async def annotation_exists(self, annotation_id: int) -> bool:
        """Whether Label Studio still has this annotation (a 404 says it was deleted)."""
        try:
            await self._call("get annotation", "GET", f"/api/annotations/{annotation_id}/")
        except LabelStudioError as exc:
            if exc.status_code == 404:
                return False
            raise
        return True

    async def delete_annotation(self, annotation_id: int) -> None:
        """Delete an annotation (Label Studio keeps no trace of it)."""
        await self._call("delete annotation", "DELETE", f"/api/annotations/{annotation_id}/")

    async def delete_project(self, project_id: int) -> None:
        """Delete a project with its tasks and annotations."""
        await self._call("delete project", "DELETE", f"/api/projects/{project_id}/")
