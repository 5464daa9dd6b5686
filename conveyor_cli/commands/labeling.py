"""What the labeling commands (ontologies, vendors, jobs, tasks, deliveries) share: hints on the
labeling-dispatch service's errors, ids checked before any request, and JSON files read."""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from conveyor_cli.client import ApiError
from conveyor_cli.commands.context import Settings, UsageProblem

STDIN = "-"

# Hints for the codes any labeling command may meet.
COMMON_HINTS = {
    "forbidden": "this needs an admin key; ontologies and vendors need one valid for all datasets",
    "ontology_not_found": "'conveyor ontologies list' shows the ontologies",
    "vendor_not_found": "'conveyor vendors list' shows the vendors",
    "job_not_found": "'conveyor jobs list' shows the jobs your key may see",
    "delivery_not_found": "'conveyor deliveries list' shows the delivery log",
}


@contextlib.contextmanager
def labeling_hints(settings: Settings, hints: Mapping[str, str] | None = None) -> Iterator[None]:
    """Attach the hint for the error's code (if any) to an ApiError on its way out."""
    try:
        yield
    except ApiError as exc:
        if exc.status == 404 and exc.code in ("not_found", "http_404"):
            # The route itself is missing: the URL is probably not the labeling service.
            exc.hint = f"is --labeling-url ({settings.labeling_url}) the labeling-dispatch service?"
        exc.hint = exc.hint or (hints or {}).get(exc.code) or COMMON_HINTS.get(exc.code)
        raise


def checked_id(value: str, what: str) -> str:
    """``value`` as a canonical UUID, or a usage error naming ``what`` it should identify."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise UsageProblem(
            f"{what} must be an id (a UUID such as 7f0c2a9e-5b1d-4c1e-9d7a-0a4c2b9f1e11),"
            f" got {value!r}"
        ) from None


def read_json_object(path: str, what: str) -> dict[str, Any]:
    """The JSON object in the file ``path`` (``-``: stdin); a usage error naming ``what`` the
    file should hold when it cannot be read or is not an object."""
    name = "stdin" if path == STDIN else path
    try:
        text = sys.stdin.read() if path == STDIN else Path(path).read_text(encoding="utf-8")
        value: Any = json.loads(text)
    except OSError as exc:
        raise UsageProblem(f"cannot read {what} file {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageProblem(f"{what} file {name} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise UsageProblem(
            f"{what} file {name} is not valid JSON: {exc.msg} (line {exc.lineno},"
            f" column {exc.colno})"
        ) from None
    if not isinstance(value, dict):
        raise UsageProblem(f"{what} file {name} must hold a JSON object")
    return value
