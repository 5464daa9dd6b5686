"""The ``conveyor`` command line: upload, datasets, assets, quality, audit, API keys, labeling.

Exit codes: 0 success, 1 a request or file failed (or the audit chain is broken),
2 usage error (bad option, missing API key, unknown dataset for ``upload``).

This module builds the root app (global options, help) and registers the command groups of
:mod:`conveyor_cli.commands`, one module each.
"""

from typing import Annotated

import typer

from conveyor_cli import __version__
from conveyor_cli.client import (
    DEFAULT_AUDIT_URL,
    DEFAULT_CLEAN_URL,
    DEFAULT_INGEST_URL,
    DEFAULT_LABELING_URL,
    DEFAULT_QC_URL,
)
from conveyor_cli.commands import (
    assets,
    audit,
    datasets,
    deliveries,
    jobs,
    keys,
    ontologies,
    quality,
    reviews,
    scorecards,
    tasks,
    upload,
    vendors,
)
from conveyor_cli.commands.context import Settings

MAIN_HELP = """\
Command-line client for **Conveyor**, the data-ops platform for computer-vision datasets.

Uploads images and videos into datasets on the ingest service, browses datasets and
assets, shows the clean service's quality reports, duplicates and cleaning policies,
manages API keys, inspects or verifies the audit service's hash-chained log, and runs
labeling (ontologies, vendors, jobs, tasks, deliveries) on the labeling-dispatch service,
and works the qc service's review queue (accept, reject, send back for rework).

Every command needs an API key: pass `--api-key` or set `CONVEYOR_API_KEY`. Results go
to stdout (tables, or raw JSON with `--json`); progress and errors go to stderr.
Exit codes: 0 ok, 1 something failed, 2 usage error.

**Examples:**

```
export CONVEYOR_API_KEY=cvk_...
conveyor upload ./photos --dataset cars --create-dataset --tag batch-7
conveyor --json datasets list
conveyor --ingest-url https://ingest.example.com assets list --dataset cars --limit 20
conveyor quality summary --dataset cars
conveyor audit verify
conveyor ontologies create --file street.json
```
"""


def _check_url(value: str) -> str:
    """Reject URLs httpx cannot use, as a usage error instead of a confusing network error."""
    if not value.startswith(("http://", "https://")):
        raise typer.BadParameter(f"must start with http:// or https://, got {value!r}")
    return value


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"conveyor {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="conveyor",
    help=MAIN_HELP,
    no_args_is_help=True,
    # Markdown: paragraphs are re-flowed to the terminal and examples stay code blocks.
    rich_markup_mode="markdown",
    # Locals in a traceback could include the API key; never print them.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    ingest_url: Annotated[
        str,
        typer.Option(
            "--ingest-url",
            callback=_check_url,
            envvar="CONVEYOR_INGEST_URL",
            help="Base URL of the ingest service (datasets, assets, API keys).",
            metavar="URL",
        ),
    ] = DEFAULT_INGEST_URL,
    audit_url: Annotated[
        str,
        typer.Option(
            "--audit-url",
            callback=_check_url,
            envvar="CONVEYOR_AUDIT_URL",
            help="Base URL of the audit service (audit history, verify, export).",
            metavar="URL",
        ),
    ] = DEFAULT_AUDIT_URL,
    clean_url: Annotated[
        str,
        typer.Option(
            "--clean-url",
            callback=_check_url,
            envvar="CONVEYOR_CLEAN_URL",
            help="Base URL of the clean service (quality reports, duplicates, policies).",
            metavar="URL",
        ),
    ] = DEFAULT_CLEAN_URL,
    labeling_url: Annotated[
        str,
        typer.Option(
            "--labeling-url",
            callback=_check_url,
            envvar="CONVEYOR_LABELING_URL",
            help="Base URL of the labeling-dispatch service (ontologies, vendors, jobs, tasks,"
            " deliveries).",
            metavar="URL",
        ),
    ] = DEFAULT_LABELING_URL,
    qc_url: Annotated[
        str,
        typer.Option(
            "--qc-url",
            callback=_check_url,
            envvar="CONVEYOR_QC_URL",
            help="Base URL of the qc service (the review queue).",
            metavar="URL",
        ),
    ] = DEFAULT_QC_URL,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="CONVEYOR_API_KEY",
            help="API key sent as the X-API-Key header. Required by every command; prefer"
            " the environment variable so the key stays out of shell history.",
            metavar="KEY",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the raw JSON answers (or a JSON summary for upload) instead of tables.",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the CLI version and exit.",
        ),
    ] = False,
) -> None:
    """Global options; they go before the command name."""
    ctx.obj = Settings(
        ingest_url=ingest_url,
        audit_url=audit_url,
        clean_url=clean_url,
        labeling_url=labeling_url,
        qc_url=qc_url,
        api_key=api_key,
        as_json=as_json,
    )


# In the order `conveyor --help` lists them.
app.command("upload")(upload.upload)
app.add_typer(datasets.app, name="datasets")
app.add_typer(assets.app, name="assets")
app.add_typer(quality.app, name="quality")
app.add_typer(audit.app, name="audit")
app.add_typer(keys.app, name="keys")
app.add_typer(ontologies.app, name="ontologies")
app.add_typer(vendors.app, name="vendors")
app.add_typer(jobs.app, name="jobs")
app.add_typer(tasks.app, name="tasks")
app.add_typer(deliveries.app, name="deliveries")
app.add_typer(reviews.app, name="reviews")
app.add_typer(scorecards.app, name="scorecards")


if __name__ == "__main__":  # pragma: no cover
    app()
