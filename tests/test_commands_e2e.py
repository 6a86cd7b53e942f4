"""Every chat command beyond the basic loop, end to end on both backends, with its authorisation."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers import commands, texts
from storage.db import session_factory
from storage.models import OutboxMessage, Resident, WorkOrder
from tests.conftest import Start
from tests.fake_helpers import Clock, FakeServer, eventually
from tests.wechat_sim import WeChatPlatform, location_xml

RESIDENT = "oResidentB"
LEADER = "oLeader-xiaotang-1"
PARTY = "oParty-xiaotang-1"
LEADER2 = "oLeader-xiaotang-2"
LEADER_DZ = "oLeader-dongzhen-1"
ADMIN = "oAdmin-xiaotang"
OTHER_ADMIN = "oAdmin-mulan"
STREET = "oStreet-longqiao"

pytestmark = pytest.mark.usefixtures("backend")


async def say(wechat: WeChatPlatform, who: str, text: str) -> str:
    return (await wechat.say(who, text)).content or ""


def inbox(fake_api: FakeServer, openid: str) -> list[str]:
    return [m["content"] for m in fake_api.fake.delivered(openid)]


async def order(engine: AsyncEngine, number: int = 1) -> WorkOrder:
    async with session_factory(engine)() as session:
        row = await session.get(WorkOrder, number)
    assert row is not None
    return row


async def report(wechat: WeChatPlatform, text: str = "筱塘新村5号楼门禁坏了") -> None:
    assert (await say(wechat, RESIDENT, text)).startswith("已受理")


async def test_party_member_claims_an_order(start: Start, engine: AsyncEngine, fake_api: FakeServer) -> None:
    _, wechat = await start()
    await report(wechat)
    assert await say(wechat, "oParty-dongzhen-1", "领单 1") == texts.NOT_ALLOWED.format(n=1)
    assert await say(wechat, PARTY, "领单 1") == texts.CLAIMED.format(n=1)
    row = await order(engine)
    assert (row.state, row.assignee_openid) == ("accepted", PARTY)
    await eventually(lambda: any("党员" in t for t in inbox(fake_api, RESIDENT)))
    await eventually(lambda: any("领办" in t for t in inbox(fake_api, LEADER)))
    assert await say(wechat, LEADER, "领单 1") == "工单 #1 已接单，正在处理中。"


async def test_transfer_within_the_community_only(
    start: Start, engine: AsyncEngine, fake_api: FakeServer
) -> None:
    _, wechat = await start()
    await report(wechat)
    refused = await say(wechat, LEADER, "转派 1 东圳社区第一网格")
    assert "没有找到" in refused
    assert (await order(engine)).unit_id == "xiaotang-1"
    moved = await say(wechat, LEADER, "转派 1 筱塘社区第二网格")
    assert moved.startswith("工单 #1 已转派给筱塘社区第二网格")
    row = await order(engine)
    assert (row.state, row.unit_id, row.assignee_openid) == ("assigned", "xiaotang-2", LEADER2)
    await eventually(lambda: any("接单 1" in t for t in inbox(fake_api, LEADER2)))
    # the street admin may move it anywhere in the street
    assert "已转派给" in await say(wechat, STREET, "转派 1 东圳社区第一网格")
    assert (await order(engine)).assignee_openid == LEADER_DZ


async def test_return_then_list_then_dispatch(
    start: Start, engine: AsyncEngine, fake_api: FakeServer
) -> None:
    _, wechat = await start()
    await report(wechat)
    assert await say(wechat, LEADER, "退单 1 这是学校的围墙，不归我们管") == texts.RETURNED.format(n=1)
    row = await order(engine)
    assert (row.state, row.assignee_openid) == ("returned", None)
    await eventually(lambda: any("退单" in t and "派单 1" in t for t in inbox(fake_api, ADMIN)))
    listed = await say(wechat, ADMIN, "列表 已退回")
    assert "#1" in listed and "已退回社区" in listed
    assert await say(wechat, ADMIN, "列表 处理中") == texts.NO_ORDERS_IN_LIST
    assert "没有找到“火星”" in await say(wechat, ADMIN, "列表 火星")
    assert await say(wechat, OTHER_ADMIN, "派单 1 木兰社区第一网格") == texts.NOT_ALLOWED.format(n=1)
    assert await say(wechat, LEADER, "派单 1 筱塘社区第一网格") == texts.ADMIN_ONLY.format(word="派单")
    dispatched = await say(wechat, ADMIN, "派单 1 筱塘社区第三网格")
    assert dispatched.startswith("工单 #1 已派给筱塘社区第三网格")
    assert (await order(engine)).state == "assigned"
    assert "已接单" in await say(wechat, "oLeader-xiaotang-3", "接单 1")


async def test_extension_needs_consent_above_three_days(
    start: Start, engine: AsyncEngine, fake_api: FakeServer
) -> None:
    _, wechat = await start()
    await report(wechat)
    assert "请先回复“接单" in await say(wechat, LEADER, "延期 1 2 等配件")
    await say(wechat, LEADER, "接单 1")
    due = (await order(engine)).resolve_due
    assert due is not None
    assert (await say(wechat, LEADER, "延期 1 2 等配件")).startswith("工单 #1 已延期 2 天")
    extended = (await order(engine)).resolve_due
    assert extended is not None and (extended - due).days == 2
    assert await say(wechat, LEADER, "延期 1 5 材料还没到") == texts.EXTEND_ASKED
    assert (await order(engine)).resolve_due == extended
    await eventually(lambda: any("延期申请" in t and "延期 1 5" in t for t in inbox(fake_api, ADMIN)))
    granted = await say(wechat, ADMIN, "延期 1 5 材料还没到")
    assert granted.startswith("工单 #1 已延期 5 天")
    final = (await order(engine)).resolve_due
    assert final is not None and (final - extended).days == 5
    await eventually(lambda: any("已延期 5 天" in t for t in inbox(fake_api, LEADER)))
    await eventually(lambda: sum("需要延期" in t for t in inbox(fake_api, RESIDENT)) == 2)


async def test_cancel_only_before_acceptance(start: Start, engine: AsyncEngine) -> None:
    _, wechat = await start()
    await report(wechat)
    await report(wechat, "筱塘市场路灯不亮")
    assert await say(wechat, "oSomeoneElse", "撤销 1") == texts.NOT_YOUR_ORDER.format(n=1)
    assert await say(wechat, RESIDENT, "撤销 1") == texts.CANCELLED.format(n=1)
    assert (await order(engine, 1)).state == "cancelled"
    assert "不能再操作" in await say(wechat, LEADER, "接单 1")
    await say(wechat, LEADER, "接单 2")
    assert "不能撤销" in await say(wechat, RESIDENT, "撤销 2")


async def test_urge_reaches_the_assignee_once_in_two_hours(
    start: Start, engine: AsyncEngine, fake_api: FakeServer
) -> None:
    _, wechat = await start()
    await report(wechat)
    assert await say(wechat, RESIDENT, "催办 1") == texts.URGED.format(n=1)
    assert await say(wechat, RESIDENT, "催办 1") == texts.URGED_RECENTLY.format(n=1)
    await eventually(lambda: any("催办" in t for t in inbox(fake_api, LEADER)))
    assert not any("催办" in t for t in inbox(fake_api, ADMIN))  # not overdue: the admin is spared
    assert await say(wechat, "oSomeoneElse", "催办 1") == texts.NOT_YOUR_ORDER.format(n=1)


async def test_bind_an_address_then_report_without_one(start: Start, engine: AsyncEngine) -> None:
    _, wechat = await start()
    bound = await say(wechat, RESIDENT, "绑定 凤凰小区6栋")
    assert bound == texts.BOUND.format(place="凤凰山庄6栋", branch="东圳社区第二网格党支部")
    reply = await say(wechat, RESIDENT, "楼下路灯一直闪")
    assert "东圳社区第二网格党支部" in reply
    assert (await order(engine)).place_detail == "6栋"


async def test_bind_by_location(start: Start, engine: AsyncEngine) -> None:
    _, wechat = await start()
    assert await say(wechat, RESIDENT, "绑定") == texts.BIND_ASK
    reply = (await wechat.send(location_xml(RESIDENT, 25.4222, 119.0301, "荔园新村东门"))).content
    assert reply == texts.BOUND.format(place="荔园新村东门", branch="荔园社区第一网格党支部")
    async with session_factory(engine)() as session:
        resident = await session.get(Resident, RESIDENT)
    assert resident is not None and resident.unit_id == "liyuan-1"
    assert "荔园社区第一网格党支部" in await say(wechat, RESIDENT, "楼道里有人堆放杂物")


async def test_overdue_supervise_and_undeliverable(
    start: Start, engine: AsyncEngine, fake_api: FakeServer
) -> None:
    clock = Clock(1_790_000_000.0)
    _, wechat = await start(clock=clock)
    fake_api.fake.fail_next(None, 40003, times=1)  # the leader's notice is rejected for good
    await report(wechat)

    async def failed() -> int:
        async with session_factory(engine)() as session:
            rows = await session.scalars(select(OutboxMessage).where(OutboxMessage.status == "failed"))
            return len(rows.all())

    async with asyncio.timeout(5):
        while not await failed():  # noqa: ASYNC110 - waits on the outbox worker's database write
            await asyncio.sleep(0.02)
    clock.advance(3 * 3600)  # past the 2-hour accept limit
    late = await say(wechat, ADMIN, "逾期")
    assert "超时工单 1 张" in late and "#1" in late and "未送达通知 1 条" in late
    assert "已超时" in await say(wechat, ADMIN, "状态 1")
    assert "通知未送达" in await say(wechat, ADMIN, "状态 1")
    assert await say(wechat, OTHER_ADMIN, "逾期") == texts.NOTHING_OVERDUE
    assert await say(wechat, ADMIN, "督办 1") == texts.SUPERVISED.format(n=1)
    assert (await order(engine)).escalation_level == 1
    await eventually(lambda: any("督办" in t for t in inbox(fake_api, LEADER)))
    assert await say(wechat, LEADER, "督办 1") == texts.ADMIN_ONLY.format(word="督办")


async def test_help_depends_on_the_role(start: Start) -> None:
    _, wechat = await start()
    assert await say(wechat, ADMIN, "帮助") == commands.HELP_ADMIN
    assert await say(wechat, LEADER, "帮助") == commands.HELP_STAFF
    assert await say(wechat, RESIDENT, "帮助") == commands.HELP_RESIDENT
    assert await say(wechat, LEADER, "查询") == commands.HELP_STAFF
    for message in (commands.HELP_ADMIN, commands.HELP_STAFF, commands.HELP_RESIDENT):
        assert len(message.encode()) < 900 and message.count("\n") < 16  # one short line a command
