"""The cleaning page's figures, shaped from rows the repository counted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any


def thumbnail_url(asset_id: object) -> str:
    """The dashboard path the page fetches an asset's thumbnail from."""
    return f"/v1/assets/{asset_id}/thumbnail"


def reason_series(
    rows: Iterable[tuple[str, str, datetime, int]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Totals per (kind, code), most frequent first, and a time series per (kind, code),
    from ``(kind, code, bucket start, count)`` rows."""
    points: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for kind, code, t, count in rows:
        points.setdefault((kind, code), []).append({"t": t, "count": count})
    totals = {key: sum(p["count"] for p in series) for key, series in points.items()}
    order = sorted(totals, key=lambda key: (key[0], -totals[key], key[1]))
    return (
        [{"kind": k, "code": c, "count": totals[(k, c)]} for k, c in order],
        [
            {"kind": k, "code": c, "points": sorted(points[(k, c)], key=lambda p: p["t"])}
            for k, c in order
        ],
    )


def histogram(
    metric: str, count: int, low: float, high: float, bins: int, counted: Mapping[int, int]
) -> dict[str, Any]:
    """A metric's histogram: ``bins`` equal-width bins from ``low`` to ``high`` (the last one
    closed), with the counts of the 1-based bin numbers in ``counted`` (empty bins are 0).

    When every value is the same, there is one bin holding them all."""
    if high <= low:
        return {
            "metric": metric,
            "count": count,
            "min": low,
            "max": high,
            "bins": [{"low": low, "high": high, "count": count}],
        }
    width = (high - low) / bins
    return {
        "metric": metric,
        "count": count,
        "min": low,
        "max": high,
        "bins": [
            {
                "low": low + i * width,
                "high": high if i == bins - 1 else low + (i + 1) * width,
                "count": counted.get(i + 1, 0),
            }
            for i in range(bins)
        ],
    }


def duplicate_groups(
    groups: Sequence[Mapping[str, Any]], filenames: Mapping[str, str | None]
) -> list[dict[str, Any]]:
    """Clean's duplicate groups (``{original, copies: [{asset_id, kind, distance}]}``) with
    file names and thumbnail paths; copies nearest first."""
    shaped = []
    for group in groups:
        original = str(group["original"])
        copies = [
            {
                "asset_id": str(copy["asset_id"]),
                "filename": filenames.get(str(copy["asset_id"])),
                "code": copy.get("kind") or copy.get("code"),
                "distance": copy.get("distance"),
                "thumbnail_url": thumbnail_url(copy["asset_id"]),
            }
            for copy in group.get("copies", [])
        ]
        copies.sort(
            key=lambda c: (c["distance"] if c["distance"] is not None else 0, c["asset_id"])
        )
        shaped.append(
            {
                "original": {
                    "asset_id": original,
                    "filename": filenames.get(original),
                    "thumbnail_url": thumbnail_url(original),
                },
                "copies": copies,
            }
        )
    return shaped
