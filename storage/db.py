"""Engines, sessions and migrations for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import functools
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


# The statements below are built once per backend and reused with parameters: building a statement
# object costs more than running it on the hot path (a report runs several).


def insert_ignoring_conflicts(session: AsyncSession, table: Any, *returning: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING [RETURNING …] for the session's backend; execute with the values."""
    return _insert_ignoring(session.get_bind().dialect.name, table, returning)


def _core(table: Any, returning: tuple[Any, ...]) -> tuple[Any, list[Any]]:
    """The plain table and columns of a model: a Core statement keeps `rowcount` and skips the ORM."""
    core = getattr(table, "__table__", table)
    return core, [core.c[getattr(column, "key", column)] for column in returning]


@functools.cache
def _insert_ignoring(dialect: str, table: Any, returning: tuple[Any, ...]) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    core, columns = _core(table, returning)
    statement = module.insert(core).on_conflict_do_nothing()
    return statement.returning(*columns) if columns else statement


def upsert(
    session: AsyncSession, table: Any, key: tuple[str, ...], update: tuple[str, ...], *returning: Any
) -> Any:
    """INSERT … ON CONFLICT (key) DO UPDATE SET the `update` columns [RETURNING …] — one round trip for
    "create or touch"; execute with the values."""
    return _upsert(session.get_bind().dialect.name, table, key, update, returning)


@functools.cache
def _upsert(
    dialect: str, table: Any, key: tuple[str, ...], update: tuple[str, ...], returning: tuple[Any, ...]
) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    core, columns = _core(table, returning)
    statement = module.insert(core)
    statement = statement.on_conflict_do_update(
        index_elements=list(key), set_={k: getattr(statement.excluded, k) for k in update}
    )
    return statement.returning(*columns) if columns else statement


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def single_statement_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for work that is one statement at a time (store a message, claim or settle an outbox row).

    On PostgreSQL they run in autocommit over the same pool: one round trip per statement instead of
    BEGIN, statement, COMMIT. Each statement must be atomic on its own. SQLite keeps its plain sessions:
    its one connection serialises writers anyway, and switching its isolation level costs a thread hop.
    """
    if engine.dialect.name != "postgresql":
        return session_factory(engine)
    return session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))


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
