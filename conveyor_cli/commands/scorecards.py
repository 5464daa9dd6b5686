"""``conveyor scorecards``: vendors' gold accuracy, agreement, decisions, turnaround, throughput."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from conveyor_cli.commands.audit import _iso_time
from conveyor_cli.commands.context import handle_errors, settings_of
from conveyor_cli.commands.labeling import checked_id
from conveyor_cli.commands.reviews import qc_hints
from conveyor_cli.output import Output
from conveyor_cli.schemas import ScorecardFigures, VendorScorecard

app = typer.Typer(
    help="Vendor scorecards from the qc service, kept up to date as answers, gold scores,"
    " consensus results, decisions and expired leases arrive. Every figure is shown with the"
    " number of facts it rests on; turnaround percentiles come from a log-scale histogram"
    " (at most about 19% above the true value).\n\n"
    "**Examples:**\n\n```\n"
    "conveyor scorecards list --job 9a1d7c3e-...\n"
    "conveyor scorecards show 5c2e8f0a-... --since 2026-03-01\n"
    "```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

_JOB = typer.Option("--job", help="Only this job (id).", metavar="ID", show_default=False)
_SINCE = typer.Option(
    "--since", help="ISO 8601 start time (counted by whole UTC hours).", metavar="TIME"
)
_UNTIL = typer.Option("--until", help="ISO 8601 end time (exclusive).", metavar="TIME")
_VENDOR = typer.Argument(metavar="VENDOR", help="Vendor id.", show_default=False)

# (column, figure) shown for each vendor or day; every figure as "value (count)".
_FIGURES = (
    ("gold F1", "gold_f1"),
    ("gold IoU", "gold_mean_iou"),
    ("class acc.", "gold_class_accuracy"),
    ("agreement", "agreement"),
    ("rework", "rework_rate"),
    ("rejected", "rejection_rate"),
    ("p50 s", "turnaround_p50_seconds"),
    ("p95 s", "turnaround_p95_seconds"),
    ("per hour", "throughput_per_hour"),
    ("expired", "expired_rate"),
)


def _cells(figures: ScorecardFigures) -> list[str]:
    shown: Any = figures  # read by the names in _FIGURES
    cells = []
    for _, name in _FIGURES:
        figure = shown[name]
        value = "-" if figure["value"] is None else f"{figure['value']:.3g}"
        cells.append(f"{value} ({figure['count']})")
    return cells


@app.command("list")
@handle_errors
def scorecards_list(
    ctx: typer.Context,
    job: Annotated[str | None, _JOB] = None,
    since: Annotated[str | None, _SINCE] = None,
    until: Annotated[str | None, _UNTIL] = None,
) -> None:
    """List every vendor's scorecard over a window: each figure with the count it rests on.

    **Examples:**

    ```
    conveyor scorecards list
    conveyor scorecards list --job 9a1d7c3e-... --since 2026-03-01 --until 2026-03-08
    conveyor --json scorecards list
    ```
    """
    settings = settings_of(ctx)
    job_id = checked_id(job, "--job") if job else None
    window = {"since": _iso_time(since, "--since"), "until": _iso_time(until, "--until")}
    with settings.qc() as qc, qc_hints(settings):
        found = qc.list_scorecards(job_id=job_id, **window)
    settings.output.show_table(
        found,
        ("vendor", *(column for column, _ in _FIGURES)),
        ((card["vendor_id"], *_cells(card["figures"])) for card in found["items"]),
        title="Vendor scorecards: value (count)",
    )


@app.command("show")
@handle_errors
def scorecards_show(
    ctx: typer.Context,
    vendor: Annotated[str, _VENDOR],
    job: Annotated[str | None, _JOB] = None,
    since: Annotated[str | None, _SINCE] = None,
    until: Annotated[str | None, _UNTIL] = None,
) -> None:
    """Show one vendor's scorecard over a window, then the same figures day by day (UTC).

    **Example:**

    ```
    conveyor scorecards show 5c2e8f0a-... --job 9a1d7c3e-... --since 2026-03-01
    ```
    """
    settings = settings_of(ctx)
    vendor_id = checked_id(vendor, "VENDOR")
    job_id = checked_id(job, "--job") if job else None
    window = {"since": _iso_time(since, "--since"), "until": _iso_time(until, "--until")}
    with settings.qc() as qc, qc_hints(settings):
        card = qc.vendor_scorecard(vendor_id, job_id=job_id, **window)
    settings.output.show(card, lambda out: _render(out, card))


def _render(out: Output, card: VendorScorecard) -> None:
    rows = list(zip((column for column, _ in _FIGURES), _cells(card["figures"]), strict=True))
    out.table(("figure", "value (count)"), rows, title=f"Scorecard of vendor {card['vendor_id']}")
    out.table(
        ("day", *(column for column, _ in _FIGURES)),
        ((day["day"], *_cells(day["figures"])) for day in card["trend"]),
        title="By day",
    )
