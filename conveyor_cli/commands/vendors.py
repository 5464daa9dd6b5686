"""``conveyor vendors``: register and list labeling vendors (labeling-dispatch)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from conveyor_cli.client import collect_pages
from conveyor_cli.commands.context import handle_errors, settings_of
from conveyor_cli.commands.labeling import labeling_hints

CREDENTIALS_WARNING = (
    "the API key and secret are shown only this once: store them now and give them to the"
    " vendor (the key authenticates it, the secret signs webhooks both ways)"
)

LABEL_STUDIO_NOTE = (
    "Conveyor makes a Label Studio project for each job (and pass) this vendor works on;"
    " 'conveyor jobs label-studio JOB' shows where to label"
)

app = typer.Typer(
    help="Labeling vendors: who Conveyor sends task batches to (webhook vendors get signed"
    " POSTs at their URL and POST annotations back; a Label Studio server gets projects and"
    " tasks, and Conveyor reads the annotations back).\n\n"
    "**Examples:**\n\n```\n"
    "conveyor vendors create acme --url https://labels.acme.example/conveyor\n"
    "conveyor vendors create in-house --kind label_studio\n"
    "conveyor vendors list\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


class Kind(StrEnum):
    """How a vendor gets its tasks."""

    webhook = "webhook"
    label_studio = "label_studio"


@app.command("create")
@handle_errors
def vendors_create(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The vendor's unique name.", show_default=False)
    ],
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="webhook: where task batches are POSTed (required). label_studio: the Label"
            " Studio server (default: the one labeling-dispatch is configured with).",
            metavar="URL",
            show_default=False,
        ),
    ] = None,
    kind: Annotated[
        Kind,
        typer.Option(
            "--kind",
            help="webhook: signed POSTs to your URL. label_studio: a Label Studio server"
            " Conveyor makes projects in, imports tasks into and reads annotations back from.",
        ),
    ] = Kind.webhook,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="label_studio only: an admin's API token on that server (default: the"
            " configured one).",
            metavar="TOKEN",
            show_default=False,
        ),
    ] = None,
    capacity: Annotated[
        int,
        typer.Option("--capacity", min=1, help="Most tasks the vendor holds at once.", metavar="N"),
    ] = 100,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=1, help="Tasks per delivery.", metavar="N"),
    ] = 25,
) -> None:
    """Register a vendor (admin key valid for all datasets).

    Prints the vendor with its **API key and secret, shown only this once**: store them
    now. Fails with vendor_exists if the name is taken, url_required for a webhook vendor
    without --url, label_studio_unreachable if the Label Studio server or token does not work.

    **Examples:**

    ```
    conveyor vendors create acme --url https://labels.acme.example/conveyor --capacity 500
    conveyor vendors create in-house --kind label_studio --capacity 1000 --batch-size 100
    ```
    """
    settings = settings_of(ctx)
    with settings.labeling() as labeling, labeling_hints(settings):
        created = labeling.create_vendor(
            name,
            url=url,
            capacity=capacity,
            batch_size=batch_size,
            kind=kind.value,
            token=token,
        )
    output = settings.output
    note = CREDENTIALS_WARNING if kind is Kind.webhook else LABEL_STUDIO_NOTE
    output.show_record(created, title=f"Created vendor {name}", note=note)
    if output.as_json:  # the note goes to stderr, so a piped answer stays plain JSON
        output.note(note)


@app.command("list")
@handle_errors
def vendors_list(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Maximum number of vendors to show.")
    ] = 50,
) -> None:
    """List vendors (never their keys or secrets).

    **Example:**

    ```
    conveyor vendors list
    ```
    """
    settings = settings_of(ctx)
    with settings.labeling() as labeling, labeling_hints(settings):
        page = collect_pages(lambda n, cursor: labeling.list_vendors(limit=n, cursor=cursor), limit)
    settings.output.show_table(
        page,
        ("name", "id", "kind", "url", "capacity", "batch_size", "enabled", "created_at"),
        (
            (
                v["name"],
                v["id"],
                v["kind"],
                v["url"],
                v["capacity"],
                v["batch_size"],
                v["enabled"],
                v["created_at"],
            )
            for v in page["items"]
        ),
        title="Vendors",
        note=f"more vendors exist; raise --limit to see more than {limit}"
        if page["next_cursor"]
        else None,
    )
