"""Helpers for the dashboard tests: log in as an admin through the chat command, read pages and forms."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from tests.wechat_sim import WeChatPlatform

RESIDENT = "oResidentD"
LEADER = "oLeader-xiaotang-1"
LEADER2 = "oLeader-xiaotang-2"
COMMUNITY = "oAdmin-xiaotang"
STREET = "oStreet-longqiao"
DISTRICT = "oDistrict001"
OTHER_STREET = "oStreet-xialin"

# A report in each of three grids: 筱塘社区 (龙桥街道), 东圳社区 (龙桥街道), 木兰社区 (霞林街道).
REPORTS = {
    "xiaotang-1": "筱塘新村5号楼门禁坏了",
    "dongzhen-2": "凤凰山庄6栋门口垃圾没人清理",
    "mulan-1": "木兰花园2号楼路灯不亮",
}


async def link_for(wechat: WeChatPlatform, admin: str) -> str:
    """The path of a fresh login link, asked for in chat with 后台."""
    reply = (await wechat.say(admin, "后台")).content or ""
    found = re.search(r"https?://\S+", reply)
    assert found, reply
    return urlsplit(found.group(0)).path


async def login(client: Any, wechat: WeChatPlatform, admin: str) -> str:
    """Forget any earlier session, log in as `admin`; the page's CSRF token."""
    client.session.cookie_jar.clear()
    response = await client.get(await link_for(wechat, admin))
    assert response.status == 200, await response.text()
    return csrf_of(await response.text())


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def report_everywhere(wechat: WeChatPlatform) -> dict[str, int]:
    """One order in each grid of REPORTS: grid → order number."""
    numbers: dict[str, int] = {}
    for index, (grid, text) in enumerate(REPORTS.items()):
        reply = (await wechat.say(f"{RESIDENT}{index}", text)).content or ""
        found = re.search(r"#(\d+)", reply)
        assert reply.startswith("已受理") and found, reply
        numbers[grid] = int(found.group(1))
    return numbers
