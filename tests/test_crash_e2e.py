"""A real `gridbot serve` process killed with SIGKILL between committing notices and sending them
delivers every notice exactly once after a restart, and never re-sends what was already sent."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from storage.db import create_engine, session_factory
from storage.models import OutboxMessage
from tests.conftest import APP_ID, APP_SECRET, DEMO_ORG, REDIS_URL
from tests.fake_helpers import FakeServer, eventually
from tests.wechat_sim import WeChatPlatform

ROOT = Path(__file__).resolve().parents[1]
RESIDENT = "oCrashResident"
LEADER = "oLeader-xiaotang-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`gridbot serve` in a child process."""

    def __init__(self, config: Path, port: int, *extra: str) -> None:
        self.config = config
        self.port = port
        self.extra = extra
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "serve", "-c", str(self.config), *self.extra,
            cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                if self.process.returncode is not None:
                    err = await self.process.stderr.read() if self.process.stderr else b""
                    raise AssertionError(f"server exited: {err.decode()[-2000:]}")
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("server did not become healthy")

    async def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


async def outbox_rows(database_url: str) -> list[tuple[object, ...]]:
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    await engine.dispose()
    return [(r.id, r.recipient, r.status, r.attempts, r.next_attempt_at, r.last_error) for r in rows]


@pytest.fixture
async def redis_prefix(backend: str) -> AsyncIterator[str]:
    prefix = f"gridbot-crash-{uuid.uuid4().hex}:"
    yield prefix
    if backend == "server":
        client = aioredis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.mark.usefixtures("engine")
async def test_sigkill_between_commit_and_send_loses_and_duplicates_nothing(
    backend: str, database_url: str, fake_api: FakeServer, redis_prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "config.toml"
    redis_url = REDIS_URL if backend == "server" else ""
    config.write_text(
        f'[server]\nport = {port}\n[wechat]\ntoken = "crash-token"\napp_id = "{APP_ID}"\n'
        f'app_secret = "{APP_SECRET}"\napi_base = "{fake_api.api_base}"\n'
        f'[storage]\ndatabase_url = "{database_url}"\nredis_url = "{redis_url}"\nredis_prefix = "{redis_prefix}"\n'
        f'[org]\nfile = "{DEMO_ORG}"\n',
        encoding="utf-8",
    )
    server = Server(config, port)
    fake = fake_api.fake
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
        wechat = WeChatPlatform(http, token="crash-token")
        try:
            await server.start()
            # 1. A notice sent and recorded before the crash.
            await wechat.say(RESIDENT, "筱塘新村2号楼楼道灯坏了")
            await eventually(lambda: len(fake.delivered(LEADER)) == 1)

            # 2. Notices committed, but every send attempt fails; the process dies before any succeeds.
            fake.fail_next(None, -1, times=1000)
            requests_before = fake.send_requests
            assert "已受理，工单号 #2" in ((await wechat.say(RESIDENT, "筱塘市场门口垃圾堆积")).content or "")
            assert "已接单" in ((await wechat.say(LEADER, "接单 1")).content or "")
            await eventually(lambda: fake.send_requests >= requests_before + 2)
            # Kill when both failures are recorded (no send in flight; a send in flight is retried only
            # after its lease lapses, which the outbox worker's own tests cover).
            async with asyncio.timeout(10):
                while sum(1 for row in await outbox_rows(database_url) if row[2] == "pending" and row[5]) < 2:  # noqa: ASYNC110 - another process writes it
                    await asyncio.sleep(0.05)
            await server.kill()
            fake.clear_faults()

            # 3. After a restart every committed notice arrives, once.
            await server.start()
            try:
                await eventually(
                    lambda: len(fake.delivered(LEADER)) == 2 and len(fake.delivered(RESIDENT)) == 1, 20
                )
            except TimeoutError:
                raise AssertionError(f"not delivered; outbox: {await outbox_rows(database_url)}") from None
            await asyncio.sleep(0.5)  # room for a duplicate to show up if there were one
            leader = [m["content"] for m in fake.delivered(LEADER)]
            resident = [m["content"] for m in fake.delivered(RESIDENT)]
            assert len(leader) == 2 and "#1" in leader[0] and "#2" in leader[1]
            assert len(resident) == 1 and "工单 #1" in resident[0] and "接单" in resident[0]
        finally:
            await server.stop()


async def test_several_worker_processes_share_the_port_and_the_work(
    backend: str, database_url: str, fake_api: FakeServer, redis_prefix: str, tmp_path: Path, engine: object
) -> None:
    if backend != "server":
        pytest.skip("several processes need PostgreSQL + Redis; the embedded backend is one process")
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[server]\nport = {port}\n[wechat]\ntoken = "w-token"\napp_id = "{APP_ID}"\n'
        f'app_secret = "{APP_SECRET}"\napi_base = "{fake_api.api_base}"\n'
        f'[storage]\ndatabase_url = "{database_url}"\nredis_url = "{REDIS_URL}"\nredis_prefix = "{redis_prefix}"\n'
        f'[org]\nfile = "{DEMO_ORG}"\n',
        encoding="utf-8",
    )
    server = Server(config, port, "--workers", "2")
    try:
        await server.start()
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            wechat = WeChatPlatform(http, token="w-token")
            texts = [f"筱塘新村{n}号楼楼道灯坏了" for n in range(1, 31)]
            replies = await asyncio.gather(*(wechat.say(f"oW{n}", text) for n, text in enumerate(texts)))
        numbers = sorted(int((r.content or "").split("#")[1].split("（")[0]) for r in replies)
        assert numbers == list(range(1, 31))
        await eventually(lambda: len(fake_api.fake.delivered(LEADER)) == 30, 20)
    finally:
        await server.stop()
