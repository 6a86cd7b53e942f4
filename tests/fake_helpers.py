"""Helpers for tests that talk to the fake WeChat API: a settable clock, the fake on loopback, polling."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bot.demo.fake_wechat import FAKE_WECHAT, FakeWeChat, create_fake_wechat_app
from bot.tencent.wechat_api import WeChatAPI
from storage.state import StateStore

APP_ID = "wx0123456789abcdef"
APP_SECRET = "s3cr3t-app-secret-never-logged"


class Clock:
    """Epoch seconds that move only when told to."""

    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def dt(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


@dataclass
class FakeServer:
    server: TestServer
    fake: FakeWeChat

    @property
    def api_base(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"


async def start_fake(aiohttp_server: Callable[..., Awaitable[TestServer]], **options: Any) -> FakeServer:
    """The fake WeChat API on a loopback port, issuing tokens for APP_ID / APP_SECRET."""
    app = create_fake_wechat_app(**{"app_id": APP_ID, "app_secret": APP_SECRET, **options})
    server = await aiohttp_server(app)
    return FakeServer(server, app[FAKE_WECHAT])


def make_api(http: aiohttp.ClientSession, wx: FakeServer, state: StateStore, **options: Any) -> WeChatAPI:
    return WeChatAPI(http, api_base=wx.api_base, app_id=APP_ID, app_secret=APP_SECRET, state=state, **options)


async def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait (in millisecond steps) until `condition()` holds; fail after `within` seconds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polls another task's side effect, no event to await
            await asyncio.sleep(0.005)
