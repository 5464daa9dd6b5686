"""``conveyor audit``: inspect, verify and export the hash-chained audit log (audit service)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, TextColumn

from conveyor_cli.client import collect_pages
from conveyor_cli.commands.context import EXIT_FAILED, UsageProblem, handle_errors, settings_of
from conveyor_cli.output import Output
from conveyor_cli.schemas import VerifyResult

app = typer.Typer(
    help="Inspect, verify and export the hash-chained audit log.\n\n"
    "**Examples:**\n\n```\n"
    "conveyor audit history 7f0c2a9e-5b1d-4c1e-9d7a-0a4c2b9f1e11\n"
    "conveyor audit records --actor alice --since 2026-01-01\n"
    "conveyor audit verify\n"
    "conveyor audit export --since 2026-01-01 -o audit.ndjson\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

_RECORD_COLUMNS = ("seq", "time", "type", "subject", "actor", "service", "event_id")

# Filters shared by records and export (the service's search and export take the same ones).
_SUBJECT = typer.Option("--subject", help="Only this subject.", metavar="SUBJECT")
_TYPE = typer.Option("--type", help="Only this event type.", metavar="TYPE")
_SINCE = typer.Option("--since", help="ISO 8601 start time.", metavar="TIME")
_UNTIL = typer.Option("--until", help="ISO 8601 end time.", metavar="TIME")


def _record_row(r: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(r.get(c) for c in _RECORD_COLUMNS)


def _iso_time(value: str | None, option: str) -> str | None:
    """Validate an ISO 8601 timestamp early so a typo is a usage error, not a server 422."""
    if value is None:
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise UsageProblem(
            f"{option} must be an ISO 8601 time such as 2026-01-31 or 2026-01-31T12:00:00Z,"
            f" got {value!r}"
        ) from None
    return value


@app.command("history")
@handle_errors
def audit_history(
    ctx: typer.Context,
    asset_id: Annotated[
        str, typer.Argument(metavar="ASSET_ID", help="Asset id.", show_default=False)
    ],
) -> None:
    """Show the audit timeline of one asset (every recorded event, oldest first).

    **Example:**

    ```
    conveyor audit history 7f0c2a9e-5b1d-4c1e-9d7a-0a4c2b9f1e11
    ```
    """
    settings = settings_of(ctx)
    with settings.audit() as audit:
        timeline = audit.asset_timeline(asset_id)
    settings.output.show_table(
        timeline,
        _RECORD_COLUMNS,
        (_record_row(dict(r)) for r in timeline["items"]),
        title=f"Audit history of asset {asset_id}",
        empty="no audit records",
    )


@app.command("records")
@handle_errors
def audit_records(
    ctx: typer.Context,
    subject: Annotated[str | None, _SUBJECT] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Only this actor.", metavar="ACTOR")
    ] = None,
    type_: Annotated[str | None, _TYPE] = None,
    since: Annotated[str | None, _SINCE] = None,
    until: Annotated[str | None, _UNTIL] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Maximum number of records.")
    ] = 100,
) -> None:
    """Search audit records by subject, actor, type and time range.

    **Example:**

    ```
    conveyor audit records --actor alice --type conveyor.asset.ingested.v1 --since 2026-01-01
    ```
    """
    settings = settings_of(ctx)
    since = _iso_time(since, "--since")
    until = _iso_time(until, "--until")
    with settings.audit() as audit:
        page = collect_pages(
            lambda n, cursor: audit.list_records(
                subject=subject,
                actor=actor,
                type=type_,
                since=since,
                until=until,
                limit=n,
                cursor=cursor,
            ),
            limit,
        )
    settings.output.show_table(
        page,
        _RECORD_COLUMNS,
        (_record_row(dict(r)) for r in page["items"]),
        title="Audit records",
        empty="no matching records",
    )


def _render_verdict(out: Output, verdict: VerifyResult) -> None:
    checked = verdict.get("records_checked", 0)
    if verdict.get("ok"):
        out.line(f"audit log OK: {checked} records checked")
        return
    out.line(f"audit log BROKEN after checking {checked} records")
    broken = verdict.get("first_broken")
    if broken:
        out.record(broken, title="First broken record")


@app.command("verify")
@handle_errors
def audit_verify(ctx: typer.Context) -> None:
    """Ask the audit service to re-verify the whole hash chain.

    Exit code 0 when the chain is intact, 1 when it is broken (the first broken record is
    printed).

    **Example:**

    ```
    conveyor audit verify || page-oncall "audit chain broken"
    ```
    """
    settings = settings_of(ctx)
    with settings.audit() as audit:
        verdict = audit.verify()
    settings.output.show(verdict, lambda out: _render_verdict(out, verdict))
    if not verdict.get("ok"):
        raise typer.Exit(EXIT_FAILED)


@contextlib.contextmanager
def _atomic_output(target: Path) -> Iterator[Any]:
    """Write to ``target.part`` and rename on success, so a failed export leaves no file
    that looks complete."""
    part = target.with_name(target.name + ".part")
    try:
        fh = part.open("wb")
    except OSError as exc:
        raise UsageProblem(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with fh:
            yield fh
        part.replace(target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


@app.command("export")
@handle_errors
def audit_export(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="File to write (NDJSON, one record per line).",
            metavar="FILE",
            dir_okay=False,
            writable=True,
        ),
    ],
    subject: Annotated[str | None, _SUBJECT] = None,
    type_: Annotated[str | None, _TYPE] = None,
    since: Annotated[str | None, _SINCE] = None,
    until: Annotated[str | None, _UNTIL] = None,
) -> None:
    """Stream audit records to a file as NDJSON, with a running record count.

    The file is written under FILE.part and renamed when the export completes.

    **Example:**

    ```
    conveyor audit export --type conveyor.asset.ingested.v1 --since 2026-01-01 -o uploads.ndjson
    ```
    """
    settings = settings_of(ctx)
    since = _iso_time(since, "--since")
    until = _iso_time(until, "--until")
    out = settings.output
    with (
        settings.audit() as audit,
        Progress(
            TextColumn("exporting"),
            TextColumn("{task.completed:.0f} records"),
            console=out.err,
            transient=True,  # the final count is printed on stdout instead
            disable=not out.err.is_terminal,
        ) as progress,
        _atomic_output(output) as sink,
    ):
        task = progress.add_task("export", total=None)
        count = audit.export(
            sink,
            subject=subject,
            type=type_,
            since=since,
            until=until,
            on_records=lambda n: progress.advance(task, n),
        )
    out.show(
        {"file": str(output), "records": count},
        lambda o: o.line(f"exported {count} records to {output}"),
    )
