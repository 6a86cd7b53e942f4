"""The loop end to end on both backends: a resident's report reaches its grid, is handled and closed.

Everything goes through the real HTTP app; pushed notices are read from the local fake WeChat API.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from handlers import commands, texts
from storage.db import session_factory
from storage.models import OutboxMessage, WorkOrder, WorkOrderEvent
from tests.conftest import Start
from tests.fake_helpers import FakeServer, eventually
from tests.wechat_sim import image_xml, location_xml, voice_xml

RESIDENT = "oResidentA"
LEADER = "oLeader-xiaotang-1"
MEMBER = "oMember-xiaotang-1"
OTHER_LEADER = "oLeader-xiaotang-2"
ADMIN = "oAdmin-xiaotang"
OTHER_ADMIN = "oAdmin-mulan"
STREET = "oStreet-longqiao"


def texts_to(fake_api: FakeServer, openid: str) -> list[str]:
    return [m["content"] for m in fake_api.fake.delivered(openid) if m["msgtype"] == "text"]


async def pushed(fake_api: FakeServer, openid: str, count: int) -> list[str]:
    """Wait until `openid` has received `count` pushed messages; return them all."""
    await eventually(lambda: len(texts_to(fake_api, openid)) >= count)
    return texts_to(fake_api, openid)


async def order(engine: AsyncEngine, number: int) -> WorkOrder:
    async with session_factory(engine)() as session:
        found = await session.get(WorkOrder, number)
    assert found is not None
    return found


async def events(engine: AsyncEngine, number: int) -> list[tuple[str, str, str | None]]:
    async with session_factory(engine)() as session:
        rows = (
            await session.scalars(
                select(WorkOrderEvent).where(WorkOrderEvent.order_id == number).order_by(WorkOrderEvent.id)
            )
        ).all()
    return [(e.kind, e.actor, e.to_state) for e in rows]


@pytest.mark.usefixtures("backend")
class TestTheWholeStory:
    async def test_report_accept_progress_resolve_rate(
        self, start: Start, engine: AsyncEngine, fake_api: FakeServer
    ) -> None:
        _, wechat = await start()
        reply = await wechat.say(RESIDENT, "筱塘新村3号楼2单元楼道灯坏了好几天，晚上很黑")
        content = reply.content or ""
        assert content.startswith("已受理，工单号 #1（设施维修）")
        assert "筱塘社区第一网格党支部" in content and "2 小时" in content
        assert len(content.encode()) < 300

        (notice,) = await pushed(fake_api, LEADER, 1)
        assert "#1" in notice and "设施维修" in notice and "筱塘新村3号楼2单元" in notice
        assert "楼道灯坏了" in notice and "接单 1" in notice
        created = await order(engine, 1)
        assert (created.state, created.assignee_openid, created.unit_id) == ("assigned", LEADER, "xiaotang-1")
        assert created.accept_due is not None

        accepted = await wechat.say(LEADER, "接单 1")
        assert "已接单" in (accepted.content or "") and "进展 1" in (accepted.content or "")
        assert "接单" in (await pushed(fake_api, RESIDENT, 1))[0]

        noted = await wechat.say(LEADER, "进展 #1 已联系电工，明天上午更换")
        assert "进展已记录" in (noted.content or "")
        assert "已联系电工" in (await pushed(fake_api, RESIDENT, 2))[1]

        done = await wechat.say(LEADER, "办结 ＃１ 灯已更换")
        assert "已办结" in (done.content or "")
        resolved_notice = (await pushed(fake_api, RESIDENT, 3))[2]
        assert "灯已更换" in resolved_notice and "1 满意" in resolved_notice

        thanks = await wechat.say(RESIDENT, "1")
        assert thanks.content == texts.RATE_THANKS.format(rating="满意", n=1)
        assert "满意" in (await pushed(fake_api, LEADER, 2))[1]

        closed = await order(engine, 1)
        assert (closed.state, closed.rating) == ("closed", "满意")
        assert closed.accepted_at and closed.resolved_at and closed.closed_at
        assert await events(engine, 1) == [
            ("create", RESIDENT, "new"),
            ("assign", "system", "assigned"),
            ("accept", LEADER, "accepted"),
            ("progress", LEADER, "accepted"),
            ("resolve", LEADER, "resolved"),
            ("rate", RESIDENT, "closed"),
        ]

        asked = await wechat.say(RESIDENT, "进度怎么样了？")
        assert (asked.content or "").startswith("您最近的工单：\n#1 设施维修 已关闭")
        status = await wechat.say(RESIDENT, "查询 1")
        assert "已关闭" in (status.content or "") and "评价：满意" in (status.content or "")

    async def test_not_satisfied_reopens_to_the_assignee_and_tells_the_admin(
        self, start: Start, engine: AsyncEngine, fake_api: FakeServer
    ) -> None:
        _, wechat = await start()
        await wechat.say(RESIDENT, "筱塘市场门口的井盖松动了")
        await wechat.say(LEADER, "接单 1")
        await wechat.say(LEADER, "办结 1 已加固")
        reopened = await wechat.say(RESIDENT, "评价 1 不满意")
        assert reopened.content == texts.RATE_REOPENED.format(n=1)
        assert "重办" in (await pushed(fake_api, LEADER, 2))[1]
        assert any("不满意" in t for t in await pushed(fake_api, ADMIN, 1))
        row = await order(engine, 1)
        assert (row.state, row.escalation_level, row.rating) == ("reopened", 1, "不满意")
        again = await wechat.say(LEADER, "办结 1 已更换新井盖")
        assert "已办结" in (again.content or "")

    async def test_property_category_goes_to_the_property_company(
        self, start: Start, engine: AsyncEngine, fake_api: FakeServer
    ) -> None:
        _, wechat = await start()
        reply = await wechat.say(RESIDENT, "筱塘新村物业费收了也不管事，电梯一直没人维护")
        assert "万辉红色物业" in (reply.content or "")
        assert "接单 1" in (await pushed(fake_api, "oProp-wanhui", 1))[0]
        assert "知悉" in (await pushed(fake_api, LEADER, 1))[0]
        row = await order(engine, 1)
        assert (row.category, row.assignee_openid, row.department_id) == (
            "物业服务",
            "oProp-wanhui",
            "wanhui-wuye",
        )
        accepted = await wechat.say("oProp-wanhui", "接单 1")
        assert "已接单" in (accepted.content or "")

    async def test_urgent_report_alerts_the_admin_and_advises_the_resident(
        self, start: Start, engine: AsyncEngine, fake_api: FakeServer
    ) -> None:
        _, wechat = await start()
        reply = await wechat.say(RESIDENT, "龙桥花园5栋楼道着火了，有浓烟")
        content = reply.content or ""
        assert content.startswith(texts.EMERGENCY["fire"]) and "119" in content
        assert "已加急" in content and "30 分钟" in content
        assert "紧急" in (await pushed(fake_api, "oLeader-xiaotang-2", 1))[0]
        assert "紧急工单 #1" in (await pushed(fake_api, ADMIN, 1))[0]
        assert (await order(engine, 1)).urgent is True


@pytest.mark.usefixtures("backend")
class TestWhereIsIt:
    async def test_unknown_place_is_asked_and_the_answer_finishes_the_order(
        self, start: Start, engine: AsyncEngine, fake_api: FakeServer
    ) -> None:
        _, wechat = await start()
        assert (await wechat.say(RESIDENT, "楼下垃圾桶满了好几天没人清")).content == texts.ASK_PLACE
        assert (await wechat.say(RESIDENT, "不知道")).content == texts.PLACE_NOT_FOUND
        answer = await wechat.say(RESIDENT, "凤凰小区8栋")
        assert (answer.content or "").startswith("已受理，工单号 #1（环境卫生）")
        assert "东圳社区第二网格党支部" in (answer.content or "")
        row = await order(engine, 1)
        assert row.unit_id == "dongzhen-2" and "垃圾桶满了" in row.text and row.place_detail == "8栋"
        assert "#1" in (await pushed(fake_api, "oLeader-dongzhen-2", 1))[0]

    async def test_the_question_can_be_cancelled(self, start: Start, engine: AsyncEngine) -> None:
        _, wechat = await start()
        assert (await wechat.say(RESIDENT, "有只狗一直叫")).content == texts.ASK_PLACE
        assert (await wechat.say(RESIDENT, "算了")).content == texts.REPORT_CANCELLED
        assert (await wechat.say(RESIDENT, "查询")).content == texts.NO_ORDERS

    async def test_a_location_answers_the_question_through_the_nearest_grid(
        self, start: Start, engine: AsyncEngine
    ) -> None:
        _, wechat = await start()
        assert (await wechat.send(voice_xml(RESIDENT, "路灯坏了一排"))).content == texts.ASK_PLACE
        answer = await wechat.send(location_xml(RESIDENT, 25.4160, 119.0241, "木兰溪边"))
        assert "木兰社区第二网格党支部" in (answer.content or "")
        row = await order(engine, 1)
        assert (row.unit_id, row.lat, row.lng) == ("mulan-2", 25.4160, 119.0241)

    async def test_a_bound_place_is_used_when_the_text_names_none(
        self, start: Start, engine: AsyncEngine
    ) -> None:
        _, wechat = await start()
        await wechat.say(RESIDENT, "楼道堆满了杂物")
        await wechat.say(RESIDENT, "荔园新村")
        # The resident's place is not bound by answering; a second report without a place asks again.
        assert (await wechat.say(RESIDENT, "又有人乱停车")).content == texts.ASK_PLACE

    async def test_the_question_survives_a_restart(
        self, start: Start, engine: AsyncEngine, backend: str
    ) -> None:
        client, wechat = await start()
        assert (await wechat.say(RESIDENT, "小区门口污水横流")).content == texts.ASK_PLACE
        await client.close()
        _, wechat2 = await start(fresh_state=backend == "embedded")
        answer = await wechat2.say(RESIDENT, "荔园新村")
        # Redis keeps the question; in-process state does not, but the stored messages do: either way
        # the bare place answers the question, and nothing is opened for the place alone.
        assert (answer.content or "").startswith("已受理，工单号 #1")
        assert "荔园社区第一网格党支部" in (answer.content or "")
        assert (await order(engine, 1)).text == "小区门口污水横流（地点：荔园新村）"

    async def test_photos_just_before_and_after_are_attached(self, start: Start, engine: AsyncEngine) -> None:
        _, wechat = await start()
        assert (await wechat.send(image_xml(RESIDENT))).content == texts.IMAGE_RECEIVED
        await wechat.say(RESIDENT, "建设新村3栋外墙瓷砖脱落")
        after = await wechat.send(image_xml(RESIDENT))
        assert after.content == texts.PHOTO_ADDED.format(n=1)
        assert len((await order(engine, 1)).media) == 2


@pytest.mark.usefixtures("backend")
class TestRefusals:
    async def test_only_the_right_people_may_act(self, start: Start, engine: AsyncEngine) -> None:
        _, wechat = await start()
        await wechat.say(RESIDENT, "筱塘新村垃圾没人收")
        assert (await wechat.say(OTHER_LEADER, "接单 1")).content == texts.NOT_ALLOWED.format(n=1)
        assert (await wechat.say(ADMIN, "接单 1")).content == texts.NOT_ALLOWED.format(n=1)
        assert (await wechat.say("oStranger", "接单 1")).content == texts.STAFF_ONLY.format(word="接单")
        assert (await wechat.say(RESIDENT, "状态 1")).content == texts.ADMIN_ONLY.format(word="状态")
        assert (await wechat.say(LEADER, "状态 1")).content == texts.ADMIN_ONLY.format(word="状态")
        assert (await wechat.say(OTHER_ADMIN, "状态 1")).content == texts.NOT_ALLOWED.format(n=1)
        assert (await wechat.say("oStranger", "评价 1 满意")).content == texts.NOT_YOUR_ORDER.format(n=1)
        assert (await wechat.say("oStranger", "查询 1")).content == texts.NOT_YOUR_ORDER.format(n=1)
        assert (
            await wechat.say(LEADER, "办结 1 好了")
        ).content == "工单 #1 还没接单，请先回复“接单 1”，再办结。"
        assert (await order(engine, 1)).state == "assigned"
        # a grid member of the same grid may take it; the admins above may look at it
        assert "已接单" in ((await wechat.say(MEMBER, "接單 ＃1")).content or "")
        assert "处理中" in ((await wechat.say(ADMIN, "状态 1")).content or "")
        assert "处理中" in ((await wechat.say(STREET, "状态 1")).content or "")
        assert (await wechat.say(LEADER, "接单 1")).content == "工单 #1 已接单，正在处理中。"
        assert (await wechat.say(LEADER, "接单 99")).content == texts.NO_SUCH_ORDER.format(n=99)

    @pytest.mark.parametrize(
        ("who", "text", "expected"),
        [
            (LEADER, "接单", "请写上工单号，例如：接单 12"),
            (LEADER, "办结 3", "请写上办理结果，例如：办结 12 灯已更换"),
            (ADMIN, "状态 abc", "请写上工单号，例如：状态 12"),
            (RESIDENT, "评价 满意", "请写上工单号，例如：评价 12 满意"),
            (LEADER, "随便说点什么", commands.HELP_STAFF),
        ],
    )
    async def test_miswritten_commands_get_a_specific_hint(
        self, start: Start, who: str, text: str, expected: str
    ) -> None:
        _, wechat = await start()
        assert (await wechat.say(who, text)).content == expected


@pytest.mark.usefixtures("backend")
class TestDelivery:
    async def test_out_of_window_notice_rides_on_the_next_reply(
        self, start: Start, engine: AsyncEngine, fake_api: FakeServer
    ) -> None:
        _, wechat = await start()
        await wechat.say(RESIDENT, "筱塘新村路灯不亮")
        fake_api.fake.fail_next(RESIDENT, 45015)
        await wechat.say(LEADER, "接单 1")

        async def deferred() -> list[str]:
            async with session_factory(engine)() as session:
                rows = await session.scalars(select(OutboxMessage).where(OutboxMessage.status == "deferred"))
                return [row.recipient for row in rows]

        async with asyncio.timeout(5):
            while not await deferred():  # noqa: ASYNC110 - waits on the outbox worker's database write
                await asyncio.sleep(0.02)
        assert await deferred() == [RESIDENT]
        assert texts_to(fake_api, RESIDENT) == []

        reply = await wechat.say(RESIDENT, "查询")
        content = reply.content or ""
        notice, _, answer = content.partition("\n——\n")
        assert notice.startswith("您反映的问题（工单 #1）已由筱塘社区第一网格党支部的")
        assert answer.startswith("您最近的工单：")
        assert await deferred() == []
        again = await wechat.say(RESIDENT, "查询")
        assert "已由" not in (again.content or "")

    async def test_many_deferred_notices_ride_three_at_a_time(
        self, start: Start, engine: AsyncEngine, fake_api: FakeServer
    ) -> None:
        _, wechat = await start()
        await wechat.say(RESIDENT, "筱塘新村路灯不亮")
        fake_api.fake.fail_next(RESIDENT, 45047, times=5)
        await wechat.say(LEADER, "接单 1")
        for step in range(4):
            await wechat.say(LEADER, f"进展 1 第{step + 1}步")
        await eventually(lambda: fake_api.fake.send_requests >= 6)  # 1 to the leader + 5 refused

        async def deferred_count() -> int:
            async with session_factory(engine)() as session:
                rows = await session.scalars(select(OutboxMessage).where(OutboxMessage.status == "deferred"))
                return len(rows.all())

        async with asyncio.timeout(5):
            while await deferred_count() < 5:  # noqa: ASYNC110 - waits on the outbox worker's database write
                await asyncio.sleep(0.02)
        first = (await wechat.say(RESIDENT, "查询")).content or ""
        second = (await wechat.say(RESIDENT, "查询")).content or ""
        third = (await wechat.say(RESIDENT, "查询")).content or ""
        assert first.count("\n——\n") == 3 and "已由" in first and "第2步" in first and "第3步" not in first
        assert second.count("\n——\n") == 2 and "第3步" in second and "第4步" in second
        assert "——" not in third
        assert all(len(reply.encode()) <= 2048 for reply in (first, second))

    async def test_a_configured_template_carries_a_notice_outside_the_window(
        self, start: Start, engine: AsyncEngine, fake_api: FakeServer
    ) -> None:
        def with_template(settings: Settings) -> Settings:
            return replace(settings, wechat=replace(settings.wechat, template_id={"accept": "TPL-ACCEPT"}))

        _, wechat = await start(configure=with_template)
        await wechat.say(RESIDENT, "筱塘新村路灯不亮")
        fake_api.fake.fail_next(RESIDENT, 45015)  # the fake refuses the next send, whatever its kind
        await wechat.say(LEADER, "接单 1")  # has a template: goes as a template message
        await eventually(lambda: bool(fake_api.fake.delivered(RESIDENT)))
        fake_api.fake.fail_next(RESIDENT, 45015)
        await wechat.say(LEADER, "进展 1 明天修")  # no template for progress: kept for the next reply
        (sent,) = fake_api.fake.delivered(RESIDENT)
        assert sent["msgtype"] == "template" and sent["body"]["template_id"] == "TPL-ACCEPT"
        assert sent["body"]["data"]["keyword1"]["value"] == "#1"
        assert "接单" in sent["body"]["data"]["first"]["value"]

        async def statuses() -> list[str]:
            async with session_factory(engine)() as session:
                rows = await session.scalars(
                    select(OutboxMessage.status)
                    .where(OutboxMessage.recipient == RESIDENT)
                    .order_by(OutboxMessage.id)
                )
                return list(rows.all())

        async with asyncio.timeout(5):
            while await statuses() != ["sent", "deferred"]:  # noqa: ASYNC110 - the worker writes it
                await asyncio.sleep(0.02)
        assert "明天修" in ((await wechat.say(RESIDENT, "查询")).content or "")
