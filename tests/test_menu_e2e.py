"""The official account's menu: `gridbot menu set | show | delete` against the fake WeChat API, and what
the buttons do when residents and staff press them (CLICK), on both backends. VIEW events are stored
and not answered."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.account.menu import MenuError, parse_menu
from bot.config import Settings
from handlers import commands, texts
from storage.db import session_factory
from storage.models import InboundMessage
from tests.conftest import Start
from tests.fake_helpers import FakeServer
from tests.reach_helpers import cli_config, run_cli
from tests.wechat_sim import WeChatPlatform, event_xml

MENU = Path(__file__).resolve().parents[1] / "examples" / "menu.toml"
RESIDENT = "oMenuUser"


@pytest.mark.usefixtures("backend")
async def test_menu_set_show_delete(
    start: Start, settings: Settings, fake_api: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await start()
    config = str(cli_config(tmp_path / "config.toml", settings))
    code, out, _ = await run_cli(capsys, "menu", "show", "-c", config)
    assert code == 0 and "没有自定义菜单" in out
    code, out, err = await run_cli(capsys, "menu", "set", str(MENU), "-c", config)
    assert (code, err) == (0, ""), err
    fake = fake_api.fake
    assert [b["name"] for b in fake.menu or []] == ["报事", "我的工单", "更多"]
    assert fake.menu is not None and fake.menu[0] == {"type": "click", "name": "报事", "key": "REPORT"}
    assert [b["name"] for b in fake.menu[2]["sub_button"]] == ["帮助", "便民电话"]
    assert "我的工单  [click] MY_ORDERS" in out and "  便民电话  [click] HOTLINES（便民电话）" in out
    code, out, _ = await run_cli(capsys, "menu", "show", "-c", config)
    assert code == 0 and out.splitlines()[0] == "报事  [click] REPORT（怎样报事）"
    code, out, _ = await run_cli(capsys, "menu", "delete", "-c", config)
    assert code == 0 and fake.menu is None
    # A bad file is refused whole, before anything is sent.
    bad = tmp_path / "bad.toml"
    bad.write_text(
        MENU.read_text(encoding="utf-8").replace('key = "HELP"', 'key = "LOTTERY"'), encoding="utf-8"
    )
    requests = fake.send_requests
    code, out, err = await run_cli(capsys, "menu", "set", str(bad), "-c", config)
    assert code == 2 and out == "" and "未知的 key 'LOTTERY'" in err and len(err.strip().splitlines()) == 1
    assert fake.send_requests == requests and fake.menu is None


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"button": []}, "1–3 个"),
        ({"button": [{"name": "a", "type": "click", "key": "HELP"}] * 4}, "1–3 个"),
        ({"button": [{"name": "六个汉字太长", "type": "click", "key": "HELP"}]}, "最多 16 字节"),
        ({"button": [{"name": "看看", "type": "view", "url": "ftp://x"}]}, "需要以 http:// 或 https://"),
        (
            {"button": [{"name": "多", "sub_button": [{"name": "a", "type": "click", "key": "HELP"}] * 6}]},
            "1–5 个",
        ),
        ({"button": [{"name": "奇怪", "type": "miniprogram", "key": "x"}]}, "type 应为"),
        ({"menu": []}, "只允许 [[button]]"),
    ],
)
def test_menu_file_is_checked_against_wechats_limits(data: dict, fragment: str) -> None:
    with pytest.raises(MenuError, match=re.escape(fragment)):
        parse_menu(data)


_moments = itertools.count(int(time.time()))


def event(who: str, name: str, key: str) -> str:
    """Events are told apart by sender and CreateTime (no MsgId): one second apart each."""
    return event_xml(who, name, key, create_time=next(_moments))


async def click(wechat: WeChatPlatform, who: str, key: str) -> str | None:
    return (await wechat.send(event(who, "CLICK", key))).content


@pytest.mark.usefixtures("backend")
async def test_buttons_do_what_they_say(start: Start, engine: AsyncEngine) -> None:
    _, wechat = await start()
    assert await click(wechat, RESIDENT, "REPORT") == texts.HOW_TO_REPORT
    assert await click(wechat, RESIDENT, "MY_ORDERS") == texts.NO_ORDERS
    assert ((await wechat.say(RESIDENT, "筱塘新村5号楼门禁坏了")).content or "").startswith("已受理")
    mine = await click(wechat, RESIDENT, "MY_ORDERS") or ""
    assert mine.startswith("您最近的工单") and "#1" in mine
    assert await click(wechat, RESIDENT, "HELP") == commands.HELP_RESIDENT
    hotlines = await click(wechat, RESIDENT, "HOTLINES") or ""
    assert hotlines == texts.HOTLINES and "12345" in hotlines and "119" in hotlines
    # Staff: 我的工单 is their 待办; 帮助 their help.
    todo = await click(wechat, "oLeader-xiaotang-1", "MY_ORDERS") or ""
    assert todo.startswith("您的待办工单") and "#1" in todo
    assert await click(wechat, "oAdmin-xiaotang", "HELP") == commands.HELP_ADMIN
    # A key the bot does not know, and a page view: stored, not answered.
    assert (await wechat.send(event(RESIDENT, "CLICK", "SOMETHING_ELSE"))).body == "success"
    assert (await wechat.send(event(RESIDENT, "VIEW", "https://example.org/news"))).body == "success"
    async with session_factory(engine)() as session:
        rows = (await session.scalars(select(InboundMessage).where(InboundMessage.sender == RESIDENT))).all()
    views = [r for r in rows if r.kind == "event:view"]
    assert len(views) == 1 and views[0].payload["url"] == "https://example.org/news" and views[0].handled_at
    assert views[0].reply == ""
