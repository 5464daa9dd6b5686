"""``conveyor keys``: create, list and revoke API keys (ingest service, admin only)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from conveyor_cli.commands.context import handle_errors, settings_of


class Role(StrEnum):
    """Roles an API key can have."""

    admin = "admin"
    uploader = "uploader"
    viewer = "viewer"


app = typer.Typer(
    help="Manage API keys (admin only).\n\n"
    "**Examples:**\n\n```\n"
    "conveyor keys create ci-uploader --role uploader\n"
    "conveyor keys create vendor-a --role viewer --dataset cars --dataset bikes\n"
    "conveyor keys scope 3b8e0c1d-2f4a-4d8e-9b1c-5e6f7a8b9c0d --dataset cars\n"
    "conveyor keys list\n"
    "conveyor keys revoke 3b8e0c1d-2f4a-4d8e-9b1c-5e6f7a8b9c0d\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@app.command("create")
@handle_errors
def keys_create(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Label for the key.", show_default=False)
    ],
    role: Annotated[
        Role,
        typer.Option(
            "--role",
            help="admin: everything; uploader: create datasets and upload; viewer: read only.",
        ),
    ],
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            help="Limit the key to this dataset (repeat for several); default: every dataset.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create an API key. The secret is shown only once: store it right away.

    A key limited with `--dataset` sees nothing of other datasets (they answer 404).

    **Example:**

    ```
    conveyor keys create ci-uploader --role uploader
    conveyor keys create vendor-a --role viewer --dataset cars
    ```
    """
    settings = settings_of(ctx)
    with settings.ingest() as ingest:
        created = ingest.create_api_key(name, role.value, dataset or None)
    settings.output.show_record(
        created,
        title=f"Created API key {name}",
        note="this is the only time the key is shown; store it now",
    )


@app.command("list")
@handle_errors
def keys_list(ctx: typer.Context) -> None:
    """List API keys (ids, names, roles, revocation time; never the secrets).

    **Example:**

    ```
    conveyor keys list
    ```
    """
    settings = settings_of(ctx)
    with settings.ingest() as ingest:
        keys = ingest.list_api_keys()
    settings.output.show_table(
        {"items": keys},
        ("id", "name", "role", "datasets", "created_at", "revoked_at"),
        (
            (
                k["id"],
                k["name"],
                k["role"],
                "all" if k.get("datasets") is None else ", ".join(k["datasets"] or []) or "none",
                k.get("created_at"),
                k.get("revoked_at"),
            )
            for k in keys
        ),
        title="API keys",
    )


@app.command("scope")
@handle_errors
def keys_scope(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(metavar="ID", help="Key id.", show_default=False)],
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            help="A dataset the key may touch (repeat for several).",
            show_default=False,
        ),
    ] = None,
    all_datasets: Annotated[
        bool, typer.Option("--all", help="Lift the limit: the key may touch every dataset.")
    ] = False,
) -> None:
    """Change which datasets a key may touch; every service applies it within a second.

    **Example:**

    ```
    conveyor keys scope 3b8e0c1d-... --dataset cars --dataset bikes
    conveyor keys scope 3b8e0c1d-... --all
    ```
    """
    if all_datasets == bool(dataset):
        raise typer.BadParameter("give either --dataset (one or more) or --all")
    settings = settings_of(ctx)
    with settings.ingest() as ingest:
        changed = ingest.set_api_key_datasets(key_id, None if all_datasets else dataset)
    settings.output.show_record(changed, title=f"API key {key_id}")


@app.command("revoke")
@handle_errors
def keys_revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(metavar="ID", help="Key id.", show_default=False)],
) -> None:
    """Revoke an API key by id; requests using it fail with 401 from then on.

    **Example:**

    ```
    conveyor keys revoke 3b8e0c1d-...
    ```
    """
    settings = settings_of(ctx)
    with settings.ingest() as ingest:
        ingest.revoke_api_key(key_id)
    settings.output.show(
        {"id": key_id, "revoked": True}, lambda out: out.line(f"revoked API key {key_id}")
    )
