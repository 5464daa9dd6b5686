"""``conveyor quality``: reading policy input and rendering the clean service's answers.

Pure functions (no HTTP): the commands in :mod:`conveyor_cli.commands.quality` fetch, these
turn a policy file and ``CODE=VALUE`` options into a request body, and answers into tables.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast, get_args

from conveyor_cli.output import Output
from conveyor_cli.schemas import (
    Action,
    DuplicateGroups,
    Finding,
    Policy,
    PolicyRules,
    QualityReport,
    QualitySummary,
    Reanalysis,
    Reevaluation,
)

ACTIONS: tuple[Action, ...] = get_args(Action)
POLICY_EXAMPLE = (
    '{"actions": {"blurry": "flag"}, "thresholds": {"dark": 30}, "near_duplicate_radius": 4}'
)
STDIN = "-"


class PolicyInputError(ValueError):
    """A policy file or option the CLI cannot turn into a request (a usage error)."""


# --------------------------------------------------------------------------- policy input


def load_policy_file(path: str) -> dict[str, Any]:
    """The JSON object in ``path`` (``-`` reads stdin)."""
    name = "stdin" if path == STDIN else path
    try:
        text = sys.stdin.read() if path == STDIN else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyInputError(f"cannot read policy file {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PolicyInputError(f"policy file {name} is not UTF-8 text") from None
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyInputError(
            f"policy file {name} is not valid JSON: {exc.msg} (line {exc.lineno},"
            f" column {exc.colno})"
        ) from None
    if not isinstance(value, dict):
        raise PolicyInputError(
            f"policy file {name} must hold a JSON object such as {POLICY_EXAMPLE}"
        )
    return value


def _assignments(values: Sequence[str], option: str, example: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in values:
        code, sep, value = item.partition("=")
        code, value = code.strip(), value.strip()
        if not sep or not code or not value:
            raise PolicyInputError(
                f"{option} takes CODE=VALUE, e.g. {option} {example}, got {item!r}"
            )
        found[code] = value
    return found


def _section(base: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = base.get(key, {})
    if not isinstance(value, dict):
        raise PolicyInputError(
            f'"{key}" in the policy file must be an object, e.g. {POLICY_EXAMPLE}'
        )
    return dict(value)


def build_rules(
    base: Mapping[str, Any] | None,
    *,
    actions: Sequence[str] = (),
    thresholds: Sequence[str] = (),
    near_duplicate_radius: int | None = None,
) -> PolicyRules:
    """The PUT body: the file's rules (if any) with each option laid over them.

    Only the shape the options produce is checked here; which check codes exist and which
    values are allowed is the service's call (a 422 lists every problem).
    """
    rules: dict[str, Any] = dict(base or {})
    if actions:
        merged = _section(rules, "actions")
        for code, action in _assignments(actions, "--action", "blurry=flag").items():
            if action not in ACTIONS:
                raise PolicyInputError(
                    f"--action {code}={action}: the action must be one of {', '.join(ACTIONS)}"
                )
            merged[code] = action
        rules["actions"] = merged
    if thresholds:
        merged = _section(rules, "thresholds")
        for code, text in _assignments(thresholds, "--threshold", "blurry=0.3").items():
            try:
                limit = float(text)
            except ValueError:
                limit = math.nan
            if not math.isfinite(limit):
                raise PolicyInputError(f"--threshold {code}={text}: the threshold must be a number")
            merged[code] = limit
        rules["thresholds"] = merged
    if near_duplicate_radius is not None:
        rules["near_duplicate_radius"] = near_duplicate_radius
    return cast(PolicyRules, rules)


# --------------------------------------------------------------------------- rendering


def number(value: float | None) -> str:
    """A measured value for a table: whole numbers as such, others to 4 significant digits."""
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def _percent(part: int, whole: int) -> str:
    return f"{part} ({100 * part / whole:.1f}%)" if whole else str(part)


def _finding_rows(effect: str, findings: Sequence[Finding]) -> list[tuple[str, ...]]:
    return [
        (effect, f["code"], number(f["value"]), number(f["threshold"]), f["message"])
        for f in findings
    ]


def render_report(out: Output, report: QualityReport) -> None:
    """Verdict and duplicate info, then every finding, then the measured metrics."""
    fields: dict[str, Any] = {
        "status": report["status"],
        "media_type": report["media_type"],
        "dataset_id": report["dataset_id"],
    }
    if report.get("duplicate_of"):
        fields["duplicate_of"] = report["duplicate_of"]
        fields["duplicate_kind"] = report.get("duplicate_kind")
        fields["duplicate_distance"] = report.get("duplicate_distance")
    fields["policy_version"] = report["policy_version"]
    fields["checked_at"] = report["updated_at"]
    out.record(fields, title=f"Quality report of asset {report['asset_id']}")
    out.table(
        ("effect", "code", "value", "threshold", "message"),
        _finding_rows("reject", report["reasons"]) + _finding_rows("flag", report["flags"]),
        title="Findings",
        empty="none, every check passed",
    )
    out.table(
        ("metric", "value"),
        ((name, number(v)) for name, v in sorted(report["metrics"].items())),
        title="Metrics",
        empty="none measured",
    )


QUANTILES = ("min", "p05", "p50", "p95", "max")


def render_summary(out: Output, summary: QualitySummary) -> None:
    """Verdict counts, issues by how often they reject or flag, metric percentiles."""
    total = summary["assets"]
    out.table(
        ("assets", "cleaned", "rejected"),
        [(total, _percent(summary["cleaned"], total), _percent(summary["rejected"], total))],
        title=f"Quality of dataset {summary['dataset_slug']}",
    )
    rejections, flags = summary["rejections_by_reason"], summary["flags_by_reason"]
    codes = sorted(
        set(rejections) | set(flags), key=lambda c: (-rejections.get(c, 0) - flags.get(c, 0), c)
    )
    out.table(
        ("issue", "rejected", "flagged"),
        ((c, rejections.get(c, 0), flags.get(c, 0)) for c in codes),
        title="Issues",
        empty="none",
    )
    out.table(
        ("metric", *QUANTILES),
        (
            (name, *(number(dist.get(q)) for q in QUANTILES))
            for name, dist in sorted(summary["metric_distributions"].items())
        ),
        title="Metric distributions",
        empty="no metrics yet",
    )


def render_duplicates(out: Output, found: DuplicateGroups) -> None:
    """One row per copy; the original is named on the first row of its group."""
    rows: list[tuple[Any, ...]] = []
    copies = 0
    for group in found["groups"]:
        for i, copy in enumerate(group["copies"]):
            rows.append(
                (
                    group["original"] if i == 0 else "",
                    copy["asset_id"],
                    copy["kind"],
                    copy["distance"],
                )
            )
            copies += 1
    title = f"Duplicate groups of {found['dataset_slug']}"
    out.table(
        ("original (kept)", "copy", "kind", "distance"), rows, title=title, empty="no duplicates"
    )
    if rows:
        groups = len(found["groups"])
        out.line(
            f"{groups} group{'s' * (groups != 1)}, {copies} cop{'ies' if copies != 1 else 'y'}"
        )


def render_policy(out: Output, policy: Policy) -> None:
    """Every check with its action and, for measured checks, its threshold and default."""
    version = policy["version"]
    out.record(
        {
            "version": f"{version} (never changed: all defaults)" if version == 0 else version,
            "near_duplicate_radius": policy["near_duplicate_radius"],
        },
        title=f"Cleaning policy of dataset {policy['dataset_slug']}",
    )
    rows = []
    for code, check in sorted(policy["checks"].items()):
        threshold, default = check.get("threshold"), check.get("default_threshold")
        changed = threshold is not None and default is not None and threshold != default
        rows.append(
            (
                code,
                check["action"],
                check.get("metric"),
                check.get("fails_when"),
                number(threshold) + (" *" if changed else ""),
                number(default),
            )
        )
    out.table(
        ("check", "action", "metric", "fails when", "threshold", "default"),
        rows,
        title="Checks (* = threshold changed from the default)",
    )


def render_reevaluation(out: Output, slug: str, result: Reevaluation) -> None:
    """One line: the new version and how many verdicts changed."""
    out.line(
        f"policy of dataset {slug} is now version {result['policy_version']}:"
        f" re-judged {result['assets_checked']} assets,"
        f" {result['assets_changed']} changed verdict"
    )


# --------------------------------------------------------------------------- re-analysis

REANALYSIS_FINISHED = ("succeeded", "failed", "cancelled")


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    whole = max(round(seconds), 0)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def reanalysis_progress(job: Reanalysis) -> str:
    """One line of a job's progress, e.g. ``running: 120/500 (2 failed), 14.2 files/s, about
    27 s left``."""
    handled = job["done"] + job["failed"]
    line = f"{job['state']}: {handled}/{job['total']}"
    if job["failed"]:
        line += f" ({job['failed']} failed)"
    if job["rate_per_second"] is not None:
        line += f", {job['rate_per_second']:.1f} files/s"
    if job["eta_seconds"] is not None and job["state"] == "running":
        line += f", about {_duration(job['eta_seconds'])} left"
    return line


def render_reanalysis(out: Output, job: Reanalysis) -> None:
    """A job as a field/value table, then its listed failures."""
    fields = {
        "id": job["id"],
        "dataset": job["dataset_slug"],
        "state": job["state"],
        "progress": reanalysis_progress(job),
        "re-measured": job["done"],
        "failed": job["failed"],
        "verdicts changed": job["changed"] if job["rejudge"] else "(not re-judged)",
        "requested by": job["requested_by"],
        "created": job["created_at"],
        "started": job["started_at"] or "-",
        "finished": job["finished_at"] or "-",
    }
    if job["error"]:
        fields["error"] = job["error"]
    out.record(fields, title=f"Re-analysis {job['id']}")
    if job["failures"]:
        rows = [(f["asset_id"], f["reason"]) for f in job["failures"]]
        more = job["failed"] - len(rows)
        out.table(("asset", "reason"), rows, title="Failures")
        if more > 0:
            out.note(f"... and {more} more failures (only the first {len(rows)} are listed)")


def render_reanalyses(out: Output, slug: str, jobs: Sequence[Reanalysis]) -> None:
    """A dataset's jobs, newest first, one row each."""
    rows = [
        (
            j["id"],
            j["state"],
            f"{j['done'] + j['failed']}/{j['total']}",
            j["failed"],
            j["changed"] if j["rejudge"] else "-",
            j["requested_by"],
            j["created_at"],
            j["finished_at"] or "-",
        )
        for j in jobs
    ]
    out.table(
        ("id", "state", "handled", "failed", "changed", "by", "created", "finished"),
        rows,
        title=f"Re-analyses of dataset {slug}",
    )
