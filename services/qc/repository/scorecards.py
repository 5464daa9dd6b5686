"""Vendor scorecard counters (``vendor_hours``): added to as facts arrive, summed over windows."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Numeric,
    Table,
    Uuid,
    cast,
    distinct,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.qc.domain.scorecards import BUCKETS, Tally
from services.qc.models import Base, JudgedAnnotation, QcJob

_SUMS = {"lead_time_sum", "gold_iou_sum", "agreement_sum"}
_COUNTERS = [f.name for f in fields(Tally) if f.name != "lead_time_buckets" and f.name not in _SUMS]
_COUNT_ARRAY = ARRAY(BigInteger())

vendor_hours = Table(
    "vendor_hours",
    Base.metadata,
    Column("vendor_id", Uuid(), primary_key=True),
    Column("job_id", Uuid(), primary_key=True),
    Column("hour", DateTime(timezone=True), primary_key=True),
    *(Column(name, BigInteger(), nullable=False) for name in _COUNTERS),
    *(Column(name, Numeric(38, 9), nullable=False) for name in sorted(_SUMS)),
    Column("lead_time_buckets", _COUNT_ARRAY, nullable=False),
)

HourKey = tuple[uuid.UUID, uuid.UUID, datetime]
# Summed counters of a group of hours, and how many of those hours had an answer.
_Summed = tuple[Tally, int]


async def add_tallies(session: AsyncSession, tallies: Mapping[HourKey, Tally]) -> None:
    """Add each tally to the counters of its (vendor, job, hour), creating rows as needed.

    Rows are written in key order, so two transactions adding to the same hours take the row
    locks in the same order and cannot deadlock.
    """
    if not tallies:
        return
    rows = [
        {
            "vendor_id": vendor_id,
            "job_id": job_id,
            "hour": hour,
            **{f.name: getattr(tally, f.name) for f in fields(Tally)},
        }
        for (vendor_id, job_id, hour), tally in sorted(tallies.items(), key=lambda kv: kv[0])
    ]
    statement = insert(vendor_hours).values(rows)
    table, new = vendor_hours.c, statement.excluded
    additions: dict[str, Any] = {
        name: table[name] + new[name] for name in [*_COUNTERS, *sorted(_SUMS)]
    }
    additions["lead_time_buckets"] = func.qc.add_counts(
        table.lead_time_buckets, new.lead_time_buckets, type_=_COUNT_ARRAY
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.vendor_id, table.job_id, table.hour], set_=additions
        )
    )


async def vendors_of_annotations(
    session: AsyncSession, annotation_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """The vendor of each annotation QC knows among ``annotation_ids`` (one entry each)."""
    if not annotation_ids:
        return []
    query = select(JudgedAnnotation.vendor_id).where(JudgedAnnotation.id.in_(annotation_ids))
    return list((await session.execute(query)).scalars())


async def vendors_of_tasks(session: AsyncSession, task_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The vendor of the live answer of each task among ``task_ids`` that has one."""
    if not task_ids:
        return []
    query = select(JudgedAnnotation.vendor_id).where(
        JudgedAnnotation.task_id.in_(task_ids), JudgedAnnotation.live
    )
    return list((await session.execute(query)).scalars())


@dataclass(frozen=True)
class Window:
    """Which counters a scorecard adds up: hours in [since, until), a job, some datasets."""

    job_id: uuid.UUID | None = None
    vendor_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    datasets: Sequence[uuid.UUID] | None = None


async def totals_by_vendor(session: AsyncSession, window: Window) -> dict[uuid.UUID, _Summed]:
    """Summed counters and active hours of each vendor with counters in the window."""
    key = vendor_hours.c.vendor_id
    return {row[0]: _summed(row) for row in await _sum_by(session, key, window)}


async def totals_by_day(session: AsyncSession, window: Window) -> dict[date, _Summed]:
    """Summed counters and active hours of each UTC day with counters in the window."""
    key = cast(func.date_trunc("day", vendor_hours.c.hour, "UTC"), DateTime(timezone=True))
    rows = await _sum_by(session, key, window)
    return {row[0].date(): _summed(row) for row in rows}


async def has_counters(session: AsyncSession, vendor_id: uuid.UUID) -> bool:
    """Whether any fact about the vendor was counted, in any job and hour."""
    query = select(vendor_hours.c.vendor_id).where(vendor_hours.c.vendor_id == vendor_id)
    return (await session.execute(query.limit(1))).first() is not None


async def _sum_by(session: AsyncSession, key: ColumnElement[Any], window: Window) -> Sequence[Any]:
    c = vendor_hours.c
    active = func.count(distinct(c.hour)).filter(c.submitted > 0)
    query = (
        select(
            key,
            *(func.sum(c[name]) for name in _COUNTERS),
            *(func.sum(c[name]) for name in sorted(_SUMS)),
            func.qc.sum_counts(c.lead_time_buckets, type_=_COUNT_ARRAY),
            active,
        )
        .group_by(key)
        .order_by(key)
    )
    if window.job_id is not None:
        query = query.where(c.job_id == window.job_id)
    if window.vendor_id is not None:
        query = query.where(c.vendor_id == window.vendor_id)
    if window.since is not None:
        query = query.where(c.hour >= func.date_trunc("hour", window.since, "UTC"))
    if window.until is not None:
        query = query.where(c.hour < window.until)
    if window.datasets is not None:
        visible = select(QcJob.id).where(QcJob.dataset_id.in_(window.datasets))
        query = query.where(c.job_id.in_(visible))
    return (await session.execute(query)).all()


def _summed(row: Sequence[Any]) -> _Summed:
    counters = row[1 : 1 + len(_COUNTERS)]
    sums = row[1 + len(_COUNTERS) : 1 + len(_COUNTERS) + len(_SUMS)]
    buckets, active = row[-2], row[-1]
    values: dict[str, Any] = {name: int(v) for name, v in zip(_COUNTERS, counters, strict=True)}
    values |= {name: Decimal(v) for name, v in zip(sorted(_SUMS), sums, strict=True)}
    values["lead_time_buckets"] = tuple(int(n) for n in buckets) if buckets else (0,) * BUCKETS
    return Tally(**values), int(active)
