"""`gridbot chat` plays a scan of a place's code (/扫码) and a menu click (/菜单) against the demo."""

from __future__ import annotations

import aiohttp

from handlers import texts
from tests.test_chat import Terminal, demo_server, flat, http

__all__ = ["demo_server", "http"]


async def test_scan_and_menu_in_the_terminal(demo_server: str, http: aiohttp.ClientSession) -> None:
    resident = Terminal(http, demo_server, openid="oResident-scan")
    assert flat(await resident.reply()) == texts.WELCOME
    resident.type("/扫码")
    await resident.shows(lambda e: e.startswith("用法：/扫码 地点"))
    resident.type("/扫码 筱塘市场")
    scanned = flat(await resident.reply())
    assert "筱塘市场" in scanned and "请描述遇到的问题" in scanned
    resident.type("门口井盖松动了")
    assert "工单号 #1" in await resident.reply()
    resident.type("/菜单 NOPE")
    await resident.shows(lambda e: e.startswith("用法：/菜单 按钮") and "HOTLINES" in e)
    resident.type("/菜单 hotlines")
    assert flat(await resident.reply()) == texts.HOTLINES
    assert await resident.close() == 0
