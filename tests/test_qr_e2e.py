"""扫码报事 end to end on both backends: `gridbot qr` asks the fake WeChat API for a permanent code per
place and prints sheets; the codes decode back (zbarimg) to the URLs of their scenes; a scan binds the
resident to the place and the next report opens there without asking where."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from handlers import texts
from handlers.scan import place_scene
from storage.db import session_factory
from storage.models import InboundMessage, Resident, WorkOrder
from tests.conftest import Start
from tests.fake_helpers import FakeServer
from tests.reach_helpers import cli_config, decode_qr, pdf_pages, run_cli
from tests.wechat_sim import event_xml

pytestmark = pytest.mark.usefixtures("backend")

RESIDENT = "oScanner01"
XIAOTANG_1 = ["南门路1-19号", "筱塘市场", "筱塘新村"]


async def resident(engine: AsyncEngine, openid: str) -> Resident | None:
    async with session_factory(engine)() as session:
        return await session.get(Resident, openid)


async def test_qr_sheets_decode_to_the_scenes_and_a_scan_reports_there(
    start: Start,
    engine: AsyncEngine,
    settings: Settings,
    fake_api: FakeServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, wechat = await start()  # imports the demo org into this test's database
    config = cli_config(tmp_path / "config.toml", settings)
    out = tmp_path / "codes"
    code, printed, err = await run_cli(
        capsys, "qr", "--unit", "xiaotang-1", "-c", str(config), "-o", str(out)
    )
    assert (code, err) == (0, "")
    assert "筱塘社区第一网格 [xiaotang-1]: 3 个地点" in printed
    assert sorted(p.name for p in out.iterdir()) == ["codes.csv", "xiaotang-1-1.png", "xiaotang-1.pdf"]
    # One permanent code per place, asked with the place's stable scene.
    fake = fake_api.fake
    assert sorted(fake.qrcodes) == sorted(place_scene(name) for name in XIAOTANG_1)
    requests = [json.loads(raw) for raw in fake.raw_bodies if b"QR_LIMIT_STR_SCENE" in raw]
    assert all(r["action_name"] == "QR_LIMIT_STR_SCENE" and "expire_seconds" not in r for r in requests)
    with (out / "codes.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["place"] for r in rows) == XIAOTANG_1
    assert all(fake.qrcodes[r["scene"]] == {"ticket": r["ticket"], "url": r["url"]} for r in rows)

    # The printed sheets decode back to exactly the codes' URLs, in the PNG and in the PDF.
    urls = sorted(code["url"] for code in fake.qrcodes.values())
    assert decode_qr(out / "xiaotang-1-1.png") == urls
    pages = pdf_pages(out / "xiaotang-1.pdf", tmp_path)
    assert len(pages) == 1 and decode_qr(pages[0]) == urls

    # A follower scans the poster in 筱塘市场's stairwell: bound there, asked what is wrong.
    scene = fake.scene_of(next(r["url"] for r in rows if r["place"] == "筱塘市场"))
    assert scene == place_scene("筱塘市场")
    reply = (await wechat.send(event_xml(RESIDENT, "SCAN", scene))).content or ""
    assert "请描述遇到的问题" in reply and "筱塘市场" in reply and "筱塘社区第一网格党支部" in reply
    bound = await resident(engine, RESIDENT)
    assert bound is not None and (bound.unit_id, bound.place_detail) == ("xiaotang-1", None)
    # The next report opens there without asking where.
    reply = (await wechat.say(RESIDENT, "这里的垃圾桶满了好几天没人清理")).content or ""
    assert reply.startswith("已受理，工单号 #1")
    async with session_factory(engine)() as session:
        order = await session.get(WorkOrder, 1)
    assert order is not None and order.unit_id == "xiaotang-1" and order.place_id == bound.place_id

    # Running it again reprints the same codes.
    code, _, _ = await run_cli(capsys, "qr", "--unit", "xiaotang-1", "-c", str(config), "-o", str(out))
    assert code == 0 and sorted(c["url"] for c in fake.qrcodes.values()) == urls


async def test_follow_by_scanning_binds_and_welcomes(start: Start, engine: AsyncEngine) -> None:
    _, wechat = await start()
    reply = (
        await wechat.send(event_xml("oNewcomer", "subscribe", "qrscene_" + place_scene("龙桥花园")))
    ).content
    assert reply is not None and reply.startswith(texts.SCANNED_WELCOME) and "请描述遇到的问题" in reply
    bound = await resident(engine, "oNewcomer")
    assert bound is not None and bound.subscribed and bound.unit_id == "xiaotang-2"
    # An unknown scene (a renamed place, another account's code) gets the normal welcome and binds nothing.
    unknown = (await wechat.send(event_xml("oOther", "subscribe", "qrscene_p:0000000000000000"))).content
    assert unknown == texts.WELCOME
    assert (await wechat.send(event_xml("oOther", "SCAN", "not-ours"))).content == texts.WELCOME
    other = await resident(engine, "oOther")
    assert other is not None and other.unit_id is None and other.place_id is None
    # Staff who scan are told what the code is; they are not bound.
    staff = (
        await wechat.send(event_xml("oLeader-xiaotang-2", "SCAN", place_scene("龙桥花园")))
    ).content or ""
    assert "龙桥花园" in staff and "报事码" in staff
    assert await resident(engine, "oLeader-xiaotang-2") is None


async def test_a_scan_replaces_a_pending_place_question(start: Start, engine: AsyncEngine) -> None:
    _, wechat = await start()
    assert (await wechat.say(RESIDENT, "楼道灯坏了")).content == texts.ASK_PLACE
    await wechat.send(event_xml(RESIDENT, "SCAN", place_scene("筱塘新村")))
    reply = (await wechat.say(RESIDENT, "3号楼楼道灯坏了")).content or ""
    assert reply.startswith("已受理")
    async with session_factory(engine)() as session:
        rows = (await session.execute(InboundMessage.__table__.select())).all()
    assert [r.kind for r in rows] == ["text", "event:scan", "text"]


async def test_qr_errors_are_one_line(
    start: Start, settings: Settings, fake_api: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await start()
    config = cli_config(tmp_path / "config.toml", settings)
    code, out, err = await run_cli(capsys, "qr", "--unit", "nowhere", "-c", str(config), "-o", str(tmp_path))
    assert code == 2 and out == "" and err.startswith("gridbot: 未知的单位: nowhere")
    fake_api.fake.fail_next(None, 45009)  # the account's daily quota is spent
    code, out, err = await run_cli(capsys, "qr", "-c", str(config), "-o", str(tmp_path / "q"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "errcode=45009" in err
    assert settings.wechat.app_secret not in err
