"""Areas and overlaps (IoU) of canonical shapes.

Boxes are compared with plain arithmetic (vectorised for whole annotations): consensus runs on
every submitted annotation and boxes are most of what is drawn. Polygons go through shapely,
because an intersection of concave polygons is easy to get subtly wrong by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, TypeAlias

import numpy as np
import shapely
from numpy.typing import NDArray

Shape: TypeAlias = Mapping[str, Any]
"""A canonical shape as stored and sent in events: ``{"class", "type", ...}``, pixels."""

REGION_TYPES = frozenset({"bbox", "polygon"})
# What QC compares between answers; keypoints have no IoU and are left to review.
COMPARED_TYPES = REGION_TYPES | {"classification"}


class Box(NamedTuple):
    """An axis-aligned box: top-left corner, width and height in pixels."""

    x: float
    y: float
    width: float
    height: float

    @property
    def area(self) -> float:
        return self.width * self.height


def is_region(shape: Shape) -> bool:
    """Whether the shape covers an area (boxes and polygons): only those have an IoU."""
    return shape.get("type") in REGION_TYPES


def box_of(shape: Shape) -> Box:
    """The shape's box, or the bounding box of its polygon."""
    if shape["type"] == "bbox":
        b = shape["bbox"]
        return Box(float(b["x"]), float(b["y"]), float(b["width"]), float(b["height"]))
    xs = [float(p[0]) for p in shape["points"]]
    ys = [float(p[1]) for p in shape["points"]]
    return Box(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def box_corners(box: Box) -> list[list[float]]:
    """The box as a polygon (clockwise in image coordinates, from the top-left corner)."""
    x2, y2 = box.x + box.width, box.y + box.height
    return [[box.x, box.y], [x2, box.y], [x2, y2], [box.x, y2]]


def polygon_area(points: Sequence[Sequence[float]]) -> float:
    """Area of a simple polygon (shoelace formula); the outline need not be closed."""
    total = 0.0
    for i, (x1, y1) in enumerate(points):
        x2, y2 = points[(i + 1) % len(points)]
        total += x1 * y2 - x2 * y1
    return abs(total) / 2.0


def shape_area(shape: Shape) -> float:
    """Area in square pixels of a box or polygon; 0 for shapes without an area."""
    if shape.get("type") == "bbox":
        return box_of(shape).area
    if shape.get("type") == "polygon":
        return polygon_area(shape["points"])
    return 0.0


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when both are empty)."""
    w = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    h = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def _boxes_array(shapes: Sequence[Shape]) -> NDArray[np.float64]:
    """Rows of (x1, y1, x2, y2)."""
    rows = np.array([box_of(s) for s in shapes], dtype=np.float64).reshape(-1, 4)
    rows[:, 2] += rows[:, 0]
    rows[:, 3] += rows[:, 1]
    return rows


def _box_iou_matrix(a: Sequence[Shape], b: Sequence[Shape]) -> NDArray[np.float64]:
    ba, bb = _boxes_array(a), _boxes_array(b)
    w = np.minimum(ba[:, None, 2], bb[None, :, 2]) - np.maximum(ba[:, None, 0], bb[None, :, 0])
    h = np.minimum(ba[:, None, 3], bb[None, :, 3]) - np.maximum(ba[:, None, 1], bb[None, :, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    area_a = (ba[:, 2] - ba[:, 0]) * (ba[:, 3] - ba[:, 1])
    area_b = (bb[:, 2] - bb[:, 0]) * (bb[:, 3] - bb[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    iou: NDArray[np.float64] = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou


def region_geometry(shape: Shape) -> Any:
    """The shape as a shapely geometry; a self-touching outline is repaired rather than refused.

    The dispatcher only stores simple polygons, but QC must not crash on an older or foreign
    annotation, and ``make_valid`` keeps the area a human would see.
    """
    if shape["type"] == "bbox":
        b = box_of(shape)
        return shapely.box(b.x, b.y, b.x + b.width, b.y + b.height)
    polygon = shapely.Polygon([(float(x), float(y)) for x, y in shape["points"]])
    return polygon if polygon.is_valid else shapely.make_valid(polygon)


def shape_iou(a: Shape, b: Shape) -> float:
    """IoU of two region shapes (boxes, polygons, or one of each)."""
    if a["type"] == "bbox" and b["type"] == "bbox":
        return box_iou(box_of(a), box_of(b))
    return float(iou_matrix([a], [b])[0, 0])


def iou_matrix(a: Sequence[Shape], b: Sequence[Shape]) -> NDArray[np.float64]:
    """IoU of every region shape of ``a`` (rows) with every one of ``b`` (columns)."""
    if all(s["type"] == "bbox" for s in a) and all(s["type"] == "bbox" for s in b):
        return _box_iou_matrix(a, b)
    # Polygons: only pairs whose bounding boxes meet need the exact (slower) intersection.
    out = _box_iou_matrix(a, b)
    geoms_a = [region_geometry(s) for s in a]
    geoms_b = [region_geometry(s) for s in b]
    for i, j in zip(*np.nonzero(out), strict=True):
        ga, gb = geoms_a[i], geoms_b[j]
        inter = float(shapely.area(shapely.intersection(ga, gb)))
        union = float(ga.area) + float(gb.area) - inter
        out[i, j] = inter / union if union > 0 else 0.0
    return out
