"""One person's messages in order: two different messages from one sender are handled one after the other,
on both backends and across two app instances (processes) sharing the database and the state store, so a
pending question, a rating or a place answer is read and settled once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers import texts
from storage.db import session_factory
from storage.models import WorkOrder, WorkOrderEvent
from storage.state import MemoryState, StateStore
from tests.conftest import Start

R = "oResidentOrder"
LEADER = "oLeader-xiaotang-1"


async def count(engine: AsyncEngine, model: type, *where: object) -> int:
    async with session_factory(engine)() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture(autouse=True)
def reading(state: StateStore, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Each message pauses after reading its pending question, as a busy server might: without the
    per-person lock two messages would then both read the same question. The event is set once the
    first message has read it."""
    admit = state.admit
    first_read = asyncio.Event()

    async def slow_admit(user: str, limit: int, window: float) -> tuple[bool, dict | None]:
        result = await admit(user, limit, window)
        first_read.set()
        await asyncio.sleep(0.05)
        return result

    monkeypatch.setattr(state, "admit", slow_admit)
    return first_read


@pytest.mark.usefixtures("backend")
class TestOnePersonAtATime:
    async def test_two_answers_to_the_place_question_open_one_order(
        self, start: Start, engine: AsyncEngine
    ) -> None:
        _, first = await start()
        _, second = await start()  # another process on the same database and state store
        assert (await first.say(R, "楼道灯坏了好几天")).content == texts.ASK_PLACE
        a, b = await asyncio.gather(first.say(R, "筱塘新村"), second.say(R, "龙桥花园"))
        replies = [a.content or "", b.content or ""]
        assert sum(reply.startswith("已受理") for reply in replies) == 1, replies
        assert await count(engine, WorkOrder) == 1

    async def test_one_and_three_to_one_rating_request_rate_it_once(
        self, start: Start, engine: AsyncEngine
    ) -> None:
        _, first = await start()
        _, second = await start()
        await first.say(R, "筱塘新村3号楼楼道灯坏了")
        await first.say(LEADER, "接单 1")
        await first.say(LEADER, "办结 1 已更换灯泡")
        a, b = await asyncio.gather(first.say(R, "1"), second.say(R, "3"))
        rated = await count(engine, WorkOrderEvent, WorkOrderEvent.kind.in_(("rate", "reopen")))
        assert rated == 1, (a.content, b.content)
        # The second digit finds the question answered: it is a bare digit (the menu), not a refusal.
        replies = sorted([a.content or "", b.content or ""], key=lambda reply: reply == texts.MENU)
        assert replies[1] == texts.MENU, replies
        assert replies[0] in (texts.RATE_THANKS.format(rating="满意", n=1), texts.RATE_REOPENED.format(n=1))

    async def test_a_cancel_right_after_a_report_cancels_its_question(
        self, start: Start, engine: AsyncEngine, state: StateStore, reading: asyncio.Event
    ) -> None:
        _, first = await start()
        _, second = await start()
        report = asyncio.create_task(first.say(R, "楼道里堆满了杂物"))
        await reading.wait()  # the report is being handled when the cancel arrives
        cancel = await second.say(R, "取消")
        assert (await report).content == texts.ASK_PLACE
        assert cancel.content == texts.REPORT_CANCELLED
        assert await state.get_pending(f"wechat:{R}") is None
        assert await count(engine, WorkOrder) == 0

    async def test_the_locks_are_forgotten(self, start: Start, state: StateStore) -> None:
        _, wechat = await start()
        await asyncio.gather(*(wechat.say(f"oMany{i}", "你好") for i in range(30)))
        if isinstance(state, MemoryState):
            assert state.locks_held == 0
