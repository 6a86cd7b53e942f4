"""End to end through the real aiohttp app, on both backends, in all three WeChat modes."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import keys
from bot.app import create_app, freeze_startup_heap
from bot.config import Settings
from handlers import commands, texts
from handlers.context import Context
from handlers.incoming import Incoming
from storage.db import session_factory
from storage.models import InboundMessage, Person, Resident, WorkOrder
from storage.repo import record_inbound
from tests.conftest import Start
from tests.fake_helpers import Clock
from tests.wechat_sim import (
    event_xml,
    image_xml,
    location_xml,
    next_msg_id,
    text_xml,
    voice_xml,
)

MODES = ["plain", "compatible", "safe"]


async def inbound_rows(engine: AsyncEngine) -> list[InboundMessage]:
    async with session_factory(engine)() as session:
        return list((await session.scalars(select(InboundMessage).order_by(InboundMessage.id))).all())


def count_feeds(client: Any, delay: float = 0.0) -> list[str]:
    """Wrap the dispatcher's routing so the test sees each message a handler runs for (optionally slowly)."""
    dispatcher = client.app[keys.INBOX].dispatcher
    choose = dispatcher.route
    calls: list[str] = []

    def route(ctx: Context) -> Callable[[Context], Awaitable[str | None]]:
        handler = choose(ctx)

        async def counted(ctx: Context) -> str | None:
            calls.append(ctx.msg.dedupe_key)
            if delay:
                await asyncio.sleep(delay)
            return await handler(ctx)

        return counted

    dispatcher.route = route
    return calls


class TestConversation:
    @pytest.mark.parametrize("mode", MODES)
    async def test_subscribe_help_and_text(self, start: Start, engine: AsyncEngine, mode: str) -> None:
        _, wechat = await start(mode)
        welcome = await wechat.send(event_xml("oResident1", "subscribe"))
        assert welcome.status == 200
        assert welcome.content == texts.WELCOME
        assert "帮助" in welcome.content and "网格" in welcome.content

        helped = await wechat.say("oResident1", " 幫助 ")
        assert helped.content == commands.HELP_RESIDENT

        ack = await wechat.say("oResident1", "筱塘新村3号楼楼道灯坏了")
        assert ack.content is not None and ack.content.startswith("已受理，工单号 #1（设施维修）")
        assert "筱塘社区第一网格党支部" in ack.content
        assert ack.fields is not None and ack.fields["ToUserName"] == "oResident1"

        rows = await inbound_rows(engine)
        assert [(r.kind, r.text) for r in rows] == [
            ("event:subscribe", ""),
            ("text", "幫助"),
            ("text", "筱塘新村3号楼楼道灯坏了"),
        ]
        assert all(r.handled_at is not None for r in rows)
        assert rows[2].reply == ack.content and rows[2].order_id == 1

    async def test_every_kind_gets_a_fitting_answer(self, start: Start, engine: AsyncEngine) -> None:
        _, wechat = await start()
        assert (await wechat.send(voice_xml("oR1", "垃圾好几天没人收"))).content == texts.ASK_PLACE
        assert (await wechat.send(voice_xml("oR2", ""))).content == texts.VOICE_UNRECOGNISED
        assert (await wechat.send(image_xml("oR3"))).content == texts.IMAGE_RECEIVED
        assert (
            await wechat.send(location_xml("oR4", 25.43, 119.0, "筱塘"))
        ).content == texts.LOCATION_RECEIVED
        click = await wechat.send(event_xml("oR5", "CLICK", "MENU_X"))
        assert (click.status, click.body) == (200, "success")
        video = "<xml><ToUserName>gh</ToUserName><FromUserName>oR6</FromUserName><CreateTime>1</CreateTime>"
        video += f"<MsgType>video</MsgType><MediaId>m</MediaId><MsgId>{next_msg_id()}</MsgId></xml>"
        assert (await wechat.send(video)).content == texts.UNSUPPORTED
        assert (await wechat.say("oR7", "你好")).content == texts.GREETING
        kinds = [row.kind for row in await inbound_rows(engine)]
        assert kinds == ["voice", "voice", "image", "location", "event:click", "other", "text"]

    async def test_staff_get_the_staff_help(self, start: Start) -> None:
        _, wechat = await start()
        assert (await wechat.say("oLeader-xiaotang-1", "帮助")).content == commands.HELP_STAFF

    async def test_unsubscribe_is_remembered(self, start: Start, engine: AsyncEngine) -> None:
        _, wechat = await start()
        await wechat.send(event_xml("oR", "subscribe", create_time=1_789_999_990))
        gone = await wechat.send(event_xml("oR", "unsubscribe", create_time=1_789_999_995))
        assert gone.body == "success"
        async with session_factory(engine)() as session:
            resident = await session.get(Resident, "oR")
        assert resident is not None and resident.subscribed is False

    async def test_flooding_is_throttled_but_kept(self, start: Start, engine: AsyncEngine) -> None:
        _, wechat = await start()
        replies = [(await wechat.say("oFlood", f"第{i}条")).content for i in range(22)]
        assert replies[0] == texts.ASK_PLACE
        assert replies[1:20] == [texts.PLACE_NOT_FOUND] * 19
        assert replies[20:] == [texts.THROTTLED] * 2
        assert len(await inbound_rows(engine)) == 22


class TestRefusals:
    async def test_url_verification(self, start: Start) -> None:
        client, wechat = await start()
        query, _ = wechat.signed(text_xml("oR", "x"))
        good = await client.get("/wechat", params=query | {"echostr": "hello123"})
        assert (good.status, await good.text()) == (200, "hello123")
        bad = await client.get("/wechat", params=query | {"echostr": "hello123", "signature": "0" * 40})
        assert bad.status == 403

    @pytest.mark.parametrize("mode", MODES)
    async def test_bad_signature_is_403_and_nothing_is_stored(
        self, start: Start, engine: AsyncEngine, mode: str
    ) -> None:
        _, wechat = await start(mode)
        query, body = wechat.signed(text_xml("oR", "x"))
        query["signature"] = "0" * 40
        assert (await wechat.post(query, body)).status == 403
        if mode != "plain":
            query, body = wechat.signed(text_xml("oR", "x"))
            query["msg_signature"] = "0" * 40
            assert (await wechat.post(query, body)).status == 403
        assert await inbound_rows(engine) == []

    async def test_stale_timestamp_is_refused(self, start: Start, engine: AsyncEngine) -> None:
        clock = Clock()
        _, wechat = await start(clock=clock)
        query, body = wechat.signed(text_xml("oR", "x"))
        clock.now += 301
        assert (await wechat.post(query, body)).status == 403
        assert await inbound_rows(engine) == []

    async def test_oversized_body_is_413(self, start: Start, engine: AsyncEngine) -> None:
        _, wechat = await start()
        query, body = wechat.signed(text_xml("oR", "大" * 30_000))
        assert (await wechat.post(query, body)).status == 413
        assert await inbound_rows(engine) == []

    async def test_hostile_xml_is_400_and_nothing_is_stored(self, start: Start, engine: AsyncEngine) -> None:
        _, wechat = await start()
        query, _ = wechat.signed(text_xml("oR", "x"))
        bomb = '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        bomb += "<xml><ToUserName>g</ToUserName><FromUserName>oR</FromUserName><CreateTime>1</CreateTime>"
        bomb += "<MsgType>text</MsgType><Content>&b;</Content><MsgId>1</MsgId></xml>"
        for body in (bomb, "<xml><FromUserName>oR</FromUserName>", "<xml><MsgType>text</MsgType></xml>"):
            assert (await wechat.post(query, body)).status == 400
        assert await inbound_rows(engine) == []


class TestIdempotency:
    @pytest.mark.parametrize("mode", MODES)
    async def test_redelivery_gets_the_same_reply_once(
        self, start: Start, engine: AsyncEngine, mode: str
    ) -> None:
        client, wechat = await start(mode)
        calls = count_feeds(client)
        xml = text_xml("oR", "路灯不亮了", msg_id="9000001")
        replies = [await wechat.send(xml) for _ in range(3)]
        assert {r.content for r in replies} == {texts.ASK_PLACE}
        assert calls == ["9000001"]
        assert len(await inbound_rows(engine)) == 1

    async def test_concurrent_copies_are_handled_once_and_all_get_the_reply(
        self, start: Start, engine: AsyncEngine
    ) -> None:
        client, wechat = await start()
        calls = count_feeds(client, delay=0.3)
        xml = text_xml("oR", "下水道堵了", msg_id="9000002")
        replies = await asyncio.gather(*(wechat.send(xml) for _ in range(3)))
        assert [r.content for r in replies] == [texts.ASK_PLACE] * 3
        assert calls == ["9000002"]
        assert len(await inbound_rows(engine)) == 1

    async def test_events_dedupe_on_sender_and_create_time(self, start: Start, engine: AsyncEngine) -> None:
        client, wechat = await start()
        calls = count_feeds(client)
        xml = event_xml("oR", "subscribe", create_time=1_789_999_999)
        assert {(await wechat.send(xml)).content for _ in range(3)} == {texts.WELCOME}
        assert len(calls) == 1
        later = event_xml("oR", "subscribe", create_time=1_790_000_000)
        assert (await wechat.send(later)).content == texts.WELCOME
        assert len(calls) == 2

    async def test_after_a_restart_the_stored_reply_is_returned(
        self, start: Start, engine: AsyncEngine
    ) -> None:
        client, wechat = await start()
        xml = text_xml("oR", "电梯坏了", msg_id="9000003")
        first = await wechat.send(xml)
        await client.close()
        client2, wechat2 = await start(fresh_state=True)
        calls = count_feeds(client2)
        again = await wechat2.send(xml)
        assert again.content == first.content == texts.ASK_PLACE
        assert calls == []
        assert len(await inbound_rows(engine)) == 1

    async def test_a_message_stored_before_a_crash_is_handled_on_redelivery(
        self, start: Start, engine: AsyncEngine
    ) -> None:
        xml = text_xml("oR", "楼道堆满杂物", msg_id="9000004")
        async with session_factory(engine)() as session:  # what a process that died mid-handling left
            await record_inbound(
                session,
                channel="wechat",
                dedupe_key="9000004",
                sender="oR",
                kind="text",
                text="楼道堆满杂物",
                payload={},
                sent_at=Incoming("wechat", "oR", "gh", "text", 1_790_000_000).sent_at,
                received_at=Incoming("wechat", "oR", "gh", "text", 1_790_000_000).sent_at,
            )
        client, wechat = await start(fresh_state=True)
        calls = count_feeds(client)
        assert (await wechat.send(xml)).content == texts.ASK_PLACE
        assert calls == ["9000004"]
        rows = await inbound_rows(engine)
        assert len(rows) == 1 and rows[0].reply == texts.ASK_PLACE

    async def test_a_failing_handler_keeps_the_message_and_retries_on_redelivery(
        self, start: Start, engine: AsyncEngine
    ) -> None:
        client, wechat = await start()
        dispatcher = client.app[keys.INBOX].dispatcher
        original = dispatcher.feed
        failures = [RuntimeError("database hiccup")]

        async def flaky(msg: Incoming, inbound_id: int) -> str | None:
            if failures:
                raise failures.pop()
            return await original(msg, inbound_id)

        dispatcher.feed = flaky
        xml = text_xml("oR", "井盖松动了", msg_id="9000005")
        assert (await wechat.send(xml)).content == texts.BUSY
        rows = await inbound_rows(engine)
        assert len(rows) == 1 and rows[0].handled_at is None
        assert (await wechat.send(xml)).content == texts.ASK_PLACE
        assert (await inbound_rows(engine))[0].handled_at is not None
        assert client.app[keys.METRICS].value("gridbot_handler_errors_total") == 1


class TestOperations:
    async def test_healthz_and_metrics(self, start: Start) -> None:
        client, wechat = await start()
        health = await client.get("/healthz")
        assert health.status == 200
        assert await health.json() == {"database": True, "state": True}
        await wechat.say("oR", "你好")
        query, body = wechat.signed(text_xml("oR", "x"))
        await wechat.post(query | {"signature": "bad"}, body)
        metrics = await (await client.get("/metrics")).text()
        assert 'gridbot_requests_total{endpoint="wechat",status="200"} 1' in metrics
        assert 'gridbot_requests_total{endpoint="wechat",status="403"} 1' in metrics
        assert "gridbot_request_seconds_count 1" in metrics

    async def test_a_served_app_keeps_its_start_up_objects_out_of_full_collections(
        self, settings: Settings, aiohttp_client: Any
    ) -> None:
        gc.unfreeze()
        try:
            client = await aiohttp_client(freeze_startup_heap(create_app(settings)))
            assert (await client.get("/healthz")).status == 200
            # The org snapshot, loaded at start, is among what a full collection no longer walks.
            directory = client.app[keys.SERVICES].directory
            assert gc.get_freeze_count() > 10_000
            assert not any(o is directory for o in gc.get_objects())
        finally:
            gc.unfreeze()

    async def test_demo_org_is_loaded_at_start(self, start: Start, engine: AsyncEngine) -> None:
        await start()
        async with session_factory(engine)() as session:
            leaders = await session.scalar(select(func.count()).where(Person.role == "grid_leader"))
        assert leaders == 10


async def test_copies_reaching_two_server_processes_are_handled_once(
    start: Start, engine: AsyncEngine, backend: str
) -> None:
    """Two app instances sharing PostgreSQL + Redis (as two worker processes would): one handling."""
    if backend != "server":
        pytest.skip("several processes need PostgreSQL + Redis; the embedded backend is one process")
    first, wechat1 = await start()
    second, wechat2 = await start()
    seen1, seen2 = count_feeds(first, delay=0.2), count_feeds(second, delay=0.2)
    xml = text_xml("oR", "筱塘新村路灯不亮", msg_id="9000099")
    replies = await asyncio.gather(wechat1.send(xml), wechat2.send(xml), wechat1.send(xml), wechat2.send(xml))
    assert len({r.content for r in replies}) == 1 and (replies[0].content or "").startswith(
        "已受理，工单号 #1"
    )
    assert len(seen1) + len(seen2) == 1
    async with session_factory(engine)() as session:
        orders = await session.scalar(select(func.count()).select_from(WorkOrder))
    assert orders == 1
