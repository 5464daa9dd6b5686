"""Consensus of N annotators on one asset: agreement figures and the label set a majority backs.

Every pair of annotators is matched (see :mod:`matching`). The pairwise same-class matches are
then joined into clusters, strongest IoU first, never putting two shapes of one annotator in one
cluster, so the result does not depend on the order annotators answered in. A cluster backed by
more than half of the annotators becomes a consensus shape.

The agreement score is a panoptic-quality figure pooled over annotator pairs: F1 of the matches
times their mean IoU, i.e. ``2 * sum(IoU) / (shapes of a + shapes of b)``. It is 1 only when
everyone drew the same objects with the same class at the same place. Image-level classes score
the F1 of the class sets; an asset with both takes the lower of the two, so good boxes cannot
hide a wrong image class.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.qc.domain.geometry import COMPARED_TYPES, Shape, box_of, iou_matrix, is_region
from services.qc.domain.matching import (
    DEFAULT_IOU_THRESHOLD,
    PairMatching,
    check_threshold,
    match_shapes,
)
from services.qc.domain.ratios import NO_MEAN, NO_RATIO, Mean, Ratio


@dataclass(frozen=True)
class ConsensusPolicy:
    """A job's consensus settings: when shapes are the same object, and when to auto-accept."""

    iou_threshold: float = DEFAULT_IOU_THRESHOLD
    min_agreement: float = 0.7

    def __post_init__(self) -> None:
        check_threshold(self.iou_threshold)
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError(f"min_agreement must be in [0, 1], got {self.min_agreement}")


@dataclass(frozen=True)
class PairAgreement:
    """How annotators ``a`` and ``b`` agree on the asset."""

    a: str
    b: str
    matching: PairMatching


@dataclass(frozen=True)
class ConsensusShape:
    """A shape of the consensus label set and the annotators whose shapes it was made from."""

    shape: dict[str, Any]
    support: tuple[str, ...]


@dataclass(frozen=True)
class AssetConsensus:
    """Everything consensus says about one asset; ``passed`` means it can be auto-accepted."""

    annotators: tuple[str, ...]
    pairs: tuple[PairAgreement, ...]
    iou: Mean
    f1: Ratio
    unmatched_shapes: int
    class_disagreements: int
    class_votes: dict[str, int]
    shapes: tuple[ConsensusShape, ...]
    left_out_shapes: int
    uncompared_shapes: int
    agreement: float | None
    passed: bool
    reasons: tuple[str, ...] = field(default=())

    @property
    def label_set(self) -> list[dict[str, Any]]:
        """The consensus shapes in canonical form, as they would be stored as the label."""
        return [s.shape for s in self.shapes]


def compute_consensus(
    replicas: Mapping[str, Sequence[Shape]], policy: ConsensusPolicy | None = None
) -> AssetConsensus:
    """Consensus over the answers present (annotator id -> shapes).

    With fewer than two answers there is nothing to agree with: the result never passes.
    Keypoint shapes are not compared (they have no IoU); an answer carrying them goes to review
    rather than losing them silently from the label set.
    """
    policy = policy or ConsensusPolicy()
    annotators = tuple(sorted(replicas))
    answers = [list(replicas[name]) for name in annotators]
    pairs = tuple(
        PairAgreement(
            annotators[i],
            annotators[j],
            match_shapes(answers[i], answers[j], iou_threshold=policy.iou_threshold),
        )
        for i, j in itertools.combinations(range(len(annotators)), 2)
    )
    majority = len(annotators) // 2 + 1
    clusters = _clusters(answers, pairs, annotators)
    region_shapes = [
        ConsensusShape(
            _merge([answers[k][i] for k, i in members]), tuple(annotators[k] for k, _ in members)
        )
        for members in clusters
        if len(members) >= majority
    ]
    votes, class_shapes = _classification(answers, annotators, majority)
    backed = sum(len(m) for m in clusters if len(m) >= majority)
    regions = sum(1 for answer in answers for s in answer if is_region(s))
    uncompared = sum(1 for a in answers for s in a if s.get("type") not in COMPARED_TYPES)

    iou = sum((p.matching.iou for p in pairs), NO_MEAN)
    f1 = sum((p.matching.f1 for p in pairs), NO_RATIO)
    agreement = _agreement(pairs, answers) if pairs else None
    reasons = []
    if agreement is None:
        reasons.append(f"{len(annotators)} answer(s): consensus needs at least 2")
    elif agreement < policy.min_agreement:
        reasons.append(f"agreement {agreement:.3f} is below the job's {policy.min_agreement}")
    if uncompared:
        reasons.append(f"{uncompared} keypoint shape(s) are not compared automatically")
    return AssetConsensus(
        annotators=annotators,
        pairs=pairs,
        iou=iou,
        f1=f1,
        unmatched_shapes=sum(
            len(p.matching.unmatched_a) + len(p.matching.unmatched_b) for p in pairs
        ),
        class_disagreements=sum(len(p.matching.class_disagreements) for p in pairs),
        class_votes=votes,
        shapes=tuple(region_shapes + class_shapes),
        left_out_shapes=regions - backed,
        uncompared_shapes=uncompared,
        agreement=agreement,
        passed=not reasons,
        reasons=tuple(reasons),
    )


def _clusters(
    answers: list[list[Shape]], pairs: tuple[PairAgreement, ...], annotators: tuple[str, ...]
) -> list[list[tuple[int, int]]]:
    """Groups of (annotator, shape index), at most one shape per annotator in a group."""
    position = {name: k for k, name in enumerate(annotators)}
    edges = sorted(
        (-m.iou, position[p.a], m.a, position[p.b], m.b) for p in pairs for m in p.matching.matches
    )
    parent: dict[tuple[int, int], tuple[int, int]] = {}
    members: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for k, answer in enumerate(answers):
        for i, shape in enumerate(answer):
            if is_region(shape):
                parent[(k, i)] = (k, i)
                members[(k, i)] = [(k, i)]

    def root(node: tuple[int, int]) -> tuple[int, int]:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for _, ka, ia, kb, ib in edges:
        ra, rb = root((ka, ia)), root((kb, ib))
        if ra == rb or {k for k, _ in members[ra]} & {k for k, _ in members[rb]}:
            continue
        parent[rb] = ra
        members[ra] = sorted(members[ra] + members.pop(rb))
    return [members[node] for node in sorted(members)]


def _merge(shapes: list[Shape]) -> dict[str, Any]:
    """One shape from a cluster: boxes averaged corner by corner (weighted by ``score`` where
    shapes carry one), otherwise the member overlapping the others most (a polygon has no
    meaningful mean)."""
    first = shapes[0]
    merged: dict[str, Any] = {"class": first["class"], "type": first["type"]}
    if all(s["type"] == "bbox" for s in shapes):
        weights = [float(s.get("score", 1.0)) for s in shapes]
        if sum(weights) <= 0:
            weights = [1.0] * len(shapes)
        corners = [box_of(s) for s in shapes]
        total = sum(weights)
        x1 = sum(w * b.x for w, b in zip(weights, corners, strict=True)) / total
        y1 = sum(w * b.y for w, b in zip(weights, corners, strict=True)) / total
        x2 = sum(w * (b.x + b.width) for w, b in zip(weights, corners, strict=True)) / total
        y2 = sum(w * (b.y + b.height) for w, b in zip(weights, corners, strict=True)) / total
        merged["bbox"] = {"x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1}
    else:
        medoid = shapes[int(iou_matrix(shapes, shapes).sum(axis=1).argmax())]
        merged["type"] = medoid["type"]
        if medoid["type"] == "polygon":
            merged["points"] = [[float(x), float(y)] for x, y in medoid["points"]]
        else:
            merged["bbox"] = dict(medoid["bbox"])
    merged["attributes"] = _vote_attributes(shapes)
    return merged


def _vote_attributes(shapes: Sequence[Shape]) -> dict[str, Any]:
    """Each attribute's most common value among the shapes (ties: the earliest annotator's)."""
    voted: dict[str, Any] = {}
    keys = sorted({k for s in shapes for k in s.get("attributes") or {}})
    for key in keys:
        values = [s["attributes"][key] for s in shapes if key in (s.get("attributes") or {})]
        counts = Counter(values)
        best = max(counts.values())
        voted[key] = next(v for v in values if counts[v] == best)
    return voted


def _classification(
    answers: list[list[Shape]], annotators: tuple[str, ...], majority: int
) -> tuple[dict[str, int], list[ConsensusShape]]:
    """Image-level classes: how many annotators gave each, and those a majority gave."""
    given: dict[str, list[tuple[str, Shape]]] = {}
    for name, answer in zip(annotators, answers, strict=True):
        for cls, shape in {
            s["class"]: s for s in answer if s.get("type") == "classification"
        }.items():
            given.setdefault(cls, []).append((name, shape))
    votes = {cls: len(by) for cls, by in sorted(given.items())}
    shapes = [
        ConsensusShape(
            {
                "class": cls,
                "type": "classification",
                "attributes": _vote_attributes([s for _, s in by]),
            },
            tuple(name for name, _ in by),
        )
        for cls, by in sorted(given.items())
        if len(by) >= majority
    ]
    return votes, shapes


def _agreement(pairs: tuple[PairAgreement, ...], answers: list[list[Shape]]) -> float:
    parts: list[float] = []
    regions = sum(p.matching.regions_a + p.matching.regions_b for p in pairs)
    if regions:
        parts.append(2 * sum(p.matching.iou.total for p in pairs) / regions)
    classes = [{s["class"] for s in a if s.get("type") == "classification"} for a in answers]
    if any(classes):
        shared = given = 0
        for i, j in itertools.combinations(range(len(classes)), 2):
            shared += 2 * len(classes[i] & classes[j])
            given += len(classes[i]) + len(classes[j])
        parts.append(shared / given)
    # Everyone answering "nothing here" is full agreement.
    return min(parts) if parts else 1.0


def rater_names(answers: Sequence[tuple[str, int]]) -> list[str]:
    """Names of one asset's raters from their (annotator id, replica): two vendors'
    annotators may share an id, so a shared id is told apart by its replica
    (``worker-1#0``, ``worker-1#1``)."""
    counts = Counter(annotator for annotator, _ in answers)
    return [a if counts[a] == 1 else f"{a}#{replica}" for a, replica in answers]
