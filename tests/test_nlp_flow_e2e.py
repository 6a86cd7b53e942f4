"""The NLP in the conversation, end to end on both backends: an unsure classifier asks the resident to
pick the category; a second report of the same problem joins the open order."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from handlers import texts
from nlp.similarity import similarity
from storage.db import session_factory
from storage.models import OrderFollower, WorkOrder
from tests.conftest import Start
from tests.fake_helpers import FakeServer, eventually

A, B, C = "oResidentA", "oResidentB", "oResidentC"
LEADER = "oLeader-xiaotang-1"

# Three labels tie on 灯: the classifier cannot choose, so the resident is asked.
UNSURE_RULES = """
[settings]
fallback = "其他"
min_score = 1.0
temperature = 0.5

[label."设施维修"]
responder = "grid"
keywords = { "灯" = 2.0 }

[label."环境卫生"]
responder = "grid"
keywords = { "灯" = 2.0 }

[label."绿化园林"]
responder = "grid"
keywords = { "灯" = 2.0, "树" = 3.0 }

[label."其他"]
responder = "grid"
keywords = {}
"""


def inbox(fake_api: FakeServer, openid: str) -> list[str]:
    return [m["content"] for m in fake_api.fake.delivered(openid)]


async def orders(engine: AsyncEngine) -> list[WorkOrder]:
    async with session_factory(engine)() as session:
        return list((await session.scalars(select(WorkOrder).order_by(WorkOrder.id))).all())


@pytest.mark.usefixtures("backend")
class TestClarifyingQuestion:
    @pytest.fixture
    def unsure(self, tmp_path: Path) -> object:
        rules = tmp_path / "unsure.toml"
        rules.write_text(UNSURE_RULES, encoding="utf-8")

        def configure(settings: Settings) -> Settings:
            return replace(settings, nlp=replace(settings.nlp, rules=str(rules)))

        return configure

    async def test_the_resident_picks_from_numbered_choices(
        self, start: Start, engine: AsyncEngine, unsure: object
    ) -> None:
        _, wechat = await start(configure=unsure)
        question = (await wechat.say(A, "筱塘新村门口的灯晚上一闪一闪")).content or ""
        assert question.startswith("请问您反映的是哪一类问题？回复数字：")
        lines = question.splitlines()[1:-1]
        assert [line.split(" ", 1)[0] for line in lines] == ["1", "2", "3", "4"]
        assert {line.split(" ", 1)[1] for line in lines[:3]} == {"设施维修", "环境卫生", "绿化园林"}
        assert lines[3] == "4 其他"
        assert await orders(engine) == []
        again = (await wechat.say(A, "不清楚")).content or ""
        assert again == question  # not a choice: asked again, nothing guessed
        picked = lines[1].split(" ", 1)[1]
        answer = (await wechat.say(A, "2")).content or ""
        assert answer.startswith(f"已受理，工单号 #1（{picked}）")
        (order,) = await orders(engine)
        assert (order.category, order.unit_id) == (picked, "xiaotang-1")
        assert order.text == "筱塘新村门口的灯晚上一闪一闪"

    async def test_a_sure_classification_is_not_questioned(
        self, start: Start, engine: AsyncEngine, unsure: object
    ) -> None:
        _, wechat = await start(configure=unsure)
        assert ((await wechat.say(A, "筱塘新村门口的树倒了")).content or "").startswith(
            "已受理，工单号 #1（绿化园林）"
        )

    async def test_the_question_can_be_cancelled(
        self, start: Start, engine: AsyncEngine, unsure: object
    ) -> None:
        _, wechat = await start(configure=unsure)
        await wechat.say(A, "筱塘新村的灯有问题")
        assert (await wechat.say(A, "取消")).content == texts.REPORT_CANCELLED
        assert await orders(engine) == []


@pytest.mark.usefixtures("backend")
class TestDuplicates:
    async def test_a_second_report_joins_the_open_order_and_hears_its_progress(
        self, start: Start, engine: AsyncEngine, fake_api: FakeServer
    ) -> None:
        _, wechat = await start()
        assert ((await wechat.say(A, "筱塘新村3号楼门口的路灯不亮了")).content or "").startswith(
            "已受理，工单号 #1"
        )
        linked = (await wechat.say(B, "筱塘小区3号楼路灯坏了，晚上一片黑")).content
        assert linked == texts.DUPLICATE_LINKED.format(n=1, category="设施维修")
        assert (await wechat.say(A, "筱塘新村3号楼的路灯还是不亮")).content == texts.ALREADY_REPORTED.format(
            n=1
        )
        other_building = (await wechat.say(C, "筱塘新村5号楼门口路灯不亮")).content or ""
        assert other_building.startswith("已受理，工单号 #2")
        assert len(await orders(engine)) == 2
        async with session_factory(engine)() as session:
            followers = await session.scalar(select(func.count()).select_from(OrderFollower))
        assert followers == 1

        await wechat.say(LEADER, "接单 1")
        await eventually(lambda: len(inbox(fake_api, A)) == 1 and len(inbox(fake_api, B)) == 1)
        await wechat.say(LEADER, "办结 1 已更换灯泡")
        await eventually(lambda: len(inbox(fake_api, A)) == 2 and len(inbox(fake_api, B)) == 2)
        assert "1 满意" in inbox(fake_api, A)[1]
        assert (
            inbox(fake_api, B)[1].startswith("您关注的工单 #1 已办结") and "满意" not in inbox(fake_api, B)[1]
        )
        assert "#1" in ((await wechat.say(B, "查询")).content or "")
        assert "设施维修" in ((await wechat.say(B, "查询 1")).content or "")

    async def test_an_unrelated_problem_in_the_same_place_is_a_new_order(
        self, start: Start, engine: AsyncEngine
    ) -> None:
        _, wechat = await start()
        await wechat.say(A, "筱塘新村电梯坏了")
        reply = (await wechat.say(B, "筱塘新村井盖坏了")).content or ""
        assert reply.startswith("已受理，工单号 #2")


def test_similarity_ignores_places_numbers_and_punctuation() -> None:
    names = ["筱塘新村"]
    assert similarity("筱塘新村3号楼楼道灯坏了", "5号楼，楼道灯坏了！", names) >= 0.8
    assert similarity("楼道灯坏了", "电梯不动了", names) == 0.0
    assert similarity("", "楼道灯坏了", names) == 0.0
