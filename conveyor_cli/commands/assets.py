"""``conveyor assets``: list and inspect the assets of datasets (ingest service)."""

from __future__ import annotations

from typing import Annotated

import typer

from conveyor_cli.client import collect_pages
from conveyor_cli.commands.context import handle_errors, settings_of
from conveyor_cli.output import human_bytes

app = typer.Typer(
    help="List and inspect the assets (stored images/videos) of datasets.\n\n"
    "**Examples:**\n\n```\n"
    "conveyor assets list --dataset cars --media-type image/jpeg --tag night\n"
    "conveyor assets get 7f0c2a9e-5b1d-4c1e-9d7a-0a4c2b9f1e11\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@app.command("list")
@handle_errors
def assets_list(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset slug.", metavar="SLUG")],
    media_type: Annotated[
        str | None,
        typer.Option("--media-type", help="Only this media type, e.g. image/png.", metavar="TYPE"),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="Only assets from this source (e.g. upload).", metavar="SRC"),
    ] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", help="Only assets carrying this tag.", metavar="TAG")
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", "-n", min=1, help="Maximum number of assets (cursors are followed)."
        ),
    ] = 100,
) -> None:
    """List a dataset's assets, optionally filtered, following cursors up to --limit.

    **Example:**

    ```
    conveyor assets list --dataset cars --tag night --limit 500
    ```
    """
    settings = settings_of(ctx)
    with settings.ingest() as ingest:
        page = collect_pages(
            lambda n, cursor: ingest.list_assets(
                dataset, limit=n, cursor=cursor, media_type=media_type, source=source, tag=tag
            ),
            limit,
        )
    settings.output.show_table(
        page,
        ("id", "filename", "media_type", "size", "tags", "created_at"),
        (
            (
                a["id"],
                a["filename"],
                a["media_type"],
                human_bytes(a["size_bytes"]),
                a.get("tags"),
                a.get("created_at"),
            )
            for a in page["items"]
        ),
        title=f"Assets of {dataset}",
        note=(
            f"more assets exist; raise --limit to see more than {limit}"
            if page["next_cursor"]
            else None
        ),
    )


@app.command("get")
@handle_errors
def assets_get(
    ctx: typer.Context,
    asset_id: Annotated[str, typer.Argument(metavar="ID", help="Asset id.", show_default=False)],
) -> None:
    """Show one asset, including a temporary download URL.

    **Example:**

    ```
    conveyor assets get 7f0c2a9e-5b1d-4c1e-9d7a-0a4c2b9f1e11
    ```
    """
    settings = settings_of(ctx)
    with settings.ingest() as ingest:
        asset = ingest.get_asset(asset_id)
    settings.output.show_record(asset, title=f"Asset {asset_id}")
