"""The dashboard's pages on both backends: the scope matrix (community / street / district admin × an
order in or out of scope × overview, list, detail, export, actions), each action through the inbox with
its event and notice, the export's columns, the filters and the live overview."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers import texts
from storage.db import session_factory
from storage.models import InboundMessage, OutboxMessage, WorkOrder, WorkOrderEvent
from tests.conftest import Start
from tests.dashboard_helpers import (
    COMMUNITY,
    DISTRICT,
    LEADER,
    LEADER2,
    OTHER_STREET,
    RESIDENT,
    STREET,
    login,
    report_everywhere,
)
from tests.fake_helpers import FakeServer, eventually

pytestmark = pytest.mark.usefixtures("backend")

# Who sees which grid's order.
SCOPE = {
    COMMUNITY: {"xiaotang-1"},
    STREET: {"xiaotang-1", "dongzhen-2"},
    DISTRICT: {"xiaotang-1", "dongzhen-2", "mulan-1"},
    OTHER_STREET: {"mulan-1"},
}


async def events(engine: AsyncEngine, number: int, kind: str) -> list[WorkOrderEvent]:
    async with session_factory(engine)() as session:
        rows = await session.scalars(
            select(WorkOrderEvent).where(WorkOrderEvent.order_id == number, WorkOrderEvent.kind == kind)
        )
        return list(rows.all())


async def order_row(engine: AsyncEngine, number: int) -> WorkOrder:
    async with session_factory(engine)() as session:
        found = await session.get(WorkOrder, number)
    assert found is not None
    return found


def export_rows(body: bytes) -> list[dict[str, str]]:
    assert body.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


async def test_the_scope_matrix(start: Start, engine: AsyncEngine) -> None:
    client, wechat = await start()
    numbers = await report_everywhere(wechat)
    for admin, visible in SCOPE.items():
        csrf = await login(client, wechat, admin)
        overview = await (await client.get("/dashboard/api/overview")).json()
        assert overview["counts"]["open"] == len(visible), admin
        assert overview["counts"]["today"] == len(visible), admin
        assert sum(sum(s["data"]) for s in overview["daily"]["series"]) == len(visible), admin
        assert {g["grid"] for g in overview["heat"] if g["open"]} == visible, admin
        listed = await (await client.get("/dashboard/orders")).text()
        exported = export_rows(await (await client.get("/dashboard/orders.csv")).read())
        assert {int(row["id"]) for row in exported} == {numbers[g] for g in visible}, admin
        for grid, number in numbers.items():
            inside = grid in visible
            detail = await client.get(f"/dashboard/orders/{number}")
            assert detail.status == (200 if inside else 404), (admin, grid)
            assert (f'href="/dashboard/orders/{number}"' in listed) is inside, (admin, grid)
            before = len(await events(engine, number, "supervise"))
            acted = await client.post(f"/dashboard/orders/{number}/supervise", data={"csrf": csrf})
            assert acted.status == (200 if inside else 404), (admin, grid)
            assert len(await events(engine, number, "supervise")) == before + int(inside), (admin, grid)
        # another unit chosen in the filter still shows nothing outside the scope
        outside = await client.get("/dashboard/orders.csv?unit=xialin")
        assert {row["id"] for row in export_rows(await outside.read())} == (
            {str(numbers["mulan-1"])} if "mulan-1" in visible else set()
        )


async def test_actions_run_the_chat_commands_with_their_events_and_notices(
    start: Start, engine: AsyncEngine, fake_api: FakeServer
) -> None:
    client, wechat = await start()
    numbers = await report_everywhere(wechat)
    number = numbers["xiaotang-1"]
    csrf = await login(client, wechat, COMMUNITY)

    page = await client.post(
        f"/dashboard/orders/{number}/dispatch", data={"csrf": csrf, "grid": "筱塘社区第二网格"}
    )
    assert texts.DISPATCHED.format(n=number, who="筱塘社区第二网格（李强）")[:12] in await page.text()
    row = await order_row(engine, number)
    assert (row.unit_id, row.assignee_openid, row.state) == ("xiaotang-2", LEADER2, "assigned")
    (assign,) = [e for e in await events(engine, number, "assign") if e.actor == COMMUNITY]
    assert "派给 筱塘社区第二网格" in assign.text
    await eventually(lambda: any(f"接单 {number}" in m["content"] for m in fake_api.fake.delivered(LEADER2)))

    # The same command in chat would be refused for someone outside; the page holds the same rule.
    refused = await client.post(
        f"/dashboard/orders/{number}/dispatch", data={"csrf": csrf, "grid": "木兰社区第一网格"}
    )
    assert "没有找到“木兰社区第一网格”" in await refused.text()
    assert (await order_row(engine, number)).unit_id == "xiaotang-2"

    await client.post(f"/dashboard/orders/{number}/supervise", data={"csrf": csrf})
    assert (await order_row(engine, number)).escalation_level == 1
    await eventually(lambda: any("【督办】" in m["content"] for m in fake_api.fake.delivered(LEADER2)))

    assert (
        "请先回复“接单"
        in await (
            await client.post(
                f"/dashboard/orders/{number}/extend", data={"csrf": csrf, "days": "5", "reason": "等配件"}
            )
        ).text()
    )
    assert "已接单" in ((await wechat.say(LEADER2, f"接单 {number}")).content or "")
    due = (await order_row(engine, number)).resolve_due
    granted = await client.post(
        f"/dashboard/orders/{number}/extend", data={"csrf": csrf, "days": "5", "reason": "等配件"}
    )
    assert f"工单 #{number} 已延期 5 天" in await granted.text()
    extended = (await order_row(engine, number)).resolve_due
    assert due is not None and extended is not None and (extended - due).days == 5
    (extend,) = await events(engine, number, "extend")
    assert (extend.actor, extend.text) == (COMMUNITY, "5 天：等配件")
    await eventually(lambda: any("已延期 5 天" in m["content"] for m in fake_api.fake.delivered(LEADER2)))
    await eventually(
        lambda: any("需要延期 5 天" in m["content"] for m in fake_api.fake.delivered(f"{RESIDENT}0"))
    )
    incomplete = await client.post(f"/dashboard/orders/{number}/extend", data={"csrf": csrf, "days": "40"})
    assert "请把表单填写完整" in await incomplete.text()

    async with session_factory(engine)() as session:
        stored = (
            await session.scalars(
                select(InboundMessage)
                .where(InboundMessage.channel == "dashboard")
                .order_by(InboundMessage.id)
            )
        ).all()
        notices = (await session.scalars(select(OutboxMessage).where(OutboxMessage.order_id == number))).all()
    assert [m.text for m in stored] == [
        f"派单 {number} 筱塘社区第二网格",
        f"派单 {number} 木兰社区第一网格",
        f"督办 {number}",
        f"延期 {number} 5 等配件",
        f"延期 {number} 5 等配件",
    ]
    assert all(m.sender == COMMUNITY and m.handled_at is not None for m in stored)
    assert {m.channel for m in notices} == {"wechat"}  # notices go out as usual, never to "dashboard"


async def test_the_export_has_fixmystreet_like_columns(start: Start, engine: AsyncEngine) -> None:
    client, wechat = await start()
    numbers = await report_everywhere(wechat)
    number = numbers["xiaotang-1"]
    await wechat.say(LEADER, f"接单 {number}")
    await wechat.say(LEADER, f"办结 {number} 门禁已修好")
    await wechat.say(f"{RESIDENT}0", "1")
    await login(client, wechat, DISTRICT)
    response = await client.get("/dashboard/orders.csv?state=closed")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    (row,) = export_rows(await response.read())
    assert list(row) == [
        "id", "created", "accepted", "resolved", "closed", "state", "state_name", "category", "urgent",
        "grid", "community", "place", "rating", "text", "latitude", "longitude", "url",
    ]  # fmt: skip
    assert row["id"] == str(number) and row["state"] == "closed" and row["state_name"] == "已关闭"
    assert row["rating"] == "满意" and row["grid"] == "筱塘社区第一网格" and row["community"] == "筱塘社区"
    assert row["place"].startswith("筱塘新村") and row["text"] == "筱塘新村5号楼门禁坏了"
    assert all(row[k].endswith("+08:00") for k in ("created", "accepted", "resolved", "closed"))
    assert row["created"] <= row["accepted"] <= row["resolved"] <= row["closed"]
    assert row["url"].endswith(f"/dashboard/orders/{number}")
    everything = export_rows(await (await client.get("/dashboard/orders.csv")).read())
    assert len(everything) == 3
    assert [
        r["id"] for r in export_rows(await (await client.get("/dashboard/orders.csv?q=凤凰")).read())
    ] == [str(numbers["dongzhen-2"])]


async def test_filters_and_paging(start: Start, engine: AsyncEngine) -> None:
    client, wechat = await start()
    numbers = await report_everywhere(wechat)
    await login(client, wechat, DISTRICT)

    async def ids(query: str) -> set[int]:
        rows = export_rows(await (await client.get(f"/dashboard/orders.csv?{query}")).read())
        page = await (await client.get(f"/dashboard/orders?{query}")).text()
        assert f'<b id="total">{len(rows)}</b>' in page, query
        return {int(r["id"]) for r in rows}

    every = set(numbers.values())
    assert await ids("") == every
    assert await ids("unit=longqiao") == {numbers["xiaotang-1"], numbers["dongzhen-2"]}
    assert await ids("unit=mulan-1") == {numbers["mulan-1"]}
    assert await ids("state=open") == every
    assert await ids("state=closed") == set()
    assert await ids("category=环境卫生") == {numbers["dongzhen-2"]}
    assert await ids("urgent=1") == set()
    assert await ids("overdue=1") == set()
    assert await ids("from=2000-01-01&to=2000-01-02") == set()
    assert await ids("q=路灯") == {numbers["mulan-1"]}
    assert await ids("q=100%25") == set()  # LIKE wildcards are taken literally
    assert await ids("state=nonsense&page=x") == every


async def test_the_overview_follows_a_change_within_seconds(start: Start) -> None:
    client, wechat = await start()
    await login(client, wechat, COMMUNITY)
    page = await (await client.get("/dashboard/")).text()
    start_data = json.loads(page.split('id="overview-data">', 1)[1].split("</script>", 1)[0])
    assert start_data["counts"]["open"] == 0 and start_data["unit"] == "筱塘社区"
    assert "POLL_MS = 5000" in await (await client.get("/dashboard/static/overview.js")).text()
    await wechat.say(RESIDENT, "筱塘新村3号楼着火了，有烟")
    live = await (await client.get("/dashboard/api/overview")).json()
    assert live["counts"]["open"] == 1 and live["counts"]["urgent"] == 1 and live["counts"]["today"] == 1
    assert [row["name"] for row in live["ranking"]][:1] and len(live["months"]) == 6
    assert sum(live["durations"]["accept"]) == 0
    chart = await client.get("/dashboard/static/vendor/chartjs/chart.umd.min.js")
    assert chart.status == 200 and b"Chart.js v4" in await chart.read()
