"""``conveyor quality``: quality reports, duplicate groups and cleaning policies (clean service).

Reading policy input and rendering the answers is :mod:`conveyor_cli.quality`; the commands
here fetch, attach hints to the clean service's errors, and print.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, TypeVar, cast

import typer

from conveyor_cli.client import ApiError, CleanClient, ConveyorError, collect_pages
from conveyor_cli.commands.context import Settings, UsageProblem, handle_errors, settings_of
from conveyor_cli.output import Output
from conveyor_cli.quality import (
    REANALYSIS_FINISHED,
    STDIN,
    PolicyInputError,
    build_rules,
    load_policy_file,
    reanalysis_progress,
    render_duplicates,
    render_policy,
    render_reanalyses,
    render_reanalysis,
    render_reevaluation,
    render_report,
    render_summary,
)
from conveyor_cli.schemas import AssetIngested

app = typer.Typer(
    help="Quality reports, duplicate groups and cleaning policies from the clean service.\n\n"
    "Clean checks every ingested asset shortly after upload (corruption, blur, exposure,"
    " size, duplicates, ...) and judges the findings against the dataset's policy: each"
    " failed check rejects the asset, only flags it, or is ignored.\n\n"
    "**Examples:**\n\n```\n"
    "conveyor quality report 7f0c2a9e-5b1d-4c1e-9d7a-0a4c2b9f1e11\n"
    "conveyor quality summary --dataset cars\n"
    "conveyor quality duplicates --dataset cars\n"
    "conveyor quality policy get --dataset cars\n"
    "conveyor quality policy set --dataset cars --action blurry=flag\n"
    "conveyor quality reanalyse cars --wait\n"
    "conveyor quality reanalyses cars\n"
    "conveyor quality backfill-sources cars\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

_UNKNOWN_DATASET_HINT = (
    "clean knows a dataset once ingest has announced it: check the slug with"
    " 'conveyor datasets list' (a dataset created a moment ago may take a second to appear)"
)


@contextlib.contextmanager
def _clean_hints(settings: Settings, hints: Mapping[str, str]) -> Iterator[None]:
    """Attach the hint for the error's code (if any) to an ApiError on its way out."""
    try:
        yield
    except ApiError as exc:
        if exc.status == 404 and exc.code in ("not_found", "http_404"):
            # The route itself is missing: the URL is probably not the clean service.
            exc.hint = f"is --clean-url ({settings.clean_url}) the clean service?"
        exc.hint = exc.hint or hints.get(exc.code)
        raise


def _asset_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise UsageProblem(
            f"ASSET_ID must be an asset id (a UUID such as 7f0c2a9e-5b1d-4c1e-9d7a-0a4c2b9f1e11),"
            f" got {value!r}"
        ) from None


def _missing_report_hint(settings: Settings, asset_id: str) -> str:
    """Tell "unknown asset" from "not judged yet" by asking ingest whether the asset exists."""
    try:
        with settings.ingest() as ingest:
            asset = ingest.get_asset(asset_id)
    except ApiError as exc:
        if exc.status == 404:
            return "ingest has no asset with this id either: check the id"
        return "the id is unknown, or the asset is still being checked: retry in a few seconds"
    except ConveyorError:
        return "the id is unknown, or the asset is still being checked: retry in a few seconds"
    return (
        f"the asset exists (dataset {asset['dataset_slug']}, uploaded {asset['created_at']}) but"
        " has no verdict yet: clean checks assets moments after upload, so retry in a few"
        " seconds (if it stays missing, see the clean service's log)"
    )


_DATASET_OPTION = typer.Option("--dataset", "-d", help="Dataset slug.", metavar="SLUG")


@app.command("report")
@handle_errors
def quality_report(
    ctx: typer.Context,
    asset_id: Annotated[
        str, typer.Argument(metavar="ASSET_ID", help="Asset id (a UUID).", show_default=False)
    ],
) -> None:
    """Show an asset's quality report: verdict, every finding with its value and threshold,
    duplicate info and the measured metrics.

    Findings with effect *reject* are why the asset was rejected; *flag* findings do not
    block it. A 404 means clean has no report (yet); the CLI then asks ingest whether the
    asset exists, to say which.

    **Example:**

    ```
    conveyor quality report 7f0c2a9e-5b1d-4c1e-9d7a-0a4c2b9f1e11
    ```
    """
    settings = settings_of(ctx)
    asset_id = _asset_id(asset_id)
    try:
        with settings.clean() as clean, _clean_hints(settings, {}):
            report = clean.quality_report(asset_id)
    except ApiError as exc:
        if exc.code == "report_not_found":
            exc.hint = _missing_report_hint(settings, asset_id)
        raise
    settings.output.show(report, lambda out: render_report(out, report))


_View = TypeVar("_View")


def _show_dataset_view(
    ctx: typer.Context,
    dataset: str,
    fetch: Callable[[CleanClient, str], _View],
    render: Callable[[Output, _View], None],
) -> None:
    """Fetch one of clean's views of a dataset and show it (raw JSON with ``--json``)."""
    settings = settings_of(ctx)
    with (
        settings.clean() as clean,
        _clean_hints(settings, {"dataset_not_found": _UNKNOWN_DATASET_HINT}),
    ):
        view = fetch(clean, dataset)
    settings.output.show(view, lambda out: render(out, view))


@app.command("summary")
@handle_errors
def quality_summary(ctx: typer.Context, dataset: Annotated[str, _DATASET_OPTION]) -> None:
    """Show a dataset's quality at a glance: cleaned/rejected counts, how often each issue
    rejected or flagged an asset, and percentiles (min, p05, p50, p95, max) of every metric.

    **Example:**

    ```
    conveyor quality summary --dataset cars
    ```
    """
    _show_dataset_view(ctx, dataset, CleanClient.quality_summary, render_summary)


@app.command("duplicates")
@handle_errors
def quality_duplicates(ctx: typer.Context, dataset: Annotated[str, _DATASET_OPTION]) -> None:
    """List a dataset's duplicate groups: each original (the first to arrive, kept) with its
    later copies, whether each is an exact or near duplicate, and the pHash distance.

    **Example:**

    ```
    conveyor quality duplicates --dataset cars
    ```
    """
    _show_dataset_view(ctx, dataset, CleanClient.duplicates, render_duplicates)


policy_app = typer.Typer(
    help="Show or replace a dataset's cleaning policy (per check: reject, flag or ignore, and"
    " its threshold).\n\n"
    "**Examples:**\n\n```\n"
    "conveyor quality policy get --dataset cars\n"
    "conveyor quality policy set --dataset cars --file policy.json\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(policy_app, name="policy")


@policy_app.command("get")
@handle_errors
def policy_get(ctx: typer.Context, dataset: Annotated[str, _DATASET_OPTION]) -> None:
    """Show a dataset's effective policy: every check, its action, and for measured checks
    the metric, the direction that fails, the threshold and the default threshold.

    **Example:**

    ```
    conveyor quality policy get --dataset cars
    ```
    """
    _show_dataset_view(ctx, dataset, CleanClient.get_policy, render_policy)


@policy_app.command("set")
@handle_errors
def policy_set(
    ctx: typer.Context,
    dataset: Annotated[str, _DATASET_OPTION],
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            "-f",
            help='JSON policy: {"actions": {CODE: "reject"|"flag"|"ignore"}, "thresholds":'
            ' {CODE: number}, "near_duplicate_radius": N}, every key optional; - reads stdin.',
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    action: Annotated[
        list[str] | None,
        typer.Option(
            "--action",
            help="CODE=reject|flag|ignore, e.g. blurry=flag; repeat for several checks."
            " Applied on top of --file.",
            metavar="CODE=ACTION",
            show_default=False,
        ),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="CODE=NUMBER, e.g. blurry=0.3; repeat for several checks. Applied on top of"
            " --file.",
            metavar="CODE=NUMBER",
            show_default=False,
        ),
    ] = None,
    near_duplicate_radius: Annotated[
        int | None,
        typer.Option(
            "--near-duplicate-radius",
            min=0,
            help="Largest pHash distance that counts as a near duplicate.",
            metavar="N",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Replace a dataset's cleaning policy (admin key) and re-judge its assets.

    The new policy is exactly what `--file` and the options give: **checks not mentioned go
    back to their defaults**, so include every change you want to keep (`policy get` shows
    the current actions and thresholds). Existing assets are re-judged from their stored
    metrics (nothing is downloaded again); the answer says how many changed verdict. A policy
    the service refuses (unknown check code, bad action or threshold) is reported field by
    field and changes nothing.

    **Examples:**

    ```
    conveyor quality policy set --dataset cars --file policy.json
    conveyor quality policy set --dataset cars --action blurry=flag --threshold dark=30
    echo '{}' | conveyor quality policy set --dataset cars --file -   # all defaults
    ```
    """
    settings = settings_of(ctx)
    settings.key()  # a missing key is reported before the file is read
    actions, thresholds = list(action or []), list(threshold or [])
    if file is None and not actions and not thresholds and near_duplicate_radius is None:
        raise UsageProblem(
            "nothing to set: give --file FILE and/or --action CODE=ACTION,"
            " --threshold CODE=NUMBER, --near-duplicate-radius N"
        )
    try:
        base = load_policy_file(file) if file is not None else None
        rules = build_rules(
            base,
            actions=actions,
            thresholds=thresholds,
            near_duplicate_radius=near_duplicate_radius,
        )
    except PolicyInputError as exc:
        raise UsageProblem(str(exc)) from None
    source = "stdin" if file == STDIN else file
    hints = {
        "dataset_not_found": _UNKNOWN_DATASET_HINT,
        "validation_error": "the policy was not changed; 'conveyor quality policy get"
        f" --dataset {dataset}' lists the check codes"
        + (f" (policy read from {source})" if source else ""),
    }
    with settings.clean() as clean, _clean_hints(settings, hints):
        result = clean.set_policy(dataset, rules)
    settings.output.show(result, lambda out: render_reevaluation(out, dataset, result))


_DATASET_ARGUMENT = typer.Argument(metavar="DATASET", help="Dataset slug.", show_default=False)


@app.command("reanalyse")
@handle_errors
def reanalyse(
    ctx: typer.Context,
    dataset: Annotated[str, _DATASET_ARGUMENT],
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Follow the job's progress until it finishes."),
    ] = False,
    rejudge: Annotated[
        bool,
        typer.Option(
            "--rejudge/--no-rejudge",
            help="Judge the new measurements under the dataset's current policy (announcing"
            " changed verdicts), or only store them.",
        ),
    ] = True,
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.2, help="Seconds between progress checks with --wait."),
    ] = 2.0,
) -> None:
    """Re-measure every stored file of a dataset with today's checks (admin key).

    Needed after an upgrade that measures something new (a metric, a hash, a video
    signature): stored reports lack it until their files are read again. The clean service
    runs the job in the background, a few files at a time so new uploads keep their pace,
    and resumes it after a restart. With `--rejudge` (the default) verdicts are re-judged
    under the current policy as a policy change does; assets whose verdict changes get a new
    conveyor.asset.cleaned.v1 / conveyor.asset.rejected.v1 event. One job per dataset at a time.

    With `--wait` progress is printed on stderr until the job ends; Ctrl-C stops watching,
    not the job. The exit status is 1 if the job failed or was cancelled.

    **Examples:**

    ```
    conveyor quality reanalyse cars --wait
    conveyor quality reanalyse cars --no-rejudge
    ```
    """
    settings = settings_of(ctx)
    hints = {
        "dataset_not_found": _UNKNOWN_DATASET_HINT,
        "reanalysis_running": "follow it with 'conveyor quality reanalyses"
        f" {dataset}'; one re-analysis per dataset runs at a time",
    }
    with settings.clean() as clean, _clean_hints(settings, hints):
        job = clean.start_reanalysis(dataset, rejudge=rejudge)
        if wait:
            last = ""
            while job["state"] not in REANALYSIS_FINISHED:
                line = reanalysis_progress(job)
                if line != last:
                    settings.output.note(line)
                    last = line
                time.sleep(interval)
                job = clean.get_reanalysis(job["id"])
    settings.output.show(job, lambda out: render_reanalysis(out, job))
    if wait and job["state"] != "succeeded":
        raise typer.Exit(1)


@app.command("reanalyses")
@handle_errors
def reanalyses(
    ctx: typer.Context,
    dataset: Annotated[str, _DATASET_ARGUMENT],
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="How many jobs to list (newest first).")
    ] = 20,
) -> None:
    """List a dataset's re-analysis jobs, newest first: state, files handled of the total,
    failures, changed verdicts, who started it and when.

    **Example:**

    ```
    conveyor quality reanalyses cars
    ```
    """
    settings = settings_of(ctx)
    with (
        settings.clean() as clean,
        _clean_hints(settings, {"dataset_not_found": _UNKNOWN_DATASET_HINT}),
    ):
        page = collect_pages(
            lambda n, cursor: clean.list_reanalyses(dataset, limit=n, cursor=cursor), limit
        )
    settings.output.show(page, lambda out: render_reanalyses(out, dataset, page["items"]))


_INGESTED = "conveyor.asset.ingested.v1"


@app.command("backfill-sources")
@handle_errors
def backfill_sources(
    ctx: typer.Context,
    dataset: Annotated[str, _DATASET_ARGUMENT],
    batch: Annotated[
        int, typer.Option("--batch", min=1, max=500, help="Payloads sent per request.")
    ] = 200,
) -> None:
    """Give a dataset's older quality reports the source a re-analysis reads (admin key).

    Reports made before the clean service kept the conveyor.asset.ingested.v1 payload of each
    asset cannot be re-analysed (their failures read `no_stored_source`). The audit trail
    holds every such payload: this command pages through those records, keeps the dataset's,
    and sends them to the clean service, which stores each on the report that lacks one.
    Reports that have one keep it, so running it twice is harmless. Progress is printed on
    stderr. Run `conveyor quality reanalyse DATASET` afterwards.

    **Example:**

    ```
    conveyor quality backfill-sources cars
    conveyor quality reanalyse cars --wait
    ```
    """
    settings = settings_of(ctx)
    totals = {"read": 0, "received": 0, "stored": 0, "kept": 0, "unknown": 0}
    pending: list[AssetIngested] = []

    def send(clean: CleanClient) -> None:
        if pending:
            result = clean.store_sources(dataset, {"assets": list(pending)})
            for key in ("received", "stored", "kept", "unknown"):
                totals[key] += result[key]
            pending.clear()

    hints = {"dataset_not_found": _UNKNOWN_DATASET_HINT}
    with settings.audit() as audit, settings.clean() as clean, _clean_hints(settings, hints):
        cursor: str | None = None
        while True:
            page = audit.list_records(type=_INGESTED, limit=500, cursor=cursor)
            totals["read"] += len(page["items"])
            for record in page["items"]:
                if record["payload"].get("dataset_slug") == dataset:
                    pending.append(cast(AssetIngested, record["payload"]))
                    if len(pending) >= batch:
                        send(clean)
            settings.output.note(
                f"{totals['read']} audit records read, {totals['received'] + len(pending)}"
                f" of {dataset}, {totals['stored']} sources stored"
            )
            cursor = page["next_cursor"]
            if cursor is None:
                break
        send(clean)
    settings.output.show(
        totals,
        lambda out: out.line(
            f"{dataset}: {totals['stored']} reports got their source, {totals['kept']} had one,"
            f" {totals['unknown']} payloads had no report here"
            f" ({totals['read']} audit records read)"
        ),
    )
