"""Database plumbing: the async engine, sessions and per-service Alembic migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.settings import ServiceSettings


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    """The service's async engine (asyncpg), pooled.

    No pre-ping on checkout (it costs a round trip per transaction); a connection the server
    dropped fails its statement, and consumers retry transient database errors.
    """
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=10,
        pool_recycle=1800,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (handlers return them to callers)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database cannot answer a trivial query."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


# SQLSTATEs of a server that is starting, stopping, crashed or full: the statement is fine,
# the database is not there for it (class 08 connection exception, 57P0x operator
# intervention such as "the database system is shutting down", 53300 too many connections).
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P", "53300")


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database is out of reach, not that the statement was wrong.

    The asyncpg driver reports a server that is shutting down or starting up
    (``CannotConnectNowError``) as a generic DBAPI error, so its SQLSTATE is looked at along
    the exception's causes, as well as refused, reset or timed-out connections.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OperationalError | InterfaceError | ConnectionError | TimeoutError):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        sqlstate = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


def alembic_config(migrations_dir: Path, database_url: str, schema: str) -> Config:
    """An Alembic config for one service's migrations folder, built without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["schema"] = schema
    return config


async def migrate(migrations_dir: Path, database_url: str, schema: str) -> None:
    """Bring the service's schema to the newest revision (safe with several copies starting)."""
    config = alembic_config(migrations_dir, database_url, schema)
    # Alembic's async env runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(command.upgrade, config, "head")
