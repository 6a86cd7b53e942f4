"""双报到 end to end on both backends: an in-service Party member registers with `报到`, the community
admin agrees, and the new member can 领单 at once; the registration survives `gridbot org import`, other
processes take it in on their next org reload, `gridbot org show` lists it with its source, and
`gridbot report` / `统计` count the orders Party members claimed."""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import keys
from bot.config import Settings
from handlers import texts
from handlers.directory import Directory
from storage.db import session_factory
from storage.models import Registration
from tests.conftest import DEMO_ORG, Start
from tests.fake_helpers import Clock, FakeServer, eventually
from tests.reach_helpers import cli_config, run_cli
from tests.wechat_sim import WeChatPlatform

pytestmark = pytest.mark.usefixtures("backend")

VOLUNTEER = "oVolunteer01"
ADMIN = "oAdmin-xiaotang"
OTHER_ADMIN = "oAdmin-mulan"
LEADER = "oLeader-xiaotang-1"
RESIDENT = "oResidentR"


async def say(wechat: WeChatPlatform, who: str, text: str) -> str:
    return (await wechat.say(who, text)).content or ""


def inbox(fake_api: FakeServer, openid: str) -> list[str]:
    return [m["content"] for m in fake_api.fake.delivered(openid)]


async def registration(engine: AsyncEngine, number: int) -> Registration:
    async with session_factory(engine)() as session:
        row = await session.get(Registration, number)
    assert row is not None
    return row


async def test_register_approve_claim_and_count(
    start: Start,
    engine: AsyncEngine,
    settings: Settings,
    fake_api: FakeServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = Clock(time.time())
    client, wechat = await start(clock=clock)
    watcher = client.app[keys.ORG_WATCH]
    watcher.stop()  # this test runs the reloads itself
    assert (await say(wechat, RESIDENT, "筱塘新村5号楼门禁坏了")).startswith("已受理，工单号 #1")

    assert await say(wechat, VOLUNTEER, "报到 筱塘社区 第一网格 张三") == texts.REGISTERED.format(
        n=1, where="筱塘社区第一网格"
    )
    await eventually(
        lambda: any("【党员报到 #1】张三" in t and "同意 1" in t for t in inbox(fake_api, ADMIN))
    )
    assert await say(wechat, VOLUNTEER, "报到 筱塘社区") == texts.REGISTER_PENDING.format(n=1)
    # Not staff yet; only the community's own admin decides.
    assert await say(wechat, VOLUNTEER, "领单 1") == texts.STAFF_ONLY.format(word="领单")
    assert await say(wechat, LEADER, "同意 1") == texts.ADMIN_ONLY.format(word="同意")
    assert await say(wechat, OTHER_ADMIN, "同意 1") == texts.REGISTRATION_NOT_YOURS.format(n=1)
    assert await say(wechat, ADMIN, "同意") == "请写上报到申请号，例如：同意 3"
    assert await say(wechat, ADMIN, "同意 9") == texts.NO_SUCH_REGISTRATION.format(n=9)

    assert await say(wechat, ADMIN, "同意 1") == texts.APPROVED.format(
        n=1, who="张三", grid="筱塘社区第一网格"
    )
    await eventually(lambda: any("报到已通过" in t and "领单 号" in t for t in inbox(fake_api, VOLUNTEER)))
    assert await say(wechat, ADMIN, "同意 1") == texts.REGISTRATION_DECIDED.format(n=1, state="同意")
    # Grid staff at once: 待办 answers (nothing assigned to them), and they claim the grid's order.
    assert await say(wechat, VOLUNTEER, "待办") == "您目前没有待办工单。"
    assert await say(wechat, VOLUNTEER, "领单 1") == texts.CLAIMED.format(n=1)
    await eventually(lambda: any("党员张三" in t for t in inbox(fake_api, RESIDENT)))
    assert await say(wechat, VOLUNTEER, "报到 筱塘社区") == texts.REGISTER_DONE.format(
        grid="筱塘社区第一网格"
    )

    # Every other process reloads its snapshot (the revision moved) and finds the new member there.
    assert await watcher.run_once() == 1
    member = client.app[keys.SERVICES].directory.person(VOLUNTEER)
    assert member is not None and (member.role, member.unit_id, member.registration) == (
        "party_member",
        "xiaotang-1",
        1,
    )

    # `gridbot org import` of the org file does not erase them; org show lists them with the source.
    config = str(cli_config(tmp_path / "config.toml", settings))
    code, out, _ = await run_cli(capsys, "org", "import", str(DEMO_ORG), "-c", config)
    assert code == 0 and "本次变更 0 项" in out
    async with session_factory(engine)() as session:
        assert (await Directory.load(session)).person(VOLUNTEER) == member
    code, out, _ = await run_cli(capsys, "org", "show", "-c", config)
    assert code == 0
    assert f"党员: 张三 ({VOLUNTEER}) · 报到 #1" in out
    assert "党员: 王建国 (oParty-xiaotang-1) · 组织文件" in out
    assert (
        out.index("筱塘社区第一网格 [xiaotang-1]") < out.index(f"({VOLUNTEER})") < out.index("[xiaotang-2]")
    )

    # 党员领单 is counted per unit: in the report (text and CSV) and in 统计.
    code, out, _ = await run_cli(capsys, "report", "-c", config)
    assert code == 0
    claimed = out[out.index("党员领单") :].splitlines()
    assert [re.sub(r"\s+", " ", line.strip()) for line in claimed[1:]] == [
        "城厢区 1",
        "龙桥街道 1",
        "筱塘社区 1",
        "筱塘社区第一网格 1",
    ]
    code, out, _ = await run_cli(capsys, "report", "--format", "csv", "--unit", "xiaotang", "-c", config)
    rows = {row["unit_id"]: row["party_claims"] for row in csv.DictReader(io.StringIO(out))}
    assert (rows["xiaotang"], rows["xiaotang-1"], rows["xiaotang-2"]) == ("1", "1", "0")
    clock.advance(60)  # 统计 counts what happened before now
    assert "党员领单 1 单" in await say(wechat, ADMIN, "统计 今日")


async def test_refuse_then_register_again_and_approve_into_a_named_grid(
    start: Start, engine: AsyncEngine, fake_api: FakeServer
) -> None:
    _, wechat = await start()
    assert await say(wechat, "oStaffless", "报到") == "请写上社区名称，例如：报到 筱塘社区 第一网格 张三"
    unknown = await say(wechat, "oStaffless", "报到 火星社区")
    assert unknown.startswith("没有找到“火星社区”") and "筱塘社区" in unknown
    assert await say(wechat, LEADER, "报到 筱塘社区") == texts.REGISTER_STAFF.format(
        unit="筱塘社区第一网格", role="网格长"
    )
    # Without a grid (and without a name): the admin must name the grid.
    assert await say(wechat, VOLUNTEER, "报到 筱塘") == texts.REGISTERED.format(n=1, where="筱塘社区")
    await eventually(lambda: any("同意 1 网格名" in t and "尾号" in t for t in inbox(fake_api, ADMIN)))
    assert await say(wechat, ADMIN, "同意 1") == texts.APPROVE_NEEDS_GRID.format(n=1, example="第一网格")
    assert (await say(wechat, ADMIN, "同意 1 第九网格")).startswith("没有找到“第九网格”")
    assert await say(wechat, ADMIN, "拒绝 1 请先到社区党委登记") == texts.REJECTED.format(n=1)
    await eventually(lambda: any("未通过：请先到社区党委登记" in t for t in inbox(fake_api, VOLUNTEER)))
    refused = await registration(engine, 1)
    assert (refused.status, refused.active_key, refused.decided_by) == ("rejected", None, ADMIN)
    # Refused, they may register again; the admin places them in another grid than asked.
    assert await say(wechat, VOLUNTEER, "报到 筱塘社区第一网格 李四") == texts.REGISTERED.format(
        n=2, where="筱塘社区第一网格"
    )
    assert await say(wechat, ADMIN, "同意 2 第二网格") == texts.APPROVED.format(
        n=2, who="李四", grid="筱塘社区第二网格"
    )
    approved = await registration(engine, 2)
    assert (approved.status, approved.grid_id) == ("approved", "xiaotang-2")
    assert await say(wechat, VOLUNTEER, "领单 1") == texts.NO_SUCH_ORDER.format(n=1)


async def test_an_approved_registration_can_be_withdrawn(start: Start, engine: AsyncEngine) -> None:
    client, wechat = await start()
    watcher = client.app[keys.ORG_WATCH]
    watcher.stop()
    assert (await say(wechat, RESIDENT, "筱塘新村5号楼门禁坏了")).startswith("已受理")
    await say(wechat, VOLUNTEER, "报到 筱塘社区 第一网格 王五")
    await say(wechat, ADMIN, "同意 1")
    assert await watcher.run_once() == 1
    withdrawn = await say(wechat, ADMIN, "拒绝 1 已搬离本社区")
    assert withdrawn.startswith("已撤销 #1 的报到：王五不再是报到党员")
    assert await say(wechat, VOLUNTEER, "领单 1") == texts.STAFF_ONLY.format(word="领单")
    assert await watcher.run_once() == 1  # the others drop them on their next reload
    assert client.app[keys.SERVICES].directory.person(VOLUNTEER) is None
    row = await registration(engine, 1)
    assert (row.status, row.active_key, row.note) == ("rejected", None, "已搬离本社区")
    assert await say(wechat, ADMIN, "拒绝 1") == texts.REGISTRATION_DECIDED.format(n=1, state="拒绝或撤销")
    # The file's own Party members are never dropped this way.
    client.app[keys.SERVICES].directory.drop_registered("oParty-xiaotang-1")
    assert client.app[keys.SERVICES].directory.person("oParty-xiaotang-1") is not None
