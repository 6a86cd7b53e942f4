"""A running server follows `gridbot org import` without a restart, on both backends."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import keys
from handlers import texts
from storage.db import session_factory
from storage.models import WorkOrder
from storage.org import apply_org, parse_org
from tests.conftest import DEMO_ORG, Start
from tests.fake_helpers import FakeServer, eventually

OLD_LEADER = "oLeader-xiaotang-1"
NEW_LEADER = "oLeader-new"
REPORT = "筱塘花园门口路灯坏了"


def new_leader_and_place() -> dict[str, Any]:
    """The demo org where grid xiaotang-1 has a new leader and a new compound, 筱塘花园."""
    data = tomllib.loads(DEMO_ORG.read_text(encoding="utf-8"))
    people = [p for p in data["person"] if p["openid"] != OLD_LEADER]
    data["person"] = [
        *people,
        {"openid": NEW_LEADER, "name": "林新", "role": "grid_leader", "unit": "xiaotang-1"},
    ]
    grid = next(u for u in data["unit"] if u["id"] == "xiaotang-1")
    grid["places"] = [*grid["places"], "筱塘花园"]
    return data


async def import_org(engine: AsyncEngine, data: dict[str, Any]) -> int:
    """What `gridbot org import` does, from outside the server."""
    async with session_factory(engine)() as session, session.begin():
        return (await apply_org(session, parse_org(data))).changed


@pytest.mark.usefixtures("backend")
async def test_an_import_reaches_the_running_server(
    start: Start, engine: AsyncEngine, fake_api: FakeServer
) -> None:
    client, wechat = await start()
    watcher = client.app[keys.ORG_WATCH]
    watcher.stop()  # its background passes end; this test runs them itself
    assert (await wechat.say("oResidentA", REPORT)).content == texts.ASK_PLACE
    assert await watcher.run_once() == 0  # nothing changed yet

    assert await import_org(engine, new_leader_and_place()) > 0
    assert await watcher.run_once() == 1
    assert await watcher.run_once() == 0

    reply = (await wechat.say("oResidentB", REPORT)).content or ""
    assert reply.startswith("已受理，工单号 #1") and "筱塘社区第一网格党支部" in reply
    async with session_factory(engine)() as session:
        order = await session.get(WorkOrder, 1)
    assert order is not None and (order.unit_id, order.assignee_openid) == ("xiaotang-1", NEW_LEADER)
    await eventually(lambda: any("#1" in m["content"] for m in fake_api.fake.delivered(NEW_LEADER)))
    # The old leader is no longer staff; the new one is.
    assert (await wechat.say(OLD_LEADER, "待办")).content == texts.STAFF_ONLY.format(word="待办")
    assert "#1" in ((await wechat.say(NEW_LEADER, "待办")).content or "")
    assert fake_api.fake.delivered(OLD_LEADER) == []
