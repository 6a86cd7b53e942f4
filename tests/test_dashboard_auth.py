"""Logging in to the dashboard: the one-time link (chat 后台 and the CLI), the session, logout, CSRF and
the Chinese refusals, on both backends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from handlers import texts
from handlers.login_links import token_hash
from storage.db import session_factory
from storage.logins import add_login
from storage.models import WorkOrderEvent
from tests.conftest import Start
from tests.dashboard_helpers import COMMUNITY, LEADER, REPORTS, RESIDENT, csrf_of, link_for, login
from tests.fake_helpers import Clock

pytestmark = pytest.mark.usefixtures("backend")


async def test_the_chat_command_gives_a_link_that_logs_in_once(start: Start) -> None:
    client, wechat = await start()
    reply = (await wechat.say(COMMUNITY, "后台")).content or ""
    assert reply.startswith("指挥中心登录链接（10 分钟内有效，仅可使用一次")
    assert "http://127.0.0.1:8080/dashboard/login/" in reply  # no public_url: the server's own address
    path = await link_for(wechat, COMMUNITY)
    first = await client.get(path, allow_redirects=False)
    assert first.status == 303 and first.headers["Location"] == "/dashboard/"
    cookie = first.cookies["gridbot_dashboard"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/dashboard"
    assert not cookie["secure"]
    assert 8 * 3600 - 60 <= int(cookie["max-age"]) <= 8 * 3600
    page = await client.get("/dashboard/")
    body = await page.text()
    assert page.status == 200 and "筱塘社区 态势" in body and "黄丹" in body
    assert (
        page.headers["Cache-Control"] == "no-store"
        and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    )
    client.session.cookie_jar.clear()
    again = await client.get(path)
    assert again.status == 403 and "链接已使用" in await again.text()


async def test_public_url_makes_the_link_and_a_secure_cookie(start: Start) -> None:
    from dataclasses import replace

    def configure(settings):  # type: ignore[no-untyped-def]
        return replace(settings, server=replace(settings.server, public_url="https://grid.example.test/"))

    client, wechat = await start(configure=configure)
    reply = (await wechat.say(COMMUNITY, "后台")).content or ""
    assert "https://grid.example.test/dashboard/login/" in reply
    path = "/dashboard/login/" + reply.rsplit("/", 1)[1]
    response = await client.get(path, allow_redirects=False)
    assert response.status == 303 and response.cookies["gridbot_dashboard"]["secure"]


async def test_an_expired_link_and_a_forged_one_are_refused(start: Start) -> None:
    clock = Clock()
    client, wechat = await start(clock=clock)
    path = await link_for(wechat, COMMUNITY)
    clock.advance(10 * 60 + 1)
    expired = await client.get(path)
    assert expired.status == 403 and "链接已过期" in await expired.text()
    forged = await client.get(path[:-4] + "AAAA")
    assert forged.status == 404 and "链接无效" in await forged.text()
    assert (await client.get("/dashboard/")).status == 401


async def test_non_admins_get_no_link_and_no_dashboard(start: Start, engine: AsyncEngine) -> None:
    client, wechat = await start()
    assert (await wechat.say(LEADER, "后台")).content == texts.ADMIN_ONLY.format(word="后台")
    assert (await wechat.say(RESIDENT, "后台")).content == texts.ADMIN_ONLY.format(word="后台")
    # A link made while someone was an admin, used after the org no longer says so:
    async with session_factory(engine)() as session, session.begin():
        await add_login(
            session, token_hash("leader-token"), LEADER, Clock().dt(), Clock().dt() + timedelta(days=9999)
        )
    refused = await client.get("/dashboard/login/leader-token")
    assert refused.status == 403 and "仅供社区、街道和区管理员使用" in await refused.text()
    anonymous = await client.get("/dashboard/orders")
    assert anonymous.status == 401 and "后台" in await anonymous.text()
    assert (await client.get("/dashboard/static/dashboard.css")).status == 200


async def test_logout_ends_the_session_on_the_server(start: Start) -> None:
    client, wechat = await start()
    csrf = await login(client, wechat, COMMUNITY)
    stolen = next(c.value for c in client.session.cookie_jar if c.key == "gridbot_dashboard")
    refused = await client.post("/dashboard/logout", data={"csrf": "wrong"})
    assert refused.status == 403 and "页面已过期" in await refused.text()
    assert (await client.get("/dashboard/")).status == 200
    out = await client.post("/dashboard/logout", data={"csrf": csrf})
    assert out.status == 200 and "已退出" in await out.text()
    assert (await client.get("/dashboard/")).status == 401
    client.session.cookie_jar.update_cookies({"gridbot_dashboard": stolen})  # a copy kept from before
    assert (await client.get("/dashboard/")).status == 401


async def test_every_post_needs_the_sessions_csrf_token(start: Start, engine: AsyncEngine) -> None:
    client, wechat = await start()
    assert (await wechat.say("oResidentE", REPORTS["xiaotang-1"])).content
    csrf = await login(client, wechat, COMMUNITY)
    for data in ({}, {"csrf": ""}, {"csrf": csrf + "x"}):
        response = await client.post("/dashboard/orders/1/supervise", data=data)
        assert response.status == 403 and "页面已过期" in await response.text()
    async with session_factory(engine)() as session:
        supervised = await session.scalar(
            select(func.count()).select_from(WorkOrderEvent).where(WorkOrderEvent.kind == "supervise")
        )
    assert supervised == 0
    page = await client.get("/dashboard/orders/1")
    assert csrf_of(await page.text()) == csrf
    done = await client.post("/dashboard/orders/1/supervise", data={"csrf": csrf})
    assert done.status == 200 and texts.SUPERVISED.format(n=1) in await done.text()


@pytest.mark.usefixtures("engine")
def test_cli_prints_a_link_for_admins_only(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import DEMO_ORG

    config = tmp_path / "config.toml"
    config.write_text(
        f'[server]\npublic_url = "https://grid.example.test"\n[wechat]\ntoken = "t"\n'
        f'[storage]\ndatabase_url = "{database_url}"\n[org]\nfile = ""\n',
        encoding="utf-8",
    )
    assert main(["org", "import", str(DEMO_ORG), "-c", str(config)]) == 0
    capsys.readouterr()
    assert main(["dashboard", "link", "--as", COMMUNITY, "-c", str(config)]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("https://grid.example.test/dashboard/login/") and len(out.rsplit("/", 1)[1]) >= 40
    assert main(["dashboard", "link", "--as", LEADER, "-c", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"gridbot: {LEADER} 不是社区、街道或区管理员，不能登录指挥中心"
