"""Builders of canonical shapes for the QC tests."""

from __future__ import annotations

from typing import Any


def box(cls: str, x: float, y: float, w: float, h: float, **extra: Any) -> dict[str, Any]:
    return {"class": cls, "type": "bbox", "bbox": {"x": x, "y": y, "width": w, "height": h}} | extra


def polygon(cls: str, *points: tuple[float, float]) -> dict[str, Any]:
    return {"class": cls, "type": "polygon", "points": [list(p) for p in points]}


def label(cls: str) -> dict[str, Any]:
    return {"class": cls, "type": "classification"}
