"""Random command sequences from random people through the real app (embedded backend): whatever is
sent, an order has one known state, every change of state has its event, and a closed or cancelled
order never changes again."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from dataclasses import replace
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.app import create_app
from bot.config import StorageSettings, demo_settings
from bot.demo.fake_wechat import create_fake_wechat_app
from handlers.workflow import FINAL_STATES, STATES
from storage.db import create_engine, session_factory
from storage.models import WorkOrder, WorkOrderEvent
from tests.conftest import DEMO_ORG
from tests.fake_helpers import APP_ID, APP_SECRET
from tests.wechat_sim import WeChatPlatform

RESIDENT = "oResidentZ"
PEOPLE = [
    RESIDENT,
    "oStranger",
    "oLeader-xiaotang-1",
    "oParty-xiaotang-1",
    "oLeader-xiaotang-2",
    "oAdmin-xiaotang",
]
COMMANDS = [
    "接单 1",
    "领单 1",
    "进展 1 已联系",
    "办结 1 已处理",
    "转派 1 筱塘社区第二网格",
    "退单 1 不归我们",
    "延期 1 2 等配件",
    "延期 1 5 材料未到",
    "撤销 1",
    "催办 1",
    "评价 1 满意",
    "评价 1 不满意",
    "派单 1 筱塘社区第一网格",
    "督办 1",
    "1",
    "3",
]


async def play(steps: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'g.db'}"
        fake = TestServer(create_fake_wechat_app(app_id=APP_ID, app_secret=APP_SECRET))
        await fake.start_server()
        base = demo_settings()
        wechat = replace(base.wechat, app_id=APP_ID, app_secret=APP_SECRET, api_base=str(fake.make_url("")))
        config = replace(
            base,
            demo=False,
            wechat=wechat,
            storage=StorageSettings(database_url=url),
            org=replace(base.org, file=str(DEMO_ORG)),
        )
        client = TestClient(TestServer(create_app(config)))
        await client.start_server()
        engine = create_engine(url)
        try:
            platform = WeChatPlatform(client)
            reply = await platform.say(RESIDENT, "筱塘新村3号楼楼道灯坏了")
            assert (reply.content or "").startswith("已受理，工单号 #1")
            state = "assigned"
            for who, text in steps:
                answer = await platform.say(who, text)
                assert answer.status == 200 and answer.content, (who, text)
                async with session_factory(engine)() as session:
                    order = await session.get(WorkOrder, 1)
                    events = (
                        await session.scalars(
                            select(WorkOrderEvent)
                            .where(WorkOrderEvent.order_id == 1)
                            .order_by(WorkOrderEvent.id)
                        )
                    ).all()
                assert order is not None and order.state in STATES
                changes = [e for e in events if e.from_state != e.to_state]
                assert changes[-1].to_state == order.state  # the latest change is the current state
                assert all(a.to_state == b.from_state for a, b in itertools.pairwise(changes))
                if state in FINAL_STATES:
                    assert order.state == state, f"{who}: {text} changed a {state} order"
                state = order.state
        finally:
            await engine.dispose()
            await client.close()
            await fake.close()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PEOPLE), st.sampled_from(COMMANDS)), min_size=1, max_size=12))
def test_random_command_sequences_keep_the_invariants(steps: list[tuple[str, str]]) -> None:
    asyncio.run(play(steps))
