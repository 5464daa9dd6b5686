"""``conveyor ontologies``: create, version, list and show label schemas (labeling-dispatch)."""

from __future__ import annotations

from typing import Annotated, Any, cast

import typer

from conveyor_cli.client import collect_pages
from conveyor_cli.commands.context import UsageProblem, handle_errors, settings_of
from conveyor_cli.commands.labeling import labeling_hints, read_json_object
from conveyor_cli.output import Output
from conveyor_cli.schemas import OntologyClass, OntologyVersion

FILE_EXAMPLE = (
    '{"name": "street", "classes": [{"name": "car", "shape": "bbox", "attributes":'
    ' [{"name": "color", "type": "enum", "values": ["red", "blue"], "required": true}]},'
    ' {"name": "person", "shape": "keypoints", "keypoints": ["nose", "left_eye"]}]}'
)

app = typer.Typer(
    help="Ontologies: the label schemas labeling jobs pin. An ontology has a name and"
    " immutable versions; each version lists classes, each drawn as one shape (bbox,"
    " polygon, keypoints, classification) with optional attributes (enum, bool, text).\n\n"
    "**Examples:**\n\n```\n"
    "conveyor ontologies create --file street.json\n"
    "conveyor ontologies version street --file street-v2.json\n"
    "conveyor ontologies list\n"
    "conveyor ontologies show street --version 1\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

_FILE_OPTION = typer.Option(
    "--file",
    "-f",
    help=f"JSON file with the classes (- reads stdin), e.g. {FILE_EXAMPLE}.",
    metavar="FILE",
    show_default=False,
)
_ONTOLOGY_ARGUMENT = typer.Argument(
    metavar="ONTOLOGY", help="The ontology's name or id.", show_default=False
)
_HINTS = {
    "ontology_exists": "the name is taken: add a version with 'conveyor ontologies version"
    " NAME --file FILE'",
    "validation_error": "nothing was created; see docs/labeling.md (Ontologies) for the rules",
}


def _classes(spec: dict[str, Any], source: str) -> list[OntologyClass]:
    classes = spec.get("classes")
    if not isinstance(classes, list):
        raise UsageProblem(f'{source} has no "classes" list, e.g. {FILE_EXAMPLE}')
    # the service checks every class in full and names each problem
    return cast(list[OntologyClass], classes)


def _attribute_text(attribute: Any) -> str:
    text = f"{attribute['name']}: {attribute['type']}"
    if attribute.get("values"):
        text += f" [{', '.join(attribute['values'])}]"
    return text + (" (required)" if attribute.get("required") else "")


def render_version(out: Output, version: OntologyVersion, *, title: str) -> None:
    """A version: a line naming it, then one row per class."""
    out.table(
        ("class", "shape", "keypoints", "attributes"),
        (
            (
                c["name"],
                c["shape"],
                c.get("keypoints"),
                "; ".join(_attribute_text(a) for a in c.get("attributes") or []) or "-",
            )
            for c in version["classes"]
        ),
        title=f"{title}: {version['name']} version {version['version']}"
        f" (id {version['ontology_id']}, by {version['created_by']}, {version['created_at']})",
    )


@app.command("create")
@handle_errors
def ontologies_create(
    ctx: typer.Context,
    file: Annotated[str, _FILE_OPTION],
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="The ontology's name (letters, digits, '.', '_', '-'); default: \"name\" in"
            " the file.",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create an ontology with its version 1 (admin key valid for all datasets).

    The file holds `{"name": ..., "classes": [...]}`. Class names must be unique, attribute
    names unique in their class; an enum attribute lists its `values`, a keypoints class its
    `keypoints`. A spec the service refuses is reported problem by problem and creates
    nothing. Fails with ontology_exists if the name is taken.

    **Examples:**

    ```
    conveyor ontologies create --file street.json
    conveyor ontologies create --file classes.json --name street
    ```
    """
    settings = settings_of(ctx)
    settings.key()  # a missing key is reported before the file is read
    spec = read_json_object(file, "ontology")
    name = name or spec.get("name")
    if not isinstance(name, str) or not name:
        raise UsageProblem('give the ontology a name: --name NAME, or "name" in the file')
    classes = _classes(spec, file)
    with settings.labeling() as labeling, labeling_hints(settings, _HINTS):
        created = labeling.create_ontology(name, classes)
    settings.output.show(created, lambda out: render_version(out, created, title="Created"))


@app.command("version")
@handle_errors
def ontologies_version(
    ctx: typer.Context,
    ontology: Annotated[str, _ONTOLOGY_ARGUMENT],
    file: Annotated[str, _FILE_OPTION],
) -> None:
    """Add an ontology's next version (admin key valid for all datasets).

    The file lists the new version's classes in full (`{"classes": [...]}`; a "name" in it is
    ignored). Earlier versions never change, and jobs keep the version they pinned.

    **Example:**

    ```
    conveyor ontologies version street --file street-v2.json
    ```
    """
    settings = settings_of(ctx)
    settings.key()
    classes = _classes(read_json_object(file, "ontology"), file)
    with settings.labeling() as labeling, labeling_hints(settings, _HINTS):
        created = labeling.add_ontology_version(ontology, classes)
    settings.output.show(created, lambda out: render_version(out, created, title="Created"))


@app.command("list")
@handle_errors
def ontologies_list(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Maximum number of ontologies to show.")
    ] = 50,
) -> None:
    """List ontologies with their latest version number.

    **Example:**

    ```
    conveyor ontologies list --limit 200
    ```
    """
    settings = settings_of(ctx)
    with settings.labeling() as labeling, labeling_hints(settings):
        page = collect_pages(
            lambda n, cursor: labeling.list_ontologies(limit=n, cursor=cursor), limit
        )
    settings.output.show_table(
        page,
        ("name", "latest_version", "id", "created_by", "created_at"),
        (
            (o["name"], o["latest_version"], o["id"], o["created_by"], o["created_at"])
            for o in page["items"]
        ),
        title="Ontologies",
        note=f"more ontologies exist; raise --limit to see more than {limit}"
        if page["next_cursor"]
        else None,
    )


@app.command("show")
@handle_errors
def ontologies_show(
    ctx: typer.Context,
    ontology: Annotated[str, _ONTOLOGY_ARGUMENT],
    version: Annotated[
        int | None,
        typer.Option(
            "--version",
            "-v",
            min=1,
            help="Show this version instead of the latest.",
            metavar="N",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show an ontology's classes (latest version, or --version N) and its version history.

    **Examples:**

    ```
    conveyor ontologies show street
    conveyor ontologies show street --version 1
    conveyor --json ontologies show 3b8e0c1d-2f4a-4d8e-9b1c-5e6f7a8b9c0d
    ```
    """
    settings = settings_of(ctx)
    with settings.labeling() as labeling, labeling_hints(settings):
        if version is not None:
            one = labeling.get_ontology_version(ontology, version)
            settings.output.show(one, lambda out: render_version(out, one, title="Ontology"))
            return
        detail = labeling.get_ontology(ontology)

    def render(out: Output) -> None:
        render_version(out, detail["latest"], title="Ontology")
        out.table(
            ("version", "classes", "created_by", "created_at"),
            (
                (v["version"], v["classes"], v["created_by"], v["created_at"])
                for v in detail["versions"]
            ),
            title="Versions",
        )

    settings.output.show(detail, render)
