"""Terminal output: tables or raw JSON on stdout, errors and progress on stderr.

Keeping results on stdout and everything else on stderr means ``conveyor ... --json | jq``
and ``conveyor upload ... > summary.txt`` capture only the result.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

PIPE_WIDTH = 220


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def human_bytes(n: int) -> str:
    """Format a byte count with binary units (``1.5 MiB``)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class Output:
    """Renders results according to the global ``--json`` flag.

    Consoles are created per invocation (not at import) so they bind to whatever
    ``sys.stdout``/``sys.stderr`` are at run time, which is what test runners swap.
    """

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self.out = Console(highlight=False)
        if not self.out.is_terminal and "COLUMNS" not in os.environ:
            # Piped output: a wide table keeps ids and hashes on one line for grep/cut.
            self.out.width = PIPE_WIDTH
        self.err = Console(stderr=True, highlight=False)

    def show(self, value: Any, render: Callable[[Output], None]) -> None:
        """A command's result: ``value`` as raw JSON with ``--json``, else ``render(self)``."""
        if self.as_json:
            self.json(value)
        else:
            render(self)

    def show_table(
        self,
        value: Any,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        title: str,
        empty: str = "(none)",
        note: str | None = None,
    ) -> None:
        """``value`` as raw JSON with ``--json``, else a table of ``rows`` and ``note`` if any."""
        if self.as_json:
            self.json(value)
            return
        self.table(columns, rows, title=title, empty=empty)
        if note:
            self.note(note)

    def show_record(
        self, mapping: Mapping[str, Any], *, title: str, note: str | None = None
    ) -> None:
        """One object: raw JSON with ``--json``, else a field/value table and ``note`` if any."""
        self.show_table(mapping, ("field", "value"), mapping.items(), title=title, note=note)

    def json(self, value: Any) -> None:
        """Print ``value`` as indented JSON on stdout, with no markup processing."""
        self.out.print(json.dumps(value, indent=2, sort_keys=False), markup=False, soft_wrap=True)

    def error(self, message: str) -> None:
        """Print one ``error: ...`` line on stderr."""
        self.err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)

    def note(self, message: str) -> None:
        """Print an informational line on stderr (never mixed into results)."""
        self.err.print(message, markup=False, highlight=False, soft_wrap=True)

    def line(self, message: str) -> None:
        """Print a plain result line on stdout."""
        self.out.print(message, markup=False, highlight=False)

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        title: str | None = None,
        empty: str = "(none)",
    ) -> None:
        """Print a table; an empty result prints ``empty`` instead of a bare header."""
        # at least as wide as its title, so the title (often naming an id) is never wrapped
        table = Table(
            title=escape(title) if title else None,
            title_justify="left",
            min_width=len(title) if title else None,
        )
        for name in columns:
            table.add_column(name, overflow="fold")
        count = 0
        for row in rows:
            table.add_row(*(escape(_cell(v)) for v in row))
            count += 1
        if count == 0:
            if title:
                self.line(f"{title}: {empty}")
            else:
                self.line(empty)
            return
        self.out.print(table)

    def record(self, mapping: Mapping[str, Any], *, title: str | None = None) -> None:
        """Print one object as a two-column field/value table."""
        self.table(("field", "value"), mapping.items(), title=title)
