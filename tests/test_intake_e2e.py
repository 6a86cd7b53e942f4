"""Intake a resident can trust, end to end through the real app on both backends.

Only real problems become orders; emergencies are answered first and recorded at once; the place keeps its
building; a voice WeChat could not recognise is kept for the report that follows.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers import texts
from storage.db import session_factory
from storage.models import InboundMessage, WorkOrder, WorkOrderEvent
from tests.conftest import Start
from tests.fake_helpers import FakeServer, eventually
from tests.wechat_sim import voice_xml

R = "oResidentGate"
LEADER = "oLeader-xiaotang-1"
ADMIN = "oAdmin-xiaotang"
DISTRICT = "oDistrict001"


async def all_orders(engine: AsyncEngine) -> list[WorkOrder]:
    async with session_factory(engine)() as session:
        return list((await session.scalars(select(WorkOrder).order_by(WorkOrder.id))).all())


async def events(engine: AsyncEngine, number: int) -> list[tuple[str, str | None]]:
    async with session_factory(engine)() as session:
        rows = await session.scalars(
            select(WorkOrderEvent).where(WorkOrderEvent.order_id == number).order_by(WorkOrderEvent.id)
        )
        return [(e.kind, e.to_state) for e in rows]


def pushed(fake_api: FakeServer, openid: str) -> list[str]:
    return [m["content"] for m in fake_api.fake.delivered(openid) if m["msgtype"] == "text"]


# (message, what it is, the start of the answer) — none of them opens an order.
NOT_REPORTS = [
    ("你好", "greeting", texts.GREETING),
    ("在吗在吗", "greeting", texts.GREETING),
    ("谢谢", "thanks", "不客气"),
    ("謝謝你們", "thanks", "不客气"),
    ("辛苦了", "thanks", None),
    ("好的", "confirm", texts.CHAT_REPLIES["confirm"]),
    ("嗯嗯收到", "confirm", texts.CHAT_REPLIES["confirm"]),
    ("👍", "emoji", texts.CHAT_REPLIES["emoji"]),
    ("[表情]", "emoji", texts.CHAT_REPLIES["emoji"]),
    ("？？？", "punctuation", texts.CHAT_REPLIES["punctuation"]),
    ("1", "digits", texts.MENU),
    ("２３", "digits", texts.MENU),
    ("你是谁", "bot", texts.CHAT_REPLIES["bot"]),
    ("人工客服", "bot", texts.CHAT_REPLIES["bot"]),
    ("那个这个怎么用啊", "bot", texts.CHAT_REPLIES["bot"]),
    ("今天天气不错", "chatter", texts.CHAT_REPLIES["chatter"]),
    ("测试一下", "chatter", texts.CHAT_REPLIES["chatter"]),
    ("停水通知收到了", "done", texts.CHAT_REPLIES["done"]),
    ("灯已经修好了，谢谢", "done", texts.CHAT_REPLIES["done"]),
    ("万辉国际城", "place", texts.PLACE_ONLY),
    ("筱塘新村3号楼2单元", "place", texts.PLACE_ONLY),
    ("东风路128号", "place", texts.PLACE_UNKNOWN_ONLY),
]


@pytest.mark.usefixtures("backend")
class TestOnlyRealProblemsBecomeOrders:
    @pytest.mark.parametrize(("message", "kind", "answer"), NOT_REPORTS)
    async def test_chat_gets_a_short_answer_and_no_order(
        self,
        start: Start,
        engine: AsyncEngine,
        fake_api: FakeServer,
        message: str,
        kind: str,
        answer: str | None,
    ) -> None:
        _, wechat = await start()
        reply = (await wechat.say(R, message)).content or ""
        if answer is not None:
            assert reply.startswith(answer), (kind, reply)
        assert reply and len(reply.encode()) <= 2048
        assert await all_orders(engine) == []
        assert pushed(fake_api, LEADER) == [] and pushed(fake_api, ADMIN) == []

    async def test_a_digit_gets_the_menu_and_the_menu_answers(
        self, start: Start, engine: AsyncEngine
    ) -> None:
        _, wechat = await start()
        assert (await wechat.say(R, "1")).content == texts.MENU
        assert (await wechat.say(R, "2")).content == texts.NO_ORDERS
        assert (await wechat.say(R, "3")).content == texts.MENU
        assert (await wechat.say(R, "1")).content == texts.MENU_REPORT
        assert await all_orders(engine) == []

    async def test_a_bare_place_waits_for_the_problem_and_can_be_bound(
        self, start: Start, engine: AsyncEngine
    ) -> None:
        _, wechat = await start()
        assert (await wechat.say(R, "筱塘新村3号楼")).content == texts.PLACE_ONLY
        reply = (await wechat.say(R, "楼道灯坏了好几天")).content or ""
        assert reply.startswith("已受理，工单号 #1（设施维修）")
        (order,) = await all_orders(engine)
        assert (order.unit_id, order.place_detail) == ("xiaotang-1", "3号楼")
        assert (await wechat.say(R, "龙桥花园")).content == texts.PLACE_ONLY
        bound = (await wechat.say(R, "绑定")).content or ""
        assert bound.startswith("已绑定：龙桥花园")

    async def test_a_real_problem_that_starts_like_chat_is_a_report(
        self, start: Start, engine: AsyncEngine
    ) -> None:
        _, wechat = await start()
        reply = (await wechat.say(R, "谢谢，但是筱塘新村的路灯还是不亮")).content or ""
        assert reply.startswith("已受理，工单号 #1")
        assert len(await all_orders(engine)) == 1


@pytest.mark.usefixtures("backend")
class TestEmergenciesFirst:
    async def test_an_urgent_report_with_no_place_is_advised_recorded_alerted_then_dispatched(
        self, start: Start, engine: AsyncEngine, fake_api: FakeServer
    ) -> None:
        _, wechat = await start()
        first = (await wechat.say(R, "3号楼有燃气泄漏的味道")).content or ""
        assert first.startswith(texts.EMERGENCY["gas"]) and "119" in first.splitlines()[0]
        assert "紧急工单 #1" in first and "地点" in first
        (order,) = await all_orders(engine)
        assert (order.urgent, order.state, order.unit_id, order.category) == (True, "new", None, "消防应急")
        # Nobody is bound: the district's admins are alerted at once, with 地点待确认.
        await eventually(lambda: len(pushed(fake_api, DISTRICT)) == 1)
        assert "地点待确认" in pushed(fake_api, DISTRICT)[0] and "#1" in pushed(fake_api, DISTRICT)[0]

        again = (await wechat.say(R, "快点来人啊燃气味越来越重了")).content or ""
        assert again.startswith(texts.EMERGENCY["gas"]) and "紧急工单 #1" in again
        assert len(await all_orders(engine)) == 1

        placed = (await wechat.say(R, "筱塘新村")).content or ""
        assert placed.startswith(texts.EMERGENCY["gas"])
        assert "工单号 #1" in placed and "筱塘社区第一网格党支部" in placed
        (order,) = await all_orders(engine)
        assert (order.state, order.unit_id, order.assignee_openid) == ("assigned", "xiaotang-1", LEADER)
        assert order.place_detail == "3号楼"
        await eventually(lambda: len(pushed(fake_api, LEADER)) == 1)
        assert "地点：筱塘新村3号楼" in pushed(fake_api, LEADER)[0] and "紧急" in pushed(fake_api, LEADER)[0]
        kinds = [kind for kind, _ in await events(engine, 1)]
        assert kinds[0] == "create" and "assign" in kinds and kinds.count("follow") == 2

    async def test_a_bound_resident_alerts_the_community_of_the_bound_grid(
        self, start: Start, engine: AsyncEngine, fake_api: FakeServer
    ) -> None:
        _, wechat = await start()
        await wechat.say(R, "绑定 筱塘新村5号楼")
        first = (await wechat.say(R, "有人晕倒了叫不醒")).content or ""
        assert first.startswith(texts.EMERGENCY["medical"]) and "120" in first
        (order,) = await all_orders(engine)
        assert (order.state, order.unit_id) == ("new", "xiaotang-1")
        await eventually(lambda: len(pushed(fake_api, ADMIN)) == 1)
        assert "地点待确认" in pushed(fake_api, ADMIN)[0] and "筱塘社区第一网格" in pushed(fake_api, ADMIN)[0]
        assert pushed(fake_api, DISTRICT) == []

    @pytest.mark.parametrize(
        ("words", "kind", "number"),
        [
            ("筱塘新村2号楼楼道着火了", "fire", "119"),
            ("筱塘新村门口有人拿着刀在砍人", "police", "110"),
            ("筱塘新村5栋有个老人摔倒了起不来", "medical", "120"),
            ("筱塘新村地下室水管爆了水一直往外喷", "water", "物业"),
        ],
    )
    async def test_the_first_words_say_what_to_do_and_the_right_number(
        self, start: Start, engine: AsyncEngine, words: str, kind: str, number: str
    ) -> None:
        _, wechat = await start()
        reply = (await wechat.say(R, words)).content or ""
        first_line = reply.splitlines()[0]
        assert first_line == texts.EMERGENCY[kind] and number in first_line
        assert "工单号 #1" in reply
        (order,) = await all_orders(engine)
        assert order.urgent and order.state == "assigned"
        again = (await wechat.say(R, words)).content or ""  # the same report again: the advice again
        assert again.splitlines()[0] == texts.EMERGENCY[kind] and "#1" in again
        assert len(await all_orders(engine)) == 1


@pytest.mark.usefixtures("backend")
class TestThePlaceKeepsItsDetail:
    async def test_the_estate_from_the_answer_and_the_building_from_the_report(
        self, start: Start, engine: AsyncEngine
    ) -> None:
        _, wechat = await start()
        assert (await wechat.say(R, "8栋2单元楼道灯坏了")).content == texts.ASK_PLACE
        await wechat.say(R, "龙桥花园")
        (order,) = await all_orders(engine)
        assert (order.unit_id, order.place_detail) == ("xiaotang-2", "8栋2单元")

    async def test_the_building_of_the_report_beats_the_bound_one(
        self, start: Start, engine: AsyncEngine
    ) -> None:
        _, wechat = await start()
        await wechat.say(R, "绑定 筱塘新村3号楼")
        await wechat.say(R, "5号楼的电梯又坏了")
        await wechat.say(R, "单元门口的垃圾没人收")
        first, second = await all_orders(engine)
        assert (first.unit_id, first.place_detail) == ("xiaotang-1", "5号楼")
        assert second.place_detail == "3号楼"

    async def test_a_road_and_number(self, start: Start, engine: AsyncEngine) -> None:
        _, wechat = await start()
        await wechat.say(R, "南门路12号门口井盖松动了")
        (order,) = await all_orders(engine)
        assert (order.unit_id, order.place_detail) == ("xiaotang-1", "12号")


@pytest.mark.usefixtures("backend")
class TestVoiceWithoutRecognition:
    async def test_the_voice_is_kept_and_the_report_that_follows_carries_it(
        self, start: Start, engine: AsyncEngine, fake_api: FakeServer
    ) -> None:
        _, wechat = await start()
        ask = (await wechat.send(voice_xml(R, ""))).content or ""
        assert ask == texts.VOICE_UNRECOGNISED and "\n" not in ask
        assert await all_orders(engine) == []
        reply = (await wechat.say(R, "筱塘新村3号楼门口垃圾堆了好几天")).content or ""
        assert reply.startswith("已受理，工单号 #1（环境卫生）")
        (order,) = await all_orders(engine)
        assert order.media == [{"kind": "voice", "media_id": "media-voice-1", "format": "amr"}]
        async with session_factory(engine)() as session:
            voice = await session.scalar(select(InboundMessage).where(InboundMessage.kind == "voice"))
        assert voice is not None and voice.order_id == 1
        await eventually(lambda: len(pushed(fake_api, LEADER)) == 1)
        assert "附语音 1 条" in pushed(fake_api, LEADER)[0]

    async def test_a_numbered_category_answers_it(self, start: Start, engine: AsyncEngine) -> None:
        _, wechat = await start()
        await wechat.say(R, "绑定 龙桥花园")
        await wechat.send(voice_xml(R, ""))
        reply = (await wechat.say(R, "4")).content or ""
        assert reply.startswith("已受理，工单号 #1（水电燃气）")
        (order,) = await all_orders(engine)
        assert order.text == texts.VOICE_ONLY_TEXT and order.unit_id == "xiaotang-2"
        assert order.media and order.media[0]["kind"] == "voice"

    async def test_a_recognised_voice_report_carries_its_voice_too(
        self, start: Start, engine: AsyncEngine
    ) -> None:
        _, wechat = await start()
        await wechat.send(voice_xml(R, "筱塘新村3号楼楼道灯坏了"))
        (order,) = await all_orders(engine)
        assert order.media == [{"kind": "voice", "media_id": "media-voice-1", "format": "amr"}]
