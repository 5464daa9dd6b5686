"""``conveyor tasks``: labeling tasks, by job, vendor, state or asset."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from conveyor_cli.client import collect_pages
from conveyor_cli.commands.context import handle_errors, settings_of
from conveyor_cli.commands.labeling import checked_id, labeling_hints


class State(StrEnum):
    """Where a task is in its life."""

    queued = "queued"
    assigned = "assigned"
    dispatched = "dispatched"
    submitted = "submitted"
    rework = "rework"
    cancelled = "cancelled"


app = typer.Typer(
    help="Labeling tasks: one replica of one asset in a job. A task is queued, assigned (in a"
    " delivery not yet acknowledged), dispatched (a vendor holds it, its lease running),"
    " submitted, sent back for rework, or cancelled.\n\n"
    "**Examples:**\n\n```\n"
    "conveyor tasks list --job 9a1d7c3e-... --state queued\n"
    "conveyor tasks list --asset 0b7e3c1d-...\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


def _id_option(flag: str, what: str) -> object:
    return typer.Option(
        flag, help=f"Only this {what}'s tasks (id).", metavar="ID", show_default=False
    )


@app.command("list")
@handle_errors
def tasks_list(
    ctx: typer.Context,
    job: Annotated[str | None, _id_option("--job", "job")] = None,
    vendor: Annotated[str | None, _id_option("--vendor", "vendor")] = None,
    asset: Annotated[str | None, _id_option("--asset", "asset")] = None,
    state: Annotated[
        State | None, typer.Option("--state", help="Only tasks in this state.", show_default=False)
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Maximum number of tasks to show.")
    ] = 50,
) -> None:
    """List tasks: job, asset, replica, state, the vendor holding it, its lease.

    **Examples:**

    ```
    conveyor tasks list --job 9a1d7c3e-... --state dispatched --limit 500
    conveyor --json tasks list --vendor 0f4e2b6a-...
    ```
    """
    settings = settings_of(ctx)
    job_id = checked_id(job, "--job") if job else None
    vendor_id = checked_id(vendor, "--vendor") if vendor else None
    asset_id = checked_id(asset, "--asset") if asset else None
    with settings.labeling() as labeling, labeling_hints(settings):
        page = collect_pages(
            lambda n, cursor: labeling.list_tasks(
                job_id=job_id,
                vendor_id=vendor_id,
                asset_id=asset_id,
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
            "job_id",
            "asset_id",
            "replica",
            "state",
            "vendor_id",
            "attempt",
            "lease_expires_at",
        ),
        (
            (
                t["id"],
                t["job_id"],
                t["asset_id"],
                t["replica"],
                t["state"],
                t["vendor_id"],
                t["attempt"],
                t["lease_expires_at"],
            )
            for t in page["items"]
        ),
        title="Tasks",
        note=f"more tasks exist; raise --limit to see more than {limit}"
        if page["next_cursor"]
        else None,
    )
