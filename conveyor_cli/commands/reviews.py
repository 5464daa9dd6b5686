"""``conveyor reviews``: the qc service's review queue: list, show, accept, reject, rework."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from enum import StrEnum
from typing import Annotated, Any

import typer

from conveyor_cli.client import ApiError, QcClient, collect_pages
from conveyor_cli.commands.context import Settings, handle_errors, settings_of
from conveyor_cli.commands.labeling import checked_id
from conveyor_cli.output import Output
from conveyor_cli.schemas import ReviewDetail


class State(StrEnum):
    """Where an asset stands in QC."""

    waiting = "waiting"
    review = "review"
    accepted = "accepted"
    rejected = "rejected"
    rework = "rework"


app = typer.Typer(
    help="The review queue: assets whose labels QC could not accept on its own (low agreement"
    " between annotators, findings, a consensus timeout) wait here for a person, who accepts"
    " the consensus, rejects the answers, or sends the tasks back to the vendor with a comment."
    " Deciding needs an uploader or admin key; the reviewer is the key's name.\n\n"
    "**Examples:**\n\n```\n"
    "conveyor reviews list --job 9a1d7c3e-...\n"
    "conveyor reviews show 9a1d7c3e-... 0b7e3c1d-...\n"
    "conveyor reviews accept 9a1d7c3e-... 0b7e3c1d-... --comment 'checked by hand'\n"
    "conveyor reviews rework 9a1d7c3e-... 0b7e3c1d-... --comment 'the left car is missing'\n"
    "```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

_JOB = typer.Argument(metavar="JOB", help="Labeling job id.", show_default=False)
_ASSET = typer.Argument(metavar="ASSET", help="Asset id.", show_default=False)

HINTS = {
    "forbidden": "deciding needs an uploader or admin key",
    "review_not_found": "'conveyor reviews list --job JOB --state STATE' shows the job's reviews",
    "review_not_open": "only a review in state 'review' can be decided; 'conveyor reviews show'"
    " tells its state",
    "no_label_set": "the answers have no consensus to accept: send the asset back for rework,"
    " or accept chosen shapes through the API (POST .../accept with 'shapes')",
    "dataset_not_found": "'conveyor datasets list' shows the datasets your key may see",
}


@contextlib.contextmanager
def qc_hints(settings: Settings) -> Iterator[None]:
    """Attach the hint for the error's code (if any) to an ApiError on its way out."""
    try:
        yield
    except ApiError as exc:
        if exc.status == 404 and exc.code in ("not_found", "http_404"):
            exc.hint = f"is --qc-url ({settings.qc_url}) the qc service?"
        exc.hint = exc.hint or HINTS.get(exc.code)
        raise


@app.command("list")
@handle_errors
def reviews_list(
    ctx: typer.Context,
    job: Annotated[
        str | None,
        typer.Option(
            "--job", help="Only this job's reviews (id).", metavar="ID", show_default=False
        ),
    ] = None,
    state: Annotated[
        State, typer.Option("--state", help="Only reviews in this state.")
    ] = State.review,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", help="Only this dataset's reviews (slug or id).", show_default=False
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Maximum number of reviews to show.")
    ] = 50,
) -> None:
    """List reviews, those unchanged the longest first: job, asset, state, round, agreement,
    why they wait.

    **Examples:**

    ```
    conveyor reviews list --job 9a1d7c3e-...
    conveyor reviews list --dataset cars --state rework --limit 200
    conveyor --json reviews list --state accepted
    ```
    """
    settings = settings_of(ctx)
    job_id = checked_id(job, "--job") if job else None
    with settings.qc() as qc, qc_hints(settings):
        page = collect_pages(
            lambda n, cursor: qc.list_reviews(
                job_id=job_id, state=state.value, dataset=dataset, limit=n, cursor=cursor
            ),
            limit,
        )
    settings.output.show_table(
        page,
        ("job_id", "asset_id", "state", "round", "agreement", "reasons", "updated_at"),
        (
            (
                r["job_id"],
                r["asset_id"],
                r["state"],
                r["round"],
                None if r["agreement"] is None else round(r["agreement"], 3),
                "; ".join(r["reasons"]),
                r["updated_at"],
            )
            for r in page["items"]
        ),
        title=f"Reviews ({state.value})",
        note=f"more reviews exist; raise --limit to see more than {limit}"
        if page["next_cursor"]
        else None,
    )


def _shape_cells(shape: Mapping[str, Any]) -> tuple[Any, Any, str]:
    geometry: Any = shape.get("bbox") or shape.get("points") or shape.get("value") or ""
    if isinstance(geometry, Mapping):
        geometry = ", ".join(f"{k}={v}" for k, v in geometry.items())
    return shape.get("class"), shape.get("type"), str(geometry)


def render_review(out: Output, review: ReviewDetail, *, title: str) -> None:
    """The review's fields, its answers, then every shape: each annotator's and the label set's."""
    hidden = ("answers", "tasks", "consensus", "label_set")
    out.record({k: v for k, v in review.items() if k not in hidden}, title=title)
    out.table(
        ("replica", "annotator", "vendor_id", "version", "shapes", "findings", "received_at"),
        (
            (
                a["replica"],
                a["annotator_id"],
                a["vendor_id"],
                a["version"],
                len(a["shapes"]),
                "; ".join(str(f.get("message", f.get("code", ""))) for f in a["findings"]),
                a["received_at"],
            )
            for a in review["answers"]
        ),
        title="Answers",
    )
    rows = [
        (f"replica {a['replica']} ({a['annotator_id']})", *_shape_cells(s))
        for a in review["answers"]
        for s in a["shapes"]
    ]
    rows += [("label set", *_shape_cells(s)) for s in review["label_set"] or []]
    out.table(("from", "class", "type", "geometry"), rows, title="Shapes")


def _on_review(
    ctx: typer.Context,
    job: str,
    asset: str,
    verb: str,
    call: Callable[[QcClient, str, str], ReviewDetail],
) -> None:
    """``call(client, job id, asset id)`` with the ids checked, then the review it answers."""
    settings = settings_of(ctx)
    job_id, asset_id = checked_id(job, "JOB"), checked_id(asset, "ASSET")
    with settings.qc() as qc, qc_hints(settings):
        review = call(qc, job_id, asset_id)
    title = f"{verb} asset {asset_id} in job {job_id}"
    settings.output.show(review, lambda out: render_review(out, review, title=title))


@app.command("show")
@handle_errors
def reviews_show(
    ctx: typer.Context, job: Annotated[str, _JOB], asset: Annotated[str, _ASSET]
) -> None:
    """Show an asset's review in a job: its state and reasons, every annotator's shapes with the
    checks' findings, and the label set the consensus proposes (or the one accepted).

    **Example:**

    ```
    conveyor reviews show 9a1d7c3e-1d3b-4f6a-8e9c-0b1a2c3d4e5f 0b7e3c1d-5b1d-4c1e-9d7a-0a4c2b9f1e11
    ```
    """
    _on_review(ctx, job, asset, "Review of", QcClient.get_review)


_COMMENT_REQUIRED = typer.Option(
    "--comment", "-m", help="Why (kept with the decision and in the audit log).", show_default=False
)


@app.command("accept")
@handle_errors
def reviews_accept(
    ctx: typer.Context,
    job: Annotated[str, _JOB],
    asset: Annotated[str, _ASSET],
    comment: Annotated[
        str | None,
        typer.Option("--comment", "-m", help="A note kept with the decision.", show_default=False),
    ] = None,
) -> None:
    """Accept the label set the consensus proposes: it becomes the asset's labels (and goes
    into the dataset's next version). Exits 1 if the review is not waiting for a person.

    **Example:**

    ```
    conveyor reviews accept 9a1d7c3e-... 0b7e3c1d-... --comment 'checked by hand'
    ```
    """
    _on_review(
        ctx, job, asset, "Accepted", lambda qc, j, a: qc.accept_review(j, a, comment=comment)
    )


@app.command("reject")
@handle_errors
def reviews_reject(
    ctx: typer.Context,
    job: Annotated[str, _JOB],
    asset: Annotated[str, _ASSET],
    comment: Annotated[str, _COMMENT_REQUIRED],
) -> None:
    """Reject the asset's answers: they never become its labels.

    **Example:**

    ```
    conveyor reviews reject 9a1d7c3e-... 0b7e3c1d-... --comment 'image too dark to label'
    ```
    """
    _on_review(
        ctx, job, asset, "Rejected", lambda qc, j, a: qc.reject_review(j, a, comment=comment)
    )


@app.command("rework")
@handle_errors
def reviews_rework(
    ctx: typer.Context,
    job: Annotated[str, _JOB],
    asset: Annotated[str, _ASSET],
    comment: Annotated[str, _COMMENT_REQUIRED],
    vendor: Annotated[
        str | None,
        typer.Option(
            "--vendor",
            help="Send the tasks to this vendor of the job (id) instead of the ones that"
            " answered them.",
            metavar="ID",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Send the asset's answered tasks back for rework with the comment; the vendor sees the
    comment with the task, and the new answers come through QC again.

    **Examples:**

    ```
    conveyor reviews rework 9a1d7c3e-... 0b7e3c1d-... --comment 'the left car is missing'
    conveyor reviews rework 9a1d7c3e-... 0b7e3c1d-... -m 'boxes too loose' --vendor 0f4e2b6a-...
    ```
    """
    vendor_id = checked_id(vendor, "--vendor") if vendor else None
    _on_review(
        ctx,
        job,
        asset,
        "Sent back",
        lambda qc, j, a: qc.rework_review(j, a, comment=comment, vendor_id=vendor_id),
    )
