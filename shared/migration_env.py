"""The body of every service's Alembic ``env.py``: one schema per service, async engine.

A session-level advisory lock makes concurrent starts of several copies of a service run
the migrations once, one after the other.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


def _run(connection: Connection, context: Any, schema: str) -> None:
    context.configure(
        connection=connection,
        version_table_schema=schema,
        include_schemas=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(context: Any) -> None:
    config = context.config
    schema: str = config.attributes["schema"]
    engine = create_async_engine(config.get_main_option("sqlalchemy.url"), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            lock = {"key": f"conveyor-migrate:{schema}"}
            await conn.execute(text("SELECT pg_advisory_lock(hashtext(:key))"), lock)
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.commit()
            await conn.run_sync(_run, context, schema)
            await conn.commit()
            await conn.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), lock)
            await conn.commit()
    finally:
        await engine.dispose()


def run_migrations(context: Any) -> None:
    """Run the pending migrations of the service whose ``env.py`` calls this."""
    if context.is_offline_mode():
        raise RuntimeError("Conveyor migrations run online only")
    asyncio.run(_run_online(context))
