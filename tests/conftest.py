"""Shared fixtures: the two storage backends every storage and end-to-end test runs on.

`embedded` is SQLite (aiosqlite) + in-process state, what a new user gets with no servers.
`server` is PostgreSQL + Redis at their default local ports (override with GRIDBOT_TEST_DATABASE_URL
and GRIDBOT_TEST_REDIS_URL). Without those servers the server variant is skipped with the reason;
under CI (CI=true) an unreachable server is a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import create_app
from bot.config import Settings, StorageSettings, demo_settings
from storage.db import create_engine, upgrade
from storage.models import Base
from storage.state import MemoryState, RedisState, StateStore
from tests.fake_helpers import APP_ID, APP_SECRET, Clock, FakeServer, start_fake
from tests.wechat_sim import WeChatPlatform

PG_URL = os.environ.get("GRIDBOT_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GRIDBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ["embedded", "server"]


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=1):
            return True
    except OSError:
        return False


def require_servers() -> None:
    """Skip (or, under CI, fail) when PostgreSQL or Redis cannot be reached."""
    missing = [name for name, url in (("PostgreSQL", PG_URL), ("Redis", REDIS_URL)) if not _reachable(url)]
    if not missing:
        return
    reason = f"{' and '.join(missing)} not reachable at the default local port"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: under CI the server backend must run, not be skipped", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend name; the server variant checks that PostgreSQL and Redis answer."""
    if request.param == "server":
        require_servers()
    return str(request.param)


@pytest.fixture
def redis_url() -> str:
    require_servers()
    return REDIS_URL


# --- databases ---------------------------------------------------------------------------------


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OWN_DATA = Path(__file__).resolve().parent / "data"


def shared_data(name: str) -> Path:
    """A file of ../shared/data: skipped with the reason when absent, but under CI (CI=true) a failure."""
    path = SHARED_DATA / name
    if path.is_file():
        return path
    reason = f"shared data {name} not found in {SHARED_DATA}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: under CI the shared data must be present", pytrace=False)
    pytest.skip(reason)


DEMO_ORG = Path(__file__).resolve().parents[1] / "examples" / "org.demo.toml"


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test run's own, migrated once and dropped at the end."""
    require_servers()
    name = f"gridbot_test_{uuid.uuid4().hex[:10]}"
    admin = _plain_dsn(PG_URL)

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        engine = create_engine(url)
        await upgrade(engine)
        await engine.dispose()

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    asyncio.run(create())
    yield url
    asyncio.run(drop())


async def truncate_all(engine: AsyncEngine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty, migrated database for this test (SQLite file, or the run's PostgreSQL database emptied)."""
    if backend == "embedded":
        return f"sqlite+aiosqlite:///{tmp_path / 'gridbot.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    if database_url.startswith("sqlite"):
        await upgrade(engine)
    else:
        await truncate_all(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def state(backend: str) -> AsyncIterator[StateStore]:
    """The state store of the backend: in-process, or Redis under a prefix of this test's own."""
    if backend == "embedded":
        yield MemoryState()
        return
    prefix = f"gridbot-test-{uuid.uuid4().hex}:"
    store = RedisState.from_url(REDIS_URL, prefix=prefix)
    yield store
    keys = [key async for key in store.client.scan_iter(match=f"{prefix}*")]
    if keys:
        await store.client.delete(*keys)
    await store.close()


@pytest.fixture
async def fake_api(aiohttp_server: Any) -> FakeServer:
    """A local fake of the WeChat HTTP API on loopback (`.fake` holds what it received)."""
    return await start_fake(aiohttp_server)


@pytest.fixture
def settings(database_url: str, engine: AsyncEngine, fake_api: FakeServer, tmp_path: Path) -> Settings:
    """Plaintext mode, token gridbot-demo, the demo org, this test's database and the fake WeChat API."""
    base = demo_settings()
    wechat = replace(base.wechat, app_id=APP_ID, app_secret=APP_SECRET, api_base=fake_api.api_base)
    return replace(
        base,
        demo=False,
        wechat=wechat,
        storage=StorageSettings(database_url=database_url, media_dir=str(tmp_path / "media")),
        org=replace(base.org, file=str(DEMO_ORG)),
    )


# --- the running app ----------------------------------------------------------------------------

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

Start = Callable[..., Awaitable[tuple[Any, WeChatPlatform]]]


@pytest.fixture
def start(settings: Settings, state: StateStore, aiohttp_client: Any) -> Start:
    """Start the app (again, to play a restart) and return its client and a WeChat platform for it."""

    async def go(
        mode: str = "plain",
        *,
        clock: Clock | None = None,
        fresh_state: bool = False,
        configure: Callable[[Settings], Settings] | None = None,
    ) -> tuple[Any, WeChatPlatform]:
        clock = clock or Clock(time.time())
        base = configure(settings) if configure else settings
        wechat = base.wechat
        if mode != "plain":
            wechat = replace(wechat, encoding_aes_key=AES_KEY, app_id=APP_ID)
        app_settings = replace(base, wechat=wechat)
        store = MemoryState() if fresh_state and isinstance(state, MemoryState) else state
        client = await aiohttp_client(create_app(app_settings, clock=clock, state=store))
        platform = WeChatPlatform(
            client, token=wechat.token, aes_key=wechat.encoding_aes_key, app_id=APP_ID, mode=mode, clock=clock
        )
        return client, platform

    return go
