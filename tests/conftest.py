"""Shared fixtures: the two storage backends every storage and end-to-end test runs on.

`embedded` is SQLite (aiosqlite) + in-process state, what a new user gets with no servers.
`server` is PostgreSQL + Redis at their default local ports (override with GRIDBOT_TEST_DATABASE_URL
and GRIDBOT_TEST_REDIS_URL). Without those servers the server variant is skipped with the reason;
under CI (CI=true) an unreachable server is a failure, never a skip.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

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
