"""Emptying the projections for a rebuild: every projection table and the inbox, and the
change counter back to zero."""

from __future__ import annotations

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.dashboard.models import PROJECTIONS, SCHEMA, inbox, progress


async def empty_projections(session: AsyncSession) -> None:
    """Empty the projections and the inbox (in the caller's transaction: TRUNCATE is
    transactional in Postgres, so a failed rebuild leaves everything as it was)."""
    names = ", ".join(f'"{SCHEMA}"."{table.name}"' for table in (*PROJECTIONS, inbox))
    await session.execute(text(f"TRUNCATE {names}"))
    await session.execute(
        update(progress).where(progress.c.id == 1).values(events_applied=0, changed_at=func.now())
    )


async def projected_rows(session: AsyncSession) -> dict[str, int]:
    """Rows per projection table and in the inbox (what a rebuild is about to throw away)."""
    counts: dict[str, int] = {}
    for table in (*PROJECTIONS, inbox):
        query = select(func.count()).select_from(table)
        counts[table.name] = int((await session.execute(query)).scalar_one())
    return counts
