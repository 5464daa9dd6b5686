"""What clean found, for readers: an asset's report, a dataset's summary and duplicates."""

from __future__ import annotations

import uuid

from services.clean import repository as repo
from services.clean.context import Clean
from services.clean.schemas import DuplicateGroup, DuplicateGroups, QualityReportOut, QualitySummary
from services.clean.use_cases.datasets import dataset_of
from shared.auth import Principal
from shared.errors import ApiError

# The figures of each metric's distribution in a summary, and where they sit (0 to 1).
QUANTILES = (("min", 0.0), ("p05", 0.05), ("p50", 0.5), ("p95", 0.95), ("max", 1.0))


async def report(clean: Clean, principal: Principal, asset_id: uuid.UUID) -> QualityReportOut:
    """An asset's quality report (as missing for a dataset the key may not touch)."""
    async with clean.units.read() as session:
        stored = await repo.report(session, asset_id)
    if stored is None or not principal.sees(stored.dataset_id):
        raise ApiError(404, "report_not_found", f"no quality report for asset {asset_id} yet")
    return QualityReportOut.from_report(stored)


async def summary(clean: Clean, principal: Principal, slug: str) -> QualitySummary:
    """Counts per outcome and issue, and metric distributions, for a dataset."""
    async with clean.units.read() as session:
        ident = await dataset_of(session, slug, principal)
        statuses = await repo.status_counts(session, ident)
        rejections = await repo.finding_counts(session, ident, "reasons")
        flags = await repo.finding_counts(session, ident, "flags")
        values = await repo.metric_percentiles(session, ident, [q for _, q in QUANTILES])
    return QualitySummary(
        dataset_slug=slug,
        assets=sum(statuses.values()),
        cleaned=statuses.get("cleaned", 0),
        rejected=statuses.get("rejected", 0),
        rejections_by_reason=rejections,
        flags_by_reason=flags,
        metric_distributions={
            metric: {name: value for (name, _), value in zip(QUANTILES, found, strict=True)}
            for metric, found in values.items()
        },
    )


async def duplicates(clean: Clean, principal: Principal, slug: str) -> DuplicateGroups:
    """Duplicate groups: each original with the later copies of it."""
    async with clean.units.read() as session:
        ident = await dataset_of(session, slug, principal)
        pairs = await repo.duplicate_pairs(session, ident)
    groups: dict[str, DuplicateGroup] = {}
    for original, copy, code, distance, overlap in pairs:
        group = groups.setdefault(str(original), DuplicateGroup(original=str(original)))
        listed = {"asset_id": str(copy), "kind": code, "distance": distance}
        if overlap is not None:  # a duplicate video: where it shows the original's footage
            listed["overlap"] = overlap
        group.copies.append(listed)
    return DuplicateGroups(dataset_slug=slug, groups=list(groups.values()))
