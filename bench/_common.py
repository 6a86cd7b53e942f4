"""Helpers shared by the bench scripts: throwaway backends, percentiles, process CPU time.

Importing this module puts the repository root on `sys.path`, so a script run as
`python bench/x.py` can import `bot`, `storage` and `tests.wechat_sim`.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from storage.db import create_engine, upgrade  # noqa: E402
from storage.state import RedisState  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "GRIDBOT_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("GRIDBOT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an already sorted sequence; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def reachable(url: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=timeout):
            return True
    except OSError:
        return False


def servers_missing(pg_url: str = PG_ADMIN_URL, redis_url: str = REDIS_URL) -> str | None:
    """None if PostgreSQL and Redis both answer on their ports, else a one-line reason."""
    missing = [
        f"{name} ({url})"
        for name, url in (("PostgreSQL", pg_url), ("Redis", redis_url))
        if not reachable(url)
    ]
    return f"{' and '.join(missing)} not reachable" if missing else None


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@asynccontextmanager
async def scratch_postgres(admin_url: str = PG_ADMIN_URL, tag: str = "bench") -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database for one run (its SQLAlchemy URL); dropped on exit."""
    name = f"gridbot_{tag}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_plain_dsn(admin_url), timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        yield url
    finally:
        admin = await asyncpg.connect(_plain_dsn(admin_url), timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def scratch_redis_prefix(url: str = REDIS_URL, tag: str = "bench") -> AsyncIterator[str]:
    """A key prefix of this run's own; every key under it is deleted on exit."""
    prefix = f"gridbot-{tag}-{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        store = RedisState.from_url(url, prefix=prefix)
        try:
            batch: list[str] = []
            async for key in store.client.scan_iter(match=f"{prefix}*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    await store.client.delete(*batch)
                    batch.clear()
            if batch:
                await store.client.delete(*batch)
        finally:
            await store.close()


def process_cpu_seconds(pid: int, *, children: bool = False) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc), or None if unavailable;
    `children` adds what its exited, reaped children used."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    used = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    if children:
        used += int(fields[13]) + int(fields[14])  # cutime, cstime
    return used / ticks


def services_cpu_seconds(names: Sequence[str] = ("postgres", "redis-server")) -> dict[str, float] | None:
    """CPU seconds used so far by the local processes whose name starts with each of `names`, with their
    exited children (PostgreSQL's autovacuum workers) — Linux /proc; None if unavailable."""
    if not Path("/proc/stat").exists():
        return None
    totals = dict.fromkeys(names, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        name = next((n for n in names if comm.startswith(n[:15])), None)  # comm is cut at 15 characters
        if name is not None:
            totals[name] += process_cpu_seconds(int(entry.name), children=True) or 0.0
    return totals


async def wait_line(stream: asyncio.StreamReader, seconds: float) -> str:
    """One line from a child's stdout, or "" at EOF / after `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            return (await stream.readline()).decode().strip()
    except TimeoutError:
        return ""


def host_cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies over all cores since boot (Linux /proc/stat), or None if unavailable."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    values = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)
