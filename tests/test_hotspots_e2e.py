"""主动治理 end to end on both backends: reports of one category piling up in one grid open a hot spot
once — the community and street admins are alerted with the orders listed — `热点` lists it, and it
closes when it cools down; the bar is the threshold or three times the grid's usual rate."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import keys
from bot.config import Settings
from handlers import texts
from handlers.hotspots import HotspotRules, check
from storage.db import session_factory
from storage.models import HotSpot, OutboxMessage
from tests.conftest import Start
from tests.fake_helpers import Clock, FakeServer, eventually
from tests.wechat_sim import WeChatPlatform

pytestmark = pytest.mark.usefixtures("backend")

ADMIN = "oAdmin-xiaotang"
STREET = "oStreet-longqiao"
OTHER_ADMIN = "oAdmin-mulan"
LEADER = "oLeader-xiaotang-1"
HOUR = 3600


def rules(**changes: int) -> object:
    def configure(settings: Settings) -> Settings:
        return replace(settings, hotspots=replace(settings.hotspots, **changes))

    return configure


async def report(
    wechat: WeChatPlatform, n: int, place: str = "筱塘新村", words: str = "垃圾堆了好几天没人清"
) -> None:
    reply = (await wechat.say(f"oNeighbour{place}{n}", f"{place}{n}号楼{words}")).content or ""
    assert reply.startswith("已受理"), reply


def alerts(fake_api: FakeServer, openid: str) -> list[str]:
    return [m["content"] for m in fake_api.fake.delivered(openid) if "热点预警" in m["content"]]


async def hotspots(engine: AsyncEngine) -> list[HotSpot]:
    async with session_factory(engine)() as session:
        return list((await session.scalars(select(HotSpot).order_by(HotSpot.id))).all())


async def test_a_surge_alerts_once_is_listed_and_cools_down(
    start: Start, engine: AsyncEngine, fake_api: FakeServer
) -> None:
    clock = Clock(time.time())
    client, wechat = await start(clock=clock, configure=rules(minimum=5))  # the plain 5 in 2 hours
    watch = client.app[keys.HOTSPOTS]
    watch.stop()  # this test runs the passes itself
    for n in range(1, 5):
        await report(wechat, n)
        clock.advance(60)
    assert await watch.run_once() == 0 and await hotspots(engine) == []
    await report(wechat, 5)
    assert await watch.run_once() == 2  # the community admin and the street admin
    assert await watch.run_once() == 0  # once
    for admin in (ADMIN, STREET):
        await eventually(lambda admin=admin: len(alerts(fake_api, admin)) == 1)
    (alert,) = alerts(fake_api, ADMIN)
    assert "筱塘社区第一网格 近 2 小时收到 5 条“环境卫生”反映" in alert
    assert all(f"#{n} " in alert for n in range(1, 6)) and "回复“热点”" in alert
    assert alerts(fake_api, OTHER_ADMIN) == [] and alerts(fake_api, LEADER) == []

    await report(wechat, 6)  # it grows; no second alert
    assert await watch.run_once() == 0
    (spot,) = await hotspots(engine)
    assert (spot.unit_id, spot.category, spot.reports, spot.closed_at) == ("xiaotang-1", "环境卫生", 6, None)
    assert sorted(spot.order_ids) == [1, 2, 3, 4, 5, 6]
    listed = (await wechat.say(ADMIN, "热点")).content or ""
    assert listed.startswith("当前热点 1 个") and "筱塘社区第一网格 · 环境卫生：6 条反映" in listed
    assert "#1 #2 #3 #4 #5 #6" in listed
    assert (await wechat.say(STREET, "热点")).content == listed
    assert (await wechat.say(OTHER_ADMIN, "热点")).content == texts.NO_HOTSPOTS
    assert (await wechat.say(LEADER, "热点")).content == texts.ADMIN_ONLY.format(word="热点")

    clock.advance(2 * HOUR)  # the window empties: it has cooled down
    assert await watch.run_once() == 0
    (spot,) = await hotspots(engine)
    assert spot.closed_at is not None and spot.open_key is None
    assert (await wechat.say(ADMIN, "热点")).content == texts.NO_HOTSPOTS
    for n in range(11, 16):  # a new surge later is a new hot spot, alerted again
        await report(wechat, n)
    assert await watch.run_once() == 2
    assert [s.closed_at is None for s in await hotspots(engine)] == [False, True]


async def test_three_times_the_usual_rate(start: Start, engine: AsyncEngine, fake_api: FakeServer) -> None:
    """threshold 10, minimum 2, baseline one day: 筱塘 had 12 reports the day before (usual 1 per 2 h,
    so its bar is 3); 东圳 had none (its bar is the minimum, 2)."""
    clock = Clock(time.time())
    client, wechat = await start(clock=clock, configure=rules(threshold=10, minimum=2, baseline=86400))
    watch = client.app[keys.HOTSPOTS]
    watch.stop()
    for n in range(1, 13):
        await report(wechat, n)
        clock.advance(HOUR)
    clock.advance(4 * HOUR)  # the twelve are now all in the baseline, none in the window
    assert await watch.run_once() == 0
    await report(wechat, 21)
    await report(wechat, 22)
    await report(wechat, 1, place="东圳新苑")
    await report(wechat, 2, place="东圳新苑")
    assert await watch.run_once() == 2  # 东圳's community admin and the street's
    (quiet,) = await hotspots(engine)
    assert (quiet.unit_id, quiet.bar, quiet.usual) == ("dongzhen-1", 2, 0)
    await report(wechat, 23)
    assert await watch.run_once() == 2
    busy = (await hotspots(engine))[1]
    assert (busy.unit_id, busy.bar, busy.usual, busy.reports) == ("xiaotang-1", 3, 1.0, 3)


async def test_two_processes_checking_at_once_alert_once(start: Start, engine: AsyncEngine) -> None:
    clock = Clock(time.time())
    client, wechat = await start(clock=clock)
    client.app[keys.HOTSPOTS].stop()
    for n in range(1, 6):
        await report(wechat, n)
    services = client.app[keys.SERVICES]
    sessions = session_factory(engine)

    async def one_pass() -> list[str]:
        async with sessions() as session, session.begin():
            return await check(session, services, HotspotRules(), clock.dt())

    first, second = await asyncio.gather(one_pass(), one_pass())
    assert sorted(len(q) for q in (first, second)) == [0, 2]
    async with sessions() as session:
        queued = (
            await session.scalars(
                select(OutboxMessage.send_key).where(OutboxMessage.send_key.like("hotspot:%"))
            )
        ).all()
    assert len(await hotspots(engine)) == 1 and len(queued) == 2
