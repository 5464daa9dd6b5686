"""``conveyor datasets``: create, list and inspect datasets (ingest service)."""

from __future__ import annotations

import hashlib
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from conveyor_cli.client import collect_pages
from conveyor_cli.commands.context import handle_errors, settings_of
from conveyor_cli.commands.reviews import qc_hints
from conveyor_cli.schemas import DatasetVersion

app = typer.Typer(
    help="Create, list and inspect datasets; freeze their accepted labels into versions and"
    " export those (COCO, YOLO).\n\n"
    "**Examples:**\n\n```\n"
    "conveyor datasets create cars --name 'Cars'\n"
    "conveyor datasets list --limit 200\n"
    "conveyor datasets get cars\n"
    "conveyor datasets version-create cars\n"
    "conveyor datasets export cars 1 --format coco -o cars-v1.zip\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@app.command("list")
@handle_errors
def datasets_list(
    ctx: typer.Context,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, help="Maximum number of datasets to show."),
    ] = 50,
) -> None:
    """List datasets (following pagination up to --limit).

    **Example:**

    ```
    conveyor datasets list --limit 200
    ```
    """
    settings = settings_of(ctx)
    with settings.ingest() as ingest:
        page = collect_pages(lambda n, cursor: ingest.list_datasets(limit=n, cursor=cursor), limit)

    settings.output.show_table(
        page,
        ("slug", "name", "id", "created_by", "created_at"),
        (
            (d["slug"], d["name"], d["id"], d.get("created_by"), d.get("created_at"))
            for d in page["items"]
        ),
        title="Datasets",
        note=(
            f"more datasets exist; raise --limit to see more than {limit}"
            if page["next_cursor"]
            else None
        ),
    )


@app.command("create")
@handle_errors
def datasets_create(
    ctx: typer.Context,
    slug: Annotated[
        str,
        typer.Argument(
            metavar="SLUG", help="URL-safe identifier, e.g. 'cars'.", show_default=False
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option("--name", help="Human-readable name (defaults to the slug).", metavar="NAME"),
    ] = None,
) -> None:
    """Create a dataset. Fails with dataset_exists if the slug is taken.

    **Example:**

    ```
    conveyor datasets create cars --name "Cars and vans"
    ```
    """
    settings = settings_of(ctx)
    with settings.ingest() as ingest:
        created = ingest.create_dataset(slug, name or slug)
    settings.output.show_record(created, title=f"Created dataset {slug}")


@app.command("get")
@handle_errors
def datasets_get(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(metavar="SLUG", help="Dataset slug.", show_default=False)],
) -> None:
    """Show one dataset.

    **Example:**

    ```
    conveyor datasets get cars
    ```
    """
    settings = settings_of(ctx)
    with settings.ingest() as ingest:
        found = ingest.get_dataset(slug)
    settings.output.show_record(found, title=f"Dataset {slug}")


# --------------------------------------------------------------------------- versions (qc)

_SLUG = typer.Argument(metavar="SLUG", help="Dataset slug (or id).", show_default=False)


def _version_row(v: DatasetVersion) -> tuple[Any, ...]:
    return (
        v["number"],
        v["item_count"],
        v["shape_count"],
        v["manifest_hash"][:16],
        v["created_by"],
        v["created_at"],
    )


@app.command("versions")
@handle_errors
def datasets_versions(
    ctx: typer.Context,
    slug: Annotated[str, _SLUG],
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Maximum number of versions to show.")
    ] = 50,
) -> None:
    """List the dataset's frozen versions, oldest first (qc service).

    **Example:**

    ```
    conveyor datasets versions cars
    ```
    """
    settings = settings_of(ctx)
    with settings.qc() as qc, qc_hints(settings):
        page = collect_pages(
            lambda n, cursor: qc.list_versions(slug, limit=n, cursor=cursor), limit
        )
    settings.output.show_table(
        page,
        ("number", "images", "shapes", "hash", "created_by", "created_at"),
        (_version_row(v) for v in page["items"]),
        title=f"Versions of {slug}",
        note=f"more versions exist; raise --limit to see more than {limit}"
        if page["next_cursor"]
        else None,
    )


@app.command("version-create")
@handle_errors
def datasets_version_create(ctx: typer.Context, slug: Annotated[str, _SLUG]) -> None:
    """Freeze the dataset's accepted labels into a new numbered version (uploader key). With
    nothing changed since a version, that version is shown instead of a new one.

    **Example:**

    ```
    conveyor datasets version-create cars
    ```
    """
    settings = settings_of(ctx)
    with settings.qc() as qc, qc_hints(settings):
        version = qc.create_version(slug)
    settings.output.show_record(version, title=f"Version {version['number']} of {slug}")


class ExportFormat(StrEnum):
    """What an export holds."""

    coco = "coco"
    yolo = "yolo"


class ExportImages(StrEnum):
    """The image files in the zip, or presigned links to them."""

    include = "include"
    links = "links"


@app.command("export")
@handle_errors
def datasets_export(
    ctx: typer.Context,
    slug: Annotated[str, _SLUG],
    version: Annotated[
        int, typer.Argument(metavar="VERSION", min=1, help="Version number.", show_default=False)
    ],
    export_format: Annotated[
        ExportFormat, typer.Option("--format", help="COCO instances or YOLO labels.")
    ] = ExportFormat.coco,
    images: Annotated[
        ExportImages,
        typer.Option("--images", help="Put the images in the zip, or presigned links to them."),
    ] = ExportImages.include,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the export until it is built.")
    ] = True,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Download the zip here once built.", metavar="FILE"),
    ] = None,
) -> None:
    """Export a dataset version as a zip (uploader key): built in the background by the qc
    service, with its progress shown; --output downloads it (checked against its sha256).

    **Examples:**

    ```
    conveyor datasets export cars 3 --format yolo -o cars-v3.zip
    conveyor datasets export cars 3 --images links --no-wait
    ```
    """
    settings = settings_of(ctx)
    with settings.qc() as qc, qc_hints(settings):
        export = qc.request_export(
            slug, version, export_format=export_format.value, images=images.value
        )
        shown = -1
        while (wait or output is not None) and export["state"] in ("queued", "running"):
            time.sleep(1)
            export = qc.get_export(export["id"])
            if export["done"] != shown:
                shown = export["done"]
                settings.output.note(f"{export['state']}: {shown}/{export['total']} images")
    if export["state"] == "failed":
        settings.output.error(f"export {export['id']} failed: {export['error']}")
        raise typer.Exit(1)
    if output is not None and export["download_url"]:
        if _download(export["download_url"], output) != export["sha256"]:
            output.unlink()
            settings.output.error(f"the download's sha256 is not the export's; {output} removed")
            raise typer.Exit(1)
        settings.output.note(f"saved {output}")
    settings.output.show_record(export, title=f"Export of {slug} version {version}")


def _download(url: str, path: Path) -> str:
    """Stream the zip to ``path``; its sha256."""
    digest = hashlib.sha256()
    with httpx.stream("GET", url, timeout=60) as response, path.open("wb") as out:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()
