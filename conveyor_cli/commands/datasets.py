"""``conveyor datasets``: create, list and inspect datasets (ingest service)."""

from __future__ import annotations

from typing import Annotated

import typer

from conveyor_cli.client import collect_pages
from conveyor_cli.commands.context import handle_errors, settings_of

app = typer.Typer(
    help="Create, list and inspect datasets.\n\n"
    "**Examples:**\n\n```\n"
    "conveyor datasets create cars --name 'Cars'\n"
    "conveyor datasets list --limit 200\n"
    "conveyor datasets get cars\n```\n",
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
