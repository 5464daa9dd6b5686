"""Structural findings on one annotation, made as it arrives.

The dispatcher refuses shapes that break the ontology; these checks look at what is valid but
suspicious, and only report: a finding goes with the asset to review, it refuses nothing.
Overlapping groups are reported once per group (three copies of one box make one finding
naming all three), so a reviewer reads one line per problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from services.qc.domain.geometry import Shape, iou_matrix, is_region

DUPLICATE_IOU = 0.95
OVERLAP_IOU = 0.9


@dataclass(frozen=True)
class Finding:
    """A problem in an annotation; ``shapes`` are indexes into its shape list."""

    code: str
    message: str
    shapes: tuple[int, ...]


def check_annotation(
    shapes: Sequence[Shape],
    *,
    forbidden_together: Iterable[tuple[str, str]] = (),
    duplicate_iou: float = DUPLICATE_IOU,
    overlap_iou: float = OVERLAP_IOU,
) -> list[Finding]:
    """Findings on ``shapes``: ``duplicate_shape`` (same class, IoU >= ``duplicate_iou``),
    ``overlapping_shapes`` (different classes, IoU >= ``overlap_iou``) and
    ``forbidden_classes`` (both classes of a pair the job's policy forbids in one image)."""
    regions = [i for i, s in enumerate(shapes) if is_region(s)]
    iou = iou_matrix([shapes[i] for i in regions], [shapes[i] for i in regions])
    classes = [shapes[i]["class"] for i in regions]
    same = np.array([[a == b for b in classes] for a in classes], dtype=bool).reshape(iou.shape)
    findings = [
        Finding(
            "duplicate_shape",
            f"{len(group)} '{shapes[group[0]]['class']}' shapes cover the same object",
            group,
        )
        for group in _groups(regions, same & (iou >= duplicate_iou))
    ]
    findings += [
        Finding(
            "overlapping_shapes",
            "shapes of classes "
            + ", ".join(sorted({f"'{shapes[i]['class']}'" for i in group}))
            + f" overlap almost entirely (IoU >= {overlap_iou})",
            group,
        )
        for group in _groups(regions, ~same & (iou >= overlap_iou))
    ]
    present: dict[str, list[int]] = {}
    for i, shape in enumerate(shapes):
        present.setdefault(shape["class"], []).append(i)
    for a, b in sorted({tuple(sorted(pair)) for pair in forbidden_together}):
        if a in present and b in present:
            findings.append(
                Finding(
                    "forbidden_classes",
                    f"'{a}' and '{b}' may not appear together in one image",
                    tuple(sorted(present[a] + present[b])),
                )
            )
    return findings


def _groups(indexes: list[int], linked: np.ndarray) -> list[tuple[int, ...]]:
    """Connected groups (of two or more) of the graph whose adjacency is ``linked``."""
    seen: set[int] = set()
    groups = []
    for start in range(len(indexes)):
        if start in seen:
            continue
        group, frontier = {start}, [start]
        while frontier:
            node = frontier.pop()
            for other in np.nonzero(linked[node])[0].tolist():
                if other != node and other not in group:
                    group.add(other)
                    frontier.append(other)
        seen |= group
        if len(group) > 1:
            groups.append(tuple(indexes[i] for i in sorted(group)))
    return groups
