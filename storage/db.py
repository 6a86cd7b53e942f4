"""Engines, sessions and migrations for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine tuned for its backend."""
    connect_args: dict[str, Any] = {}
    options: dict[str, Any] = {"echo": echo}
    if url.startswith("sqlite"):
        # One connection: SQLite writes one at a time anyway, and queueing for the pool is fair and
        # cheap where several connections would spin on the database lock.
        connect_args["timeout"] = 30
        options.update(pool_size=1, max_overflow=0, pool_timeout=60)
    else:
        # No pre-ping (a round trip on every checkout); stale connections are recycled instead, and
        # a dropped one fails one request, which WeChat redelivers.
        options.update(pool_size=10, max_overflow=10, pool_recycle=1800)
    engine = create_async_engine(url, connect_args=connect_args, **options)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers work while a writer commits; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def insert_ignoring_conflicts(session: AsyncSession, table: Any, values: dict[str, Any]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for the session's backend (both speak it)."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).values(values).on_conflict_do_nothing()


def upsert(
    session: AsyncSession, table: Any, values: dict[str, Any], key: list[str], update: dict[str, Any]
) -> Any:
    """INSERT … ON CONFLICT (key) DO UPDATE SET update — one round trip for "create or touch"."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(table).values(values)
    return statement.on_conflict_do_update(
        index_elements=key, set_={k: getattr(statement.excluded, k) for k in update}
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply Alembic migrations over this engine's connection."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        has_table = await connection.run_sync(lambda sync: inspect(sync).has_table("alembic_version"))
        if not has_table:
            return None
        result = await connection.execute(text("SELECT version_num FROM alembic_version"))
        return result.scalar_one_or_none()


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
