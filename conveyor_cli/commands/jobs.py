"""``conveyor jobs``: create, list, follow, pause, resume and cancel labeling jobs."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from conveyor_cli.client import collect_pages
from conveyor_cli.commands.context import handle_errors, settings_of
from conveyor_cli.commands.labeling import checked_id, labeling_hints
from conveyor_cli.output import Output
from conveyor_cli.schemas import JobAction, JobDetail, JobProgress


class State(StrEnum):
    """A job's state."""

    open = "open"
    paused = "paused"
    cancelled = "cancelled"
    completed = "completed"


class Priority(StrEnum):
    """Which queued tasks go first."""

    arrival = "arrival"
    uncertainty = "uncertainty"


app = typer.Typer(
    help="Labeling jobs: a dataset's cleaned images sent to vendors under one pinned ontology"
    " version. Images cleaned later flow into the dataset's open jobs as they arrive.\n\n"
    "**Examples:**\n\n```\n"
    "conveyor jobs create cars-boxes --dataset cars --ontology street --vendor 0f4e2b6a-...\n"
    "conveyor jobs list --state open\n"
    "conveyor jobs status 9a1d7c3e-5b2f-4e6a-8c0d-1e2f3a4b5c6d\n"
    "conveyor jobs label-studio 9a1d7c3e-5b2f-4e6a-8c0d-1e2f3a4b5c6d\n"
    "conveyor jobs pause 9a1d7c3e-5b2f-4e6a-8c0d-1e2f3a4b5c6d\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

_JOB_ARGUMENT = typer.Argument(metavar="JOB", help="Job id.", show_default=False)
_CREATE_HINTS = {
    "dataset_not_found": "labeling knows a dataset once ingest has announced it: check the slug"
    " with 'conveyor datasets list'",
    "unknown_vendor": "'conveyor vendors list' shows the vendor ids",
}
_STATE_COLUMNS = ("queued", "assigned", "dispatched", "submitted", "expired", "rework", "cancelled")


def _progress_row(label: str, counts: JobProgress) -> list[object]:
    by_state: dict[str, object] = dict(counts)
    return [label, *(by_state[state] for state in _STATE_COLUMNS)]


def render_job(out: Output, job: JobDetail, *, title: str) -> None:
    """A job's settings, then its task counts per vendor and in total."""
    fields = {k: v for k, v in job.items() if k not in ("progress", "total")}
    out.record(fields, title=title)
    rows = [_progress_row(p["vendor_id"] or "(not assigned)", p) for p in job["progress"]]
    out.table(
        ("vendor", *_STATE_COLUMNS),
        [*rows, _progress_row("total", job["total"])],
        title="Tasks per vendor (expired: leases that ran out)",
    )


@app.command("create")
@handle_errors
def jobs_create(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The job's name.", show_default=False)
    ],
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset", "-d", help="Dataset slug or id.", metavar="SLUG", show_default=False
        ),
    ],
    ontology: Annotated[
        str,
        typer.Option(
            "--ontology", help="Ontology name or id.", metavar="ONTOLOGY", show_default=False
        ),
    ],
    vendor: Annotated[
        list[str],
        typer.Option(
            "--vendor", help="A vendor id (repeat for several).", metavar="ID", show_default=False
        ),
    ],
    ontology_version: Annotated[
        int | None,
        typer.Option(
            "--ontology-version",
            min=1,
            help="The version to pin; default: the latest.",
            metavar="N",
            show_default=False,
        ),
    ] = None,
    overlap: Annotated[
        int,
        typer.Option(
            "--overlap", min=1, help="Independent answers per image (each a task).", metavar="N"
        ),
    ] = 1,
    priority: Annotated[
        Priority,
        typer.Option(
            "--priority",
            help="arrival: oldest first; uncertainty: lowest prediction margin first.",
        ),
    ] = Priority.arrival,
    lease_seconds: Annotated[
        int | None,
        typer.Option(
            "--lease-seconds",
            min=1,
            help="How long a vendor may hold a task; default: the service's setting.",
            metavar="N",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create a labeling job (admin key); the dataset's images already cleaned are queued at
    once, later ones as they are cleaned.

    **Example:**

    ```
    conveyor jobs create cars-boxes --dataset cars --ontology street \\
        --vendor 0f4e2b6a-7c1d-4e8f-9a2b-3c4d5e6f7a8b --overlap 2 --priority uncertainty
    ```
    """
    settings = settings_of(ctx)
    vendor_ids = [checked_id(v, "--vendor") for v in vendor]
    with settings.labeling() as labeling, labeling_hints(settings, _CREATE_HINTS):
        created = labeling.create_job(
            name,
            dataset=dataset,
            ontology=ontology,
            ontology_version=ontology_version,
            vendor_ids=vendor_ids,
            overlap=overlap,
            gold_ratio=0.0,
            priority=priority.value,
            lease_seconds=lease_seconds,
        )
    settings.output.show(
        created, lambda out: render_job(out, created, title=f"Created job {created['id']}")
    )


@app.command("list")
@handle_errors
def jobs_list(
    ctx: typer.Context,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="Only this dataset's (slug or id).",
            metavar="SLUG",
            show_default=False,
        ),
    ] = None,
    state: Annotated[
        State | None, typer.Option("--state", help="Only jobs in this state.", show_default=False)
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Maximum number of jobs to show.")
    ] = 50,
) -> None:
    """List the jobs your key may see.

    **Example:**

    ```
    conveyor jobs list --dataset cars --state open
    ```
    """
    settings = settings_of(ctx)
    with settings.labeling() as labeling, labeling_hints(settings):
        page = collect_pages(
            lambda n, cursor: labeling.list_jobs(
                dataset=dataset,
                state=None if state is None else state.value,
                limit=n,
                cursor=cursor,
            ),
            limit,
        )
    settings.output.show_table(
        page,
        (
            "id",
            "name",
            "state",
            "dataset_id",
            "ontology",
            "vendors",
            "overlap",
            "priority",
            "tasks",
        ),
        (
            (
                j["id"],
                j["name"],
                j["state"],
                j["dataset_id"],
                f"{j['ontology_id']} v{j['ontology_version']}",
                len(j["vendor_ids"]),
                j["overlap"],
                j["priority"],
                j["regular_tasks"] + j["gold_tasks"],
            )
            for j in page["items"]
        ),
        title="Jobs",
        note=f"more jobs exist; raise --limit to see more than {limit}"
        if page["next_cursor"]
        else None,
    )


@app.command("status")
@handle_errors
def jobs_status(ctx: typer.Context, job: Annotated[str, _JOB_ARGUMENT]) -> None:
    """Show a job and its progress: tasks queued, assigned, dispatched, submitted, expired,
    in rework and cancelled, per vendor and in total.

    **Example:**

    ```
    conveyor jobs status 9a1d7c3e-5b2f-4e6a-8c0d-1e2f3a4b5c6d
    ```
    """
    settings = settings_of(ctx)
    job_id = checked_id(job, "JOB")
    with settings.labeling() as labeling, labeling_hints(settings):
        found = labeling.get_job(job_id)
    settings.output.show(found, lambda out: render_job(out, found, title=f"Job {found['name']}"))


@app.command("label-studio")
@handle_errors
def jobs_label_studio(ctx: typer.Context, job: Annotated[str, _JOB_ARGUMENT]) -> None:
    """Show where a job is labeled in Label Studio: a project per Label Studio vendor and pass
    (replicas of one image are in different passes, for different labelers).

    **Example:**

    ```
    conveyor jobs label-studio 9a1d7c3e-5b2f-4e6a-8c0d-1e2f3a4b5c6d
    ```
    """
    settings = settings_of(ctx)
    job_id = checked_id(job, "JOB")
    with settings.labeling() as labeling, labeling_hints(settings):
        projects = labeling.label_studio_projects(job_id)
    settings.output.show(
        projects,
        lambda out: out.table(
            ("pass", "project", "open in Label Studio", "vendor", "reconciled up to"),
            [
                [p["pass_no"], p["project_id"], p["project_url"], p["vendor_id"], p["synced_until"]]
                for p in projects
            ],
            title="Label Studio projects",
            empty="no Label Studio project yet (none of its vendors is a label_studio vendor,"
            " or nothing was sent yet)",
        ),
    )


def _change(ctx: typer.Context, job: str, action: JobAction) -> None:
    settings = settings_of(ctx)
    job_id = checked_id(job, "JOB")
    hints = {"illegal_job_transition": "'conveyor jobs status JOB' shows the job's state"}
    with settings.labeling() as labeling, labeling_hints(settings, hints):
        changed = labeling.change_job(job_id, action)
    settings.output.show(
        changed,
        lambda out: render_job(out, changed, title=f"Job {changed['name']}: {changed['state']}"),
    )


@app.command("pause")
@handle_errors
def jobs_pause(ctx: typer.Context, job: Annotated[str, _JOB_ARGUMENT]) -> None:
    """Pause a job (admin key): nothing new is sent; tasks vendors hold stay theirs.

    **Example:**

    ```
    conveyor jobs pause 9a1d7c3e-5b2f-4e6a-8c0d-1e2f3a4b5c6d
    ```
    """
    _change(ctx, job, "pause")


@app.command("resume")
@handle_errors
def jobs_resume(ctx: typer.Context, job: Annotated[str, _JOB_ARGUMENT]) -> None:
    """Resume a paused job (admin key).

    **Example:**

    ```
    conveyor jobs resume 9a1d7c3e-5b2f-4e6a-8c0d-1e2f3a4b5c6d
    ```
    """
    _change(ctx, job, "resume")


@app.command("cancel")
@handle_errors
def jobs_cancel(ctx: typer.Context, job: Annotated[str, _JOB_ARGUMENT]) -> None:
    """Cancel a job (admin key): its tasks not yet answered are cancelled. It cannot be undone.

    **Example:**

    ```
    conveyor jobs cancel 9a1d7c3e-5b2f-4e6a-8c0d-1e2f3a4b5c6d
    ```
    """
    _change(ctx, job, "cancel")
