"""What every command shares: the global options, and how a failure ends the command.

The root callback (:mod:`conveyor_cli.main`) stores the global options as :class:`Settings`
on the click context; a command reads them with :func:`settings_of`, builds its clients from
them and prints through ``settings.output`` (:class:`~conveyor_cli.output.Output`, which
knows ``--json``). Commands are wrapped in :func:`handle_errors`, which turns expected
failures into one ``error: ...`` line on stderr and the exit code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import typer

from conveyor_cli.client import (
    DEFAULT_QC_URL,
    AuditClient,
    CleanClient,
    ConveyorError,
    IngestClient,
    LabelingClient,
    QcClient,
)
from conveyor_cli.output import Output

P = ParamSpec("P")
R = TypeVar("R")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageProblem(Exception):
    """A mistake in how the CLI was invoked; reported on one line with exit code 2."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Global options, shared by every command through the click context."""

    ingest_url: str
    audit_url: str
    clean_url: str
    labeling_url: str
    api_key: str | None
    as_json: bool
    qc_url: str = DEFAULT_QC_URL

    @property
    def output(self) -> Output:
        """A fresh :class:`Output` bound to the current stdout/stderr."""
        return Output(as_json=self.as_json)

    def key(self) -> str:
        """The API key, or a usage error naming both ways to provide it."""
        if not self.api_key:
            raise UsageProblem(
                "missing API key: pass --api-key KEY or set the CONVEYOR_API_KEY environment"
                " variable"
            )
        return self.api_key

    def ingest(self) -> IngestClient:
        """A synchronous ingest client (raises UsageProblem without an API key)."""
        return IngestClient(self.ingest_url, self.key())

    def audit(self) -> AuditClient:
        """A synchronous audit client (raises UsageProblem without an API key)."""
        return AuditClient(self.audit_url, self.key())

    def clean(self) -> CleanClient:
        """A synchronous clean client (raises UsageProblem without an API key)."""
        return CleanClient(self.clean_url, self.key())

    def labeling(self) -> LabelingClient:
        """A synchronous labeling-dispatch client (raises UsageProblem without an API key)."""
        return LabelingClient(self.labeling_url, self.key())

    def qc(self) -> QcClient:
        """A synchronous qc client (raises UsageProblem without an API key)."""
        return QcClient(self.qc_url, self.key())


def settings_of(ctx: typer.Context) -> Settings:
    """The global options parsed by the root callback."""
    obj = ctx.find_root().obj
    if not isinstance(obj, Settings):  # only when a command is invoked without the callback
        raise UsageProblem("internal: global options were not parsed")
    return obj


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into one ``error: ...`` line and an exit code (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except UsageProblem as exc:
            Output(as_json=False).error(str(exc))
            raise typer.Exit(EXIT_USAGE) from None
        except ConveyorError as exc:
            out = Output(as_json=False)
            out.error(exc.one_line())
            for line in exc.explanation():
                out.note(f"  {line}")
            raise typer.Exit(EXIT_FAILED) from None

    return wrapper
