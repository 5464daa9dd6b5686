"""``conveyor deliveries``: the log of task batches sent to vendors, and redelivery by hand."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from conveyor_cli.client import collect_pages
from conveyor_cli.commands.context import handle_errors, settings_of
from conveyor_cli.commands.labeling import checked_id, labeling_hints
from conveyor_cli.output import Output
from conveyor_cli.schemas import DeliveryDetail


class Status(StrEnum):
    """Where a delivery stands."""

    pending = "pending"
    delivered = "delivered"
    failed = "failed"


app = typer.Typer(
    help="The delivery log: every task batch POSTed to a vendor, each try's status code,"
    " latency and error, and when the next try is due. A failed delivery (given up after its"
    " retries, or refused by the vendor) can be sent again by hand.\n\n"
    "**Examples:**\n\n```\n"
    "conveyor deliveries list --status failed\n"
    "conveyor deliveries show 5c2f0a7e-1d3b-4f6a-8e9c-0b1a2c3d4e5f\n"
    "conveyor deliveries redeliver 5c2f0a7e-1d3b-4f6a-8e9c-0b1a2c3d4e5f\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

_DELIVERY_ARGUMENT = typer.Argument(metavar="ID", help="Delivery id.", show_default=False)
_REDELIVER_HINTS = {
    "delivery_not_failed": "only a failed delivery can be sent again; pending ones are retried"
    " on their own",
}


def render_delivery(out: Output, delivery: DeliveryDetail, *, title: str) -> None:
    """A delivery's fields, then one row per try."""
    fields = {k: v for k, v in delivery.items() if k not in ("attempt_log", "task_ids")}
    out.record(fields, title=title)
    out.table(
        ("attempt", "attempted_at", "status_code", "latency_ms", "error", "manual"),
        (
            (
                a["attempt"],
                a["attempted_at"],
                a["status_code"],
                round(a["latency_ms"], 1),
                a["error"],
                a["manual"],
            )
            for a in delivery["attempt_log"]
        ),
        title="Tries",
        empty="none yet",
    )


@app.command("list")
@handle_errors
def deliveries_list(
    ctx: typer.Context,
    vendor: Annotated[
        str | None,
        typer.Option("--vendor", help="Only this vendor's (id).", metavar="ID", show_default=False),
    ] = None,
    job: Annotated[
        str | None,
        typer.Option("--job", help="Only this job's (id).", metavar="ID", show_default=False),
    ] = None,
    status: Annotated[
        Status | None,
        typer.Option("--status", help="Only deliveries in this state.", show_default=False),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Maximum number of deliveries to show.")
    ] = 50,
) -> None:
    """List deliveries, newest first: status, tasks, tries, the last answer and the next try.

    **Examples:**

    ```
    conveyor deliveries list --status failed
    conveyor deliveries list --vendor 0f4e2b6a-... --job 9a1d7c3e-... --limit 200
    ```
    """
    settings = settings_of(ctx)
    vendor_id = checked_id(vendor, "--vendor") if vendor else None
    job_id = checked_id(job, "--job") if job else None
    with settings.labeling() as labeling, labeling_hints(settings):
        page = collect_pages(
            lambda n, cursor: labeling.list_deliveries(
                vendor_id=vendor_id,
                job_id=job_id,
                status=None if status is None else status.value,
                limit=n,
                cursor=cursor,
            ),
            limit,
        )
    settings.output.show_table(
        page,
        (
            "id",
            "vendor_id",
            "job_id",
            "status",
            "tasks",
            "tries",
            "last_code",
            "last_ms",
            "next_attempt_at",
            "last_error",
        ),
        (
            (
                d["id"],
                d["vendor_id"],
                d["job_id"],
                d["status"],
                d["task_count"],
                d["attempts"],
                d["last_status_code"],
                None if d["last_latency_ms"] is None else round(d["last_latency_ms"], 1),
                d["next_attempt_at"],
                d["last_error"],
            )
            for d in page["items"]
        ),
        title="Deliveries",
        note=f"more deliveries exist; raise --limit to see more than {limit}"
        if page["next_cursor"]
        else None,
    )


@app.command("show")
@handle_errors
def deliveries_show(ctx: typer.Context, delivery: Annotated[str, _DELIVERY_ARGUMENT]) -> None:
    """Show a delivery and every try of it.

    **Example:**

    ```
    conveyor deliveries show 5c2f0a7e-1d3b-4f6a-8e9c-0b1a2c3d4e5f
    ```
    """
    settings = settings_of(ctx)
    delivery_id = checked_id(delivery, "ID")
    with settings.labeling() as labeling, labeling_hints(settings):
        found = labeling.get_delivery(delivery_id)
    settings.output.show(
        found, lambda out: render_delivery(out, found, title=f"Delivery {delivery_id}")
    )


@app.command("redeliver")
@handle_errors
def deliveries_redeliver(ctx: typer.Context, delivery: Annotated[str, _DELIVERY_ARGUMENT]) -> None:
    """Send a failed delivery again, now, with the same id and body (admin key).

    Its tasks still waiting in the queue are given back to it (within the vendor's capacity)
    and the batch is tried once; the answer shows how that try went. Exits 1 if the delivery
    is not failed, its vendor is disabled, or none of its tasks can be given back.

    **Example:**

    ```
    conveyor deliveries redeliver 5c2f0a7e-1d3b-4f6a-8e9c-0b1a2c3d4e5f
    ```
    """
    settings = settings_of(ctx)
    delivery_id = checked_id(delivery, "ID")
    with settings.labeling() as labeling, labeling_hints(settings, _REDELIVER_HINTS):
        result = labeling.redeliver(delivery_id)
    settings.output.show(
        result, lambda out: render_delivery(out, result, title=f"Redelivered {delivery_id}")
    )
