"""The three rates (docs/rates.md) on a hand-computed fixture, on both backends, and the pure definitions.

The fixture: 城厢区 d > 龙桥街道 s > 筱塘社区 c > grids g1, g2, g3 (g3 has no orders), and 东圳社区 c2 > g4.
Orders are written straight to the database at chosen China-time moments of 2026, moved through the real
policy (`handlers.workflow.create` and `apply`), which sets their deadlines as the handlers would.
The period is 2026-11 = [11-01 00:00, 12-01 00:00) Asia/Shanghai; the report runs on 12-10, so the
cut-off is the end of November.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.directory import Directory, UnitInfo
from handlers.rates import (
    CHINA,
    Counts,
    Period,
    UnitNode,
    Weights,
    build_rows,
    composite,
    order_facts,
    parse_period,
    ratio,
    state_at,
)
from handlers.report import (
    CSV_HEADER,
    REPLY_BYTES,
    ranking_reply,
    render_report,
    report_rows,
    stats_reply,
)
from handlers.workflow import Limits, apply, create
from storage.db import session_factory
from storage.models import WorkOrder
from storage.org import apply_org, parse_org
from storage.stats import EventRow, OrderRow

ORG = """
[[unit]]
id = "d"
name = "城厢区"
level = "district"

[[unit]]
id = "s"
name = "龙桥街道"
level = "street"
parent = "d"

[[unit]]
id = "c"
name = "筱塘社区"
level = "community"
parent = "s"

[[unit]]
id = "g1"
name = "筱塘社区第一网格"
level = "grid"
parent = "c"

[[unit]]
id = "g2"
name = "筱塘社区第二网格"
level = "grid"
parent = "c"

[[unit]]
id = "g3"
name = "筱塘社区第三网格"
level = "grid"
parent = "c"

[[unit]]
id = "c2"
name = "东圳社区"
level = "community"
parent = "s"

[[unit]]
id = "g4"
name = "东圳社区第一网格"
level = "grid"
parent = "c2"
"""


def t(text: str, year: int = 2026) -> datetime:
    """'11-02 09:00' → that moment in China time."""
    return datetime.strptime(f"{year}-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=CHINA)


@dataclass(frozen=True)
class Spec:
    name: str  # O1 … O16, as the comments below call them
    grid: str
    created: str
    accept_due: str
    resolve_due: str | None
    steps: tuple[tuple[str, ...], ...] = ()  # (action, when[, text])
    urgent: bool = False


# Limits in the fixture: accept 2 h (urgent 30 min), resolve 7 days from acceptance (or from a reopen).
ORDERS = (
    # --- g1 ---
    # O1 accepted in time (1 h), resolved 11-05 (73 h), rated 满意.
    Spec("O1", "g1", "11-02 09:00", "11-02 11:00", "11-09 10:00",
         (("assign", "11-02 09:00"), ("accept", "11-02 10:00"), ("resolve", "11-05 10:00"),
          ("rate", "11-06 10:00", "满意"))),
    # O2 accepted late (3 h); resolved, reopened (不满意, deadline reset to 11-12 09:00), resolved again
    # 11-06 09:00 (72 h from creation), rated 基本满意.
    Spec("O2", "g1", "11-03 09:00", "11-03 11:00", "11-12 09:00",
         (("assign", "11-03 09:00"), ("accept", "11-03 12:00"), ("resolve", "11-04 12:00"),
          ("reopen", "11-05 09:00", "不满意"), ("resolve", "11-06 09:00"), ("rate", "11-07 09:00", "基本满意"))),
    # O3 assigned, never accepted: late response; due for resolution at its accept deadline; overdue.
    Spec("O3", "g1", "11-10 09:00", "11-10 11:00", None, (("assign", "11-10 09:00"),)),
    # O4 cancelled by the resident before the accept deadline: received and dispatched, nothing else.
    Spec("O4", "g1", "11-11 09:00", "11-11 11:00", None,
         (("assign", "11-11 09:00"), ("cancel", "11-11 10:00"))),
    # O5 created and accepted in October; resolution due 11-06, resolved 11-02 (73 h), rated 满意 11-03.
    Spec("O5", "g1", "10-30 09:00", "10-30 11:00", "11-06 10:00",
         (("assign", "10-30 09:00"), ("accept", "10-30 10:00"), ("resolve", "11-02 10:00"),
          ("rate", "11-03 10:00", "满意"))),
    # O6 accepted in time (1 h); resolution due in December: not due, not overdue.
    Spec("O6", "g1", "11-28 09:00", "11-28 11:00", "12-05 10:00",
         (("assign", "11-28 09:00"), ("accept", "11-28 10:00"))),
    # O7 accepted late (5 h), resolution due 11-22, never resolved: due and unresolved, overdue.
    Spec("O7", "g1", "11-15 09:00", "11-15 11:00", "11-22 14:00",
         (("assign", "11-15 09:00"), ("accept", "11-15 14:00"))),
    # O8 created 12-01 07:00 China time (= 11-30 23:00 UTC): December, not November.
    Spec("O8", "g1", "12-01 07:00", "12-01 09:00", None, (("assign", "12-01 07:00"),)),
    # O9 created 11-30 23:00, accept deadline 12-01 01:00, accepted 12-01 00:30: received and dispatched
    # in November; its response and resolution belong to December; not overdue at the cut-off.
    Spec("O9", "g1", "11-30 23:00", "12-01 01:00", "12-08 00:30",
         (("assign", "11-30 23:00"), ("accept", "12-01 00:30"))),
    # --- g2 ---
    # O10 claimed by a Party member in time (0.5 h), resolved 11-06 09:30 (24.5 h), closed unrated.
    Spec("O10", "g2", "11-05 09:00", "11-05 11:00", "11-12 09:30",
         (("claim", "11-05 09:30"), ("resolve", "11-06 09:30"), ("close_unrated", "11-09 09:30"))),
    # O11 accepted in time (1 h), returned (退单), re-assigned 11-07 09:00 (a new accept deadline, 11:00)
    # and accepted by someone else at 10:00: in time. Resolved 11-08 10:00 (49 h), rated 满意.
    Spec("O11", "g2", "11-06 09:00", "11-07 11:00", "11-14 10:00",
         (("assign", "11-06 09:00"), ("accept", "11-06 10:00"), ("return", "11-06 12:00"),
          ("assign", "11-07 09:00"), ("accept", "11-07 10:00"), ("resolve", "11-08 10:00"),
          ("rate", "11-09 10:00", "满意"))),
    # O12 never assigned (no one to take it), never accepted: late, due at its accept deadline, overdue.
    Spec("O12", "g2", "11-20 09:00", "11-20 11:00", None),
    # O13 urgent, accepted in time (0.25 h), resolved 13:15 (4.25 h), reopened 11-26: the reopen is a
    # 不满意 rating in November and moves its resolution deadline to 12-03 (December; not overdue).
    Spec("O13", "g2", "11-25 09:00", "11-25 09:30", "12-03 09:00",
         (("assign", "11-25 09:00"), ("accept", "11-25 09:15"), ("resolve", "11-25 13:15"),
          ("reopen", "11-26 09:00", "不满意")), urgent=True),
    # O16 from October, accepted, resolution due 10-27, still open: only overdue in November.
    Spec("O16", "g2", "10-20 09:00", "10-20 11:00", "10-27 10:00",
         (("assign", "10-20 09:00"), ("accept", "10-20 10:00"))),
    # --- g4 (东圳社区) ---
    # O14 all well: in time (0.5 h), resolved 11-05 09:00 (24 h), rated 满意.
    Spec("O14", "g4", "11-04 09:00", "11-04 11:00", "11-11 09:30",
         (("assign", "11-04 09:00"), ("accept", "11-04 09:30"), ("resolve", "11-05 09:00"),
          ("rate", "11-06 09:00", "满意"))),
    # O15 entirely in October: nothing in November.
    Spec("O15", "g4", "10-01 09:00", "10-01 11:00", "10-08 10:00",
         (("assign", "10-01 09:00"), ("accept", "10-01 10:00"), ("resolve", "10-02 09:00"),
          ("rate", "10-03 09:00", "满意"))),
)  # fmt: skip

# What the fixture must give for 2026-11, worked out by hand from the comments above.
#
# g1 (O1–O9):
#   received   O1 O2 O3 O4 O6 O7 O9 = 7 (O5 October, O8 December); dispatched: all 7 were assigned.
#   响应 (accept deadline in November; O4 withdrawn before its deadline; O9's deadline is December):
#              O1 ✓ O2 ✗ O3 ✗ O6 ✓ O7 ✗ → 2/5 = 40%
#   解决 (resolution deadline in November; O3 unaccepted → its accept deadline; O4 cancelled):
#              O1 ✓ O2 ✗(reopened) O3 ✗ O5 ✓ O7 ✗ → 2/5 = 40%
#   满意 (ratings in November): O1 满意, O2 不满意 (reopen) + 基本满意, O5 满意 → 3/4 = 75%
#   overdue at 12-01 00:00: O3 (accept deadline passed), O7 (resolution deadline passed) → 2
#   avg accept: first acceptances in November O1 1, O2 3, O6 1, O7 5 → 10/4 = 2.5 h
#   avg resolve: resolutions in November O1 73, O2 72 (last), O5 73 → 218/3 = 72.67 h
#   composite: (30·0.4 + 35·0.4 + 35·0.75) / 100 · 100 = 12 + 14 + 26.25 = 52.25
# g2 (O10–O13, O16):
#   received O10 O11 O12 O13 = 4; dispatched O10 (claim) O11 O13 = 3 (O12 never assigned)
#   响应: O10 ✓ O11 ✓ (accepted after its re-dispatch) O12 ✗ O13 ✓ → 3/4 = 75%
#   解决: O10 ✓ (closed unrated) O11 ✓ O12 ✗ (O13 due in December, O16 in October) → 2/3
#   满意: O11 满意, O13 不满意 (reopen); O10 unrated is no rating → 1/2 = 50%
#   overdue: O12 (new, accept deadline passed), O16 (accepted, resolution deadline passed) → 2
#   avg accept: O10 0.5, O11 1, O13 0.25 → 1.75/3 h; avg resolve: 24.5 + 49 + 4.25 = 77.75/3 h
#   composite: 30·0.75 + 35·2/3 + 35·0.5 = 22.5 + 23.333… + 17.5 = 63.333…
# g3: nothing at all → every rate “—”, no composite, ranked last.
# c = g1 + g2 + g3: received 11, dispatched 10, 响应 5/9, 解决 4/8, 满意 4/6, overdue 4,
#   avg accept 11.75/7, avg resolve 295.75/6, composite 30·5/9 + 35·0.5 + 35·4/6 = 57.5
# g4 = c2: received 1, dispatched 1, 响应 1/1, 解决 1/1, 满意 1/1, overdue 0, 0.5 h, 24 h, composite 100
# s = d = c + c2: received 12, dispatched 11, 响应 6/10, 解决 5/9, 满意 5/7, overdue 4,
#   avg accept 12.25/8, avg resolve 319.75/7, composite 18 + 35·5/9 + 35·5/7 = 62.4444…
# Ranks: under c — g2, g1, then g3 (no score); under s — c2, c.

# unit: received, dispatched, (responded, response_due), (resolved, due), (satisfied, rated), overdue,
#       (accepts, accept hours), (resolves, resolve hours), composite, rank
EXPECTED: dict[str, tuple[Any, ...]] = {
    "d": (12, 11, (6, 10), (5, 9), (5, 7), 4, (8, 12.25), (7, 319.75), 18 + 35 * 5 / 9 + 25, 1),
    "s": (12, 11, (6, 10), (5, 9), (5, 7), 4, (8, 12.25), (7, 319.75), 18 + 35 * 5 / 9 + 25, 1),
    "c": (11, 10, (5, 9), (4, 8), (4, 6), 4, (7, 11.75), (6, 295.75), 57.5, 2),
    "g1": (7, 7, (2, 5), (2, 5), (3, 4), 2, (4, 10.0), (3, 218.0), 52.25, 2),
    "g2": (4, 3, (3, 4), (2, 3), (1, 2), 2, (3, 1.75), (3, 77.75), 22.5 + 35 * 2 / 3 + 17.5, 1),
    "g3": (0, 0, (0, 0), (0, 0), (0, 0), 0, (0, 0.0), (0, 0.0), None, 3),
    "c2": (1, 1, (1, 1), (1, 1), (1, 1), 0, (1, 0.5), (1, 24.0), 100.0, 1),
    "g4": (1, 1, (1, 1), (1, 1), (1, 1), 0, (1, 0.5), (1, 24.0), 100.0, 1),
}
TREE = ["d", "s", "c", "g1", "g2", "g3", "c2", "g4"]
NOVEMBER = "2026-11"
AFTER = t("12-10 12:00")  # the report runs well after November


# The fixture's limits: accept 2 h (urgent 30 min), resolve 7 days (urgent too), rate 3 days.
LIMITS = Limits(accept=7200, urgent_accept=1800, resolve=7 * 86400, urgent_resolve=7 * 86400, rate=3 * 86400)


async def seed(engine: AsyncEngine) -> Directory:
    """The org and the orders of the fixture, written through the real policy (`workflow.create` and
    `apply`, which set every deadline); the deadlines written in the fixture are checked against it."""
    async with session_factory(engine)() as session, session.begin():
        await apply_org(session, parse_org(tomllib.loads(ORG)))
        for spec in ORDERS:
            order = WorkOrder(
                resident_openid=f"r-{spec.name}",
                text=spec.name,
                category="设施维修",
                unit_id=spec.grid,
                urgent=spec.urgent,
            )
            created = create(order, actor="r", at=t(spec.created), limits=LIMITS)
            session.add(order)
            await session.flush()
            created.order_id = order.id
            session.add(created)
            for action, when, *text in spec.steps:
                event = apply(
                    order, action, actor="x", text=text[0] if text else "", at=t(when), limits=LIMITS,
                    assignee=f"o-{spec.grid}",
                )  # fmt: skip
                session.add(event)
            due = (t(spec.accept_due), t(spec.resolve_due) if spec.resolve_due else None)
            assert (order.accept_due, order.resolve_due) == due, spec.name
    async with session_factory(engine)() as session:
        return await Directory.load(session)


def check_row(row: Any, unit: str) -> None:
    received, dispatched, response, resolution, satisfaction, overdue, accept, resolve, score, rank = (
        EXPECTED[unit]
    )
    c = row.counts
    assert (row.unit_id, c.received, c.dispatched) == (unit, received, dispatched)
    assert ((c.responded, c.response_due), (c.resolved, c.due)) == (response, resolution), unit
    assert ((c.satisfied, c.rated), c.overdue) == (satisfaction, overdue), unit
    assert (c.accepts, c.resolves) == (accept[0], resolve[0]), unit
    assert c.accept_hours == pytest.approx(accept[1]) and c.resolve_hours == pytest.approx(resolve[1])
    assert row.response_rate == ratio(*response)
    assert row.resolution_rate == ratio(*resolution)
    assert row.satisfaction_rate == ratio(*satisfaction)
    assert row.avg_accept_hours == (pytest.approx(accept[1] / accept[0]) if accept[0] else None)
    assert row.avg_resolve_hours == (pytest.approx(resolve[1] / resolve[0]) if resolve[0] else None)
    assert row.composite == (None if score is None else pytest.approx(score)), unit
    assert row.rank == rank, unit


# --- the fixture on both backends ---------------------------------------------------------------


async def test_report_matches_the_hand_computed_fixture(engine: AsyncEngine) -> None:
    directory = await seed(engine)
    queries: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: queries.append(a[2]))
    async with session_factory(engine)() as session:
        rows = await report_rows(session, directory, parse_period(NOVEMBER, AFTER), now=AFTER)
    assert len(queries) == 2, "one query for the orders and one for their events, whatever their number"
    assert [(row.unit_id, row.depth) for row in rows] == [
        ("d", 0), ("s", 1), ("c", 2), ("g1", 3), ("g2", 3), ("g3", 3), ("c2", 2), ("g4", 3)
    ]  # fmt: skip
    for row in rows:
        check_row(row, row.unit_id)
    # The hand-computed composites, to the digit: g1 52.25, g2 63.33…, c 57.5, s 62.44.
    by_unit = {row.unit_id: row for row in rows}
    assert by_unit["g1"].composite == pytest.approx(52.25)
    assert by_unit["c"].composite == pytest.approx(57.5)
    assert by_unit["s"].composite == pytest.approx(62.4444444)


async def test_one_unit_and_its_subtree_only(engine: AsyncEngine) -> None:
    directory = await seed(engine)
    async with session_factory(engine)() as session:
        rows = await report_rows(session, directory, parse_period(NOVEMBER, AFTER), "c", now=AFTER)
        grid = await report_rows(session, directory, parse_period(NOVEMBER, AFTER), "g2", now=AFTER)
        with pytest.raises(ValueError, match="未知单位：nowhere"):
            await report_rows(session, directory, parse_period(NOVEMBER, AFTER), "nowhere", now=AFTER)
    assert [row.unit_id for row in rows] == ["c", "g1", "g2", "g3"]
    assert [row.depth for row in rows] == [0, 1, 1, 1]
    for row in rows[1:]:
        check_row(row, row.unit_id)
    assert rows[0].rank == 1  # the unit asked about is ranked on its own
    assert [row.unit_id for row in grid] == ["g2"] and grid[0].rank == 1
    assert grid[0].counts == rows[2].counts


async def test_a_period_not_over_is_judged_at_now(engine: AsyncEngine) -> None:
    """The same month asked on 11-10 10:30: only what had happened by then.

    g1: received O1 O2 O3 = 3, dispatched 3; 响应: O1 ✓ O2 ✗ (O3's deadline 11:00 is still ahead) = 1/2;
    解决: O1 ✓ O5 ✓ (O2 now due 11-12, O3 not yet due) = 2/2; 满意: as for the whole month, 3/4;
    overdue 0; avg accept (1 + 3)/2 = 2 h; composite 30·0.5 + 35·1 + 35·0.75 = 76.25.
    g2: received O10 O11 = 2; 响应 2/2; nothing due; 满意 O11 1/1; overdue O16 = 1;
    composite (30·1 + 35·1) / 65 · 100 = 100 (the missing 解决率 is left out).
    """
    directory = await seed(engine)
    now = t("11-10 10:30")
    async with session_factory(engine)() as session:
        rows = await report_rows(session, directory, parse_period("本月", now), "c", now=now)
    g1, g2 = rows[1], rows[2]
    assert (g1.counts.received, g1.counts.dispatched, g1.counts.overdue) == (3, 3, 0)
    assert (g1.counts.responded, g1.counts.response_due, g1.counts.resolved, g1.counts.due) == (1, 2, 2, 2)
    assert (g1.counts.satisfied, g1.counts.rated) == (3, 4)
    assert g1.avg_accept_hours == pytest.approx(2.0)
    assert g1.composite == pytest.approx(76.25)
    assert (g2.counts.received, g2.counts.overdue, g2.counts.due, g2.resolution_rate) == (2, 1, 0, None)
    assert (g2.response_rate, g2.satisfaction_rate, g2.composite) == (1.0, 1.0, pytest.approx(100.0))
    assert [r.unit_id for r in rows if r.rank == 1] == ["c", "g2"]


async def test_a_closed_month_does_not_change_later(engine: AsyncEngine) -> None:
    """Asked on 12-10 or a year later, November is the same (nothing after its end is read)."""
    directory = await seed(engine)
    async with session_factory(engine)() as session:
        early = await report_rows(session, directory, parse_period(NOVEMBER, AFTER), now=AFTER)
        late = await report_rows(
            session, directory, parse_period(NOVEMBER, AFTER), now=t("12-10 12:00", 2027)
        )
    assert early == late


async def test_text_report(engine: AsyncEngine) -> None:
    directory = await seed(engine)
    async with session_factory(engine)() as session:
        text = await render_report(session, directory, period=NOVEMBER, now=AFTER)
    lines = text.splitlines()
    assert lines[0] == "三率统计 2026-11：2026-11-01 00:00 至 2026-12-01 00:00（北京时间）"
    assert lines[2].startswith("综合分 = 响应30% + 解决35% + 满意35%")
    assert lines[3].startswith("* 样本少：不足 5 单（满意率：5 个评价）")
    cells = {re.split(r"\s{2,}", line.strip())[0]: re.split(r"\s{2,}", line.strip()) for line in lines[3:]}
    assert cells["单位"] == ["单位", "受理", "派发", "响应率", "解决率", "满意率", "逾期", "均响应(时)",
                             "均办结(时)", "综合", "名次"]  # fmt: skip
    assert cells["筱塘社区第一网格"] == [
        "筱塘社区第一网格", "7", "7", "40.0% 2/5", "40.0% 2/5", "75.0% 3/4*", "2", "2.5", "72.7", "52.3*", "2"
    ]  # fmt: skip
    assert cells["筱塘社区第二网格"][3:] == [
        "75.0% 3/4*",
        "66.7% 2/3*",
        "50.0% 1/2*",
        "2",
        "0.6",
        "25.9",
        "63.3*",
        "1",
    ]
    assert cells["筱塘社区第三网格"][1:] == ["0", "0", "—", "—", "—", "0", "—", "—", "—", "—"]
    assert cells["城厢区"][1:] == [
        "12",
        "11",
        "60.0% 6/10",
        "55.6% 5/9",
        "71.4% 5/7",
        "4",
        "1.5",
        "45.7",
        "62.4",
        "1",
    ]
    # indentation shows the tree; every line fits a 120-column terminal
    assert lines[6].startswith("  龙桥街道") and lines[8].startswith("      筱塘社区第一网格")
    assert max(len(line) + sum(1 for ch in line if ord(ch) > 0x2E80) for line in lines) <= 120


async def test_csv_report(engine: AsyncEngine) -> None:
    directory = await seed(engine)
    async with session_factory(engine)() as session:
        out = await render_report(session, directory, period=NOVEMBER, unit_id="s", fmt="csv", now=AFTER)
    reader = csv.DictReader(io.StringIO(out))
    assert tuple(reader.fieldnames or ()) == CSV_HEADER
    rows = {row["unit_id"]: row for row in reader}
    assert list(rows) == ["s", "c", "g1", "g2", "g3", "c2", "g4"]
    g1 = rows["g1"]
    assert {k: g1[k] for k in ("period", "unit_name", "level", "parent_id", "depth")} == {
        "period": "2026-11", "unit_name": "筱塘社区第一网格", "level": "grid", "parent_id": "c", "depth": "2"
    }  # fmt: skip
    numbers = ("received", "dispatched", "response_due", "responded", "response_rate", "due", "resolved",
               "resolution_rate", "rated", "satisfied", "satisfaction_rate", "overdue", "avg_accept_hours",
               "avg_resolve_hours", "composite", "rank")  # fmt: skip
    assert [g1[k] for k in numbers] == [
        "7", "7", "5", "2", "0.4000", "5", "2", "0.4000", "4", "3", "0.7500", "2", "2.50", "72.67", "52.25", "2"
    ]  # fmt: skip
    assert [rows["g2"][k] for k in ("resolution_rate", "avg_accept_hours", "composite", "rank")] == [
        "0.6667", "0.58", "63.33", "1"
    ]  # fmt: skip
    assert [rows["g3"][k] for k in ("response_rate", "avg_accept_hours", "composite", "rank")] == [
        "",
        "",
        "",
        "",
    ]
    assert [rows[u]["composite"] for u in ("s", "c", "c2")] == ["62.44", "57.50", "100.00"]
    assert [rows[u]["rank"] for u in ("s", "c", "c2")] == ["1", "2", "1"]


async def test_render_report_refuses_bad_input_in_one_line(engine: AsyncEngine) -> None:
    directory = await seed(engine)
    async with session_factory(engine)() as session:
        for kwargs, message in (
            ({"period": "2026-13"}, "统计周期 “2026-13” 不存在"),
            ({"period": "明年"}, "无法识别的统计周期 “明年”"),
            ({"unit_id": "x"}, "未知单位：x"),
            ({"fmt": "xlsx"}, "未知格式：xlsx"),
        ):
            with pytest.raises(ValueError, match=message) as caught:
                await render_report(session, directory, now=AFTER, **kwargs)
            assert "\n" not in str(caught.value)


async def test_stats_reply(engine: AsyncEngine) -> None:
    """`统计 本月` by the community admin on 11-10 10:30 (see the test above for g1 and g2):
    c: received 5, overdue 1; 响应 3/4, 解决 2/2, 满意 4/5; composite 22.5 + 35 + 28 = 85.5."""
    directory = await seed(engine)
    now = t("11-10 10:30")
    async with session_factory(engine)() as session:
        reply = await stats_reply(session, directory, "c", "本月", now)
        grid = await stats_reply(session, directory, "g3", "今日", now)
        bad = await stats_reply(session, directory, "c", "明天", now)
    assert reply == "\n".join(
        [
            "筱塘社区 统计 · 本月（2026-11），截至 11-10 10:30",
            "受理 5 单，逾期 1 单",
            "响应率 75.0% 3/4（样本少）",
            "解决率 100.0% 2/2（样本少）",
            "满意率 80.0% 4/5",
            "综合 85.5 分（样本少）",
            "各网格：",
            "第一网格 受理3 响应50% 解决100% 满意75%",
            "第二网格 受理2 响应100% 解决— 满意100% 逾期1",
            "第三网格 无工单",
            "回复“排名”看名次，“统计 本周/上月”等换时段。",
        ]
    )
    assert len(reply.encode()) <= REPLY_BYTES
    assert grid.splitlines()[0] == "筱塘社区第三网格 统计 · 今日（2026-11-10），截至 11-10 10:30"
    assert "响应率 —" in grid and "综合 — 分" in grid and "各" not in grid
    assert grid.endswith("回复“统计 本周/上月”等换时段。")
    assert bad.startswith("统计时段请写")


async def test_ranking_reply(engine: AsyncEngine) -> None:
    directory = await seed(engine)
    async with session_factory(engine)() as session:
        community = await ranking_reply(session, directory, "c", "上月", AFTER)
        street = await ranking_reply(session, directory, "s", NOVEMBER, AFTER)
        grid = await ranking_reply(session, directory, "g1", "2026-11", AFTER)
        weighted = await ranking_reply(session, directory, "c", NOVEMBER, AFTER, weights=Weights(0, 0, 1))
    assert community == "\n".join(
        [
            "筱塘社区 各网格排名 · 上月（2026-11）",
            "综合分 = 响应30% + 解决35% + 满意35%",
            "1. 第二网格 63.3 分（响应75% 解决67% 满意50%，样本少）",
            "2. 第一网格 52.3 分（响应40% 解决40% 满意75%，样本少）",
            "无数据：第三网格",
            "回复“统计 本月”看明细，“排名 上月”看上月。",
        ]
    )
    assert street.splitlines()[2:4] == [
        "1. 东圳社区 100.0 分（响应100% 解决100% 满意100%，样本少）",
        "2. 筱塘社区 57.5 分（响应56% 解决50% 满意67%）",  # 9, 8 and 6: enough
    ]
    # a grid sees its siblings, itself marked
    assert grid.splitlines()[3] == "2. 第一网格（本单位） 52.3 分（响应40% 解决40% 满意75%，样本少）"
    # weights change the order: on 满意 alone g1 (75%) beats g2 (50%)
    assert weighted.splitlines()[1:4] == [
        "综合分 = 响应0% + 解决0% + 满意100%",
        "1. 第一网格 75.0 分（响应40% 解决40% 满意75%，样本少）",
        "2. 第二网格 50.0 分（响应75% 解决67% 满意50%，样本少）",
    ]
    for reply in (community, street, grid, weighted):
        assert len(reply.encode()) <= REPLY_BYTES


async def test_chat_replies_fit_a_phone_with_many_units(engine: AsyncEngine) -> None:
    units = {"c": UnitInfo("c", "很长名字的示范社区", "community", None, None, None)}
    for n in range(40):
        units[f"g{n:02d}"] = UnitInfo(f"g{n:02d}", f"名字很长的第{n}号示范网格", "grid", "c", None, None)
    directory = Directory(units, {}, {}, ())
    async with session_factory(engine)() as session:
        stats = await stats_reply(session, directory, "c", "本周", AFTER)
        ranking = await ranking_reply(session, directory, "c", "本月", AFTER)
    for reply in (stats, ranking):
        assert len(reply.encode()) <= REPLY_BYTES
        assert reply.splitlines()[-1].startswith("回复“")
    assert "另有" in stats and "名字很长的第0号示范网格 无工单" in stats
    assert "无数据 40 个" in ranking


# --- pure definitions ---------------------------------------------------------------------------


def test_ratio_and_composite_with_zero_denominators() -> None:
    assert ratio(0, 0) is None and ratio(0, 4) == 0.0 and ratio(3, 4) == 0.75
    w = Weights()
    assert composite(1.0, 1.0, 1.0, w) == pytest.approx(100.0)
    assert composite(0.4, 0.4, 0.75, w) == pytest.approx(52.25)
    # a missing rate is left out and the other weights renormalised: 30·1 + 35·0 over 65
    assert composite(1.0, None, 0.0, w) == pytest.approx(3000 / 65)
    assert composite(None, None, 0.5, w) == pytest.approx(50.0)
    assert composite(None, None, None, w) is None
    assert composite(1.0, None, None, Weights(0, 35, 35)) is None  # only a zero-weight rate exists


def test_weights_from_config() -> None:
    assert Weights.from_sequence([30, 35, 35]) == Weights()
    assert Weights.from_sequence([1, 1, 2]).describe() == "响应25% + 解决25% + 满意50%"
    for bad in ([30, 35], [30, 35, 35, 0], [-1, 35, 35], [0, 0, 0], ["30", 35, 35], [True, 1, 1], "303", 30):
        with pytest.raises(ValueError, match=r"report\.weights") as caught:
            Weights.from_sequence(bad)  # type: ignore[arg-type]
        assert "\n" not in str(caught.value)


def test_periods_are_china_time() -> None:
    now = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 12-01 01:00 in Beijing
    month = parse_period("2026-11", now)
    assert (month.label, month.start, month.end) == (
        "2026-11",
        datetime(2026, 10, 31, 16, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 16, 0, tzinfo=UTC),
    )
    assert parse_period("2026-12", now).end == t("01-01 00:00", 2027)
    week = parse_period("2026-W47", now)
    assert (week.label, week.start, week.end) == ("2026-W47", t("11-16 00:00"), t("11-23 00:00"))
    assert parse_period("2026w47", now) == week
    assert parse_period("2026-11-05", now).start == t("11-05 00:00")
    assert parse_period("今日", now) == Period("2026-12-01", t("12-01 00:00"), t("12-02 00:00"), "今日")
    assert parse_period("昨天", now).label == "2026-11-30"
    assert parse_period("本周", now).start == t("11-30 00:00")  # Monday; 12-01 is a Tuesday
    assert parse_period("上周", now).label == "2026-W48"
    assert (
        parse_period("本月", now).label == "2026-12" and parse_period("本月", now).title == "本月（2026-12）"
    )
    assert parse_period("上月", now).label == "2026-11"
    assert parse_period("上月", t("01-15 12:00", 2027)).label == "2026-12"
    assert parse_period(" 2026-01 ", now).start == t("01-01 00:00")


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-W54", "2026-02-30", "明天", "11月", "", "2026"])
def test_bad_periods_are_one_line_value_errors(text: str) -> None:
    with pytest.raises(ValueError, match="统计周期") as caught:
        parse_period(text, AFTER)
    message = str(caught.value)
    assert "\n" not in message and "2026-11" in message


def test_cutoff() -> None:
    month = parse_period("2026-11", AFTER)
    assert month.cutoff(AFTER) == month.end
    assert month.cutoff(t("11-10 10:30")) == t("11-10 10:30")
    assert month.cutoff(t("10-01 00:00")) == month.start  # a future period: nothing counts yet


@dataclass
class Build:
    """An OrderRow built step by step for the pure tests (created 11-02 09:00, accept due 11:00)."""

    steps: list[tuple[str, str, str | None, str]] = field(default_factory=list)
    resolve_due: str | None = None
    rating: str | None = None

    def row(self) -> OrderRow:
        events = [EventRow("create", t("11-02 09:00"), "new")]
        events += [EventRow(kind, t(at), state, text) for kind, at, state, text in self.steps]
        return OrderRow(
            1, "g1", t("11-02 09:00"), t("11-02 11:00"),
            t(self.resolve_due) if self.resolve_due else None, self.rating, tuple(events),
        )  # fmt: skip


START, END = t("11-01 00:00"), t("12-01 00:00")


def test_cancel_before_the_deadline_is_no_response_but_after_it_is_a_late_one() -> None:
    early = Build([("assign", "11-02 09:00", "assigned", ""), ("cancel", "11-02 10:59", "cancelled", "")])
    late = Build([("assign", "11-02 09:00", "assigned", ""), ("cancel", "11-02 12:00", "cancelled", "")])
    a, b = order_facts(early.row(), START, END), order_facts(late.row(), START, END)
    assert (a.received, a.dispatched, a.response_due, a.due, a.overdue) == (1, 1, 0, 0, 0)
    assert (b.response_due, b.responded, b.due, b.overdue) == (1, 0, 0, 0)


def test_the_response_answers_the_last_dispatch() -> None:
    """A 转派 sets a new accept deadline (handlers/workflow.py); the acceptance that counts is the first one
    after it. Accepted by the first grid, transferred, never accepted by the second: late."""
    transferred = Build(
        [("assign", "11-02 09:00", "assigned", ""), ("accept", "11-02 10:00", "accepted", ""),
         ("transfer", "11-02 10:30", "assigned", "")]
    )  # fmt: skip
    facts = order_facts(transferred.row(), START, END)  # stored accept deadline: 11-02 11:00
    assert (facts.response_due, facts.responded, facts.overdue) == (1, 0, 1)
    assert (facts.accepts, facts.accept_hours) == (1, 1.0)  # how long until someone first took it
    answered = Build([*transferred.steps, ("accept", "11-02 10:45", "accepted", "")])
    assert order_facts(answered.row(), START, END).responded == 1


def test_acceptance_exactly_at_the_deadline_is_in_time() -> None:
    order = Build([("assign", "11-02 09:00", "assigned", ""), ("accept", "11-02 11:00", "accepted", "")])
    order.resolve_due = "11-09 11:00"
    facts = order_facts(order.row(), START, END)
    assert (facts.response_due, facts.responded, facts.accepts, facts.accept_hours) == (1, 1, 1, 2.0)
    assert (facts.due, facts.resolved, facts.overdue) == (1, 0, 1)


def test_a_rating_event_without_its_word_falls_back_to_the_order_rating() -> None:
    steps = [("claim", "11-02 09:10", "accepted", ""), ("resolve", "11-02 12:00", "resolved", ""),
             ("rate", "11-03 09:00", "closed", "")]  # fmt: skip
    assert order_facts(Build(steps, "11-09 09:10", "基本满意").row(), START, END).satisfied == 1
    assert order_facts(Build(steps, "11-09 09:10", None).row(), START, END).satisfied == 0
    assert order_facts(Build(steps, "11-09 09:10", None).row(), START, END).rated == 1


def test_state_at_the_cutoff() -> None:
    steps = [("assign", "11-02 09:05", "assigned", ""), ("accept", "11-02 10:00", "accepted", ""),
             ("progress", "11-02 11:00", "accepted", "在修"), ("resolve", "11-03 10:00", "resolved", "")]  # fmt: skip
    row = Build(steps).row()
    assert state_at(row, t("11-02 08:00")) is None
    assert state_at(row, t("11-02 09:00")) is None  # created at the cut-off: not yet there
    assert state_at(row, t("11-02 09:05")) == "new"  # the assignment at 09:05 is not before 09:05
    assert state_at(row, t("11-02 10:30")) == "accepted"
    assert state_at(row, END) == "resolved"


def test_a_community_is_the_sum_of_its_grids_and_outsiders_are_ignored() -> None:
    units = {
        "c": UnitNode("c", "社区", "community", None),
        "g1": UnitNode("g1", "一", "grid", "c"),
        "g2": UnitNode("g2", "二", "grid", "c"),
    }
    steps = [("assign", "11-02 09:00", "assigned", ""), ("accept", "11-02 10:00", "accepted", "")]
    one = Build(steps, "11-09 10:00").row()
    orders = [one, replace(one, id=2, unit_id="g2"), replace(one, id=3, unit_id="elsewhere")]
    rows = build_rows(units, "c", orders, START, END)
    total = Counts()
    for row in rows[1:]:
        total += row.counts
    assert rows[0].counts == total and total.received == 2
    assert [row.rank for row in rows] == [1, 1, 2]  # equal scores: the unit id breaks the tie


def test_an_order_in_the_future_of_the_cutoff_counts_nowhere() -> None:
    assert order_facts(Build().row(), START, t("11-02 09:00")) == Counts()
    assert order_facts(Build().row(), t("12-01 00:00"), t("12-10 00:00")).overdue == 1  # still new, late


# --- the middle of a month ----------------------------------------------------------------------


def test_an_order_accepted_in_time_counts_at_once_and_one_not_yet_is_running() -> None:
    assigned = [("assign", "11-02 09:00", "assigned", "")]
    accepted = Build([*assigned, ("accept", "11-02 10:00", "accepted", "")], "11-09 10:00")
    at = t("11-02 10:30")  # the accept deadline, 11:00, is still ahead
    facts = order_facts(accepted.row(), START, at, END)
    assert (facts.response_due, facts.responded, facts.response_running) == (1, 1, 0)
    assert (facts.due, facts.resolve_running) == (0, 1)  # resolution waits for its deadline
    waiting = order_facts(Build(assigned).row(), START, at, END)
    assert (waiting.response_due, waiting.responded, waiting.response_running) == (0, 0, 1)
    assert (waiting.due, waiting.resolve_running) == (0, 1)  # due when its acceptance is
    # a late acceptance is judged once the deadline has passed, and then as late
    late = Build([*assigned, ("accept", "11-02 12:00", "accepted", "")], "11-09 12:00").row()
    assert order_facts(late, START, t("11-02 12:30"), END).responded == 0
    cancelled = Build([*assigned, ("cancel", "11-02 10:00", "cancelled", "")]).row()
    assert order_facts(cancelled, START, at, END) == order_facts(cancelled, START, at)  # nothing running
    # a month that is over has nothing running: everything is judged
    assert order_facts(Build(assigned).row(), START, END).response_running == 0


def test_a_resolved_order_waits_for_its_rating() -> None:
    steps = [("claim", "11-02 09:10", "accepted", ""), ("resolve", "11-02 12:00", "resolved", "")]
    facts = order_facts(Build(steps, "11-09 09:10").row(), START, t("11-03 09:00"), END)
    assert (facts.rated, facts.awaiting_rating, facts.resolve_running) == (0, 1, 1)


async def test_early_in_the_month_the_rates_say_what_is_still_running(engine: AsyncEngine) -> None:
    """`统计 本月` on 11-02 10:30. O1 was accepted at 10:00, before its 11:00 deadline: responded, at once
    (1/1, 样本少). O1 and O5 are resolved or being worked with deadlines later in November: 解决率 shows
    2 still running. No rating yet; O5 (resolved 11-02 10:00) waits for one. O16 is overdue."""
    directory = await seed(engine)
    async with session_factory(engine)() as session:
        reply = await stats_reply(session, directory, "c", "本月", t("11-02 10:30"))
        now = t("11-02 10:30")
        rows = await report_rows(session, directory, parse_period("本月", now), "c", now=now)
        text = await render_report(session, directory, period="本月", unit_id="c", now=t("11-02 10:30"))
    assert reply == "\n".join(
        [
            "筱塘社区 统计 · 本月（2026-11），截至 11-02 10:30",
            "受理 1 单，逾期 1 单",
            "响应率 100.0% 1/1（样本少）",
            "解决率 2 单未到期",
            "满意率 1 单待评价",
            "综合 100.0 分（样本少）",
            "各网格：",
            "第一网格 受理1 响应100% 解决— 满意—",
            "第二网格 受理0 响应— 解决— 满意— 逾期1",
            "第三网格 无工单",
            "回复“排名”看名次，“统计 本周/上月”等换时段。",
        ]
    )
    c = rows[0].counts
    assert (c.response_running, c.resolve_running, c.awaiting_rating) == (0, 2, 1)
    assert rows[0].small_sample
    line = next(line for line in text.splitlines() if line.startswith("筱塘社区 "))
    assert "100.0% 1/1*" in line and "2 单未到期" in line and "1 单待评价" in line and "100.0*" in line


def test_a_score_on_few_orders_is_marked_and_on_enough_it_is_not() -> None:
    units = {"g1": UnitNode("g1", "一", "grid", None)}
    steps = [("assign", "11-02 09:00", "assigned", ""), ("accept", "11-02 10:00", "accepted", "")]
    one = Build(steps, "11-09 10:00").row()
    few = build_rows(units, "g1", [replace(one, id=i) for i in range(4)], START, END)[0]
    enough = build_rows(units, "g1", [replace(one, id=i) for i in range(5)], START, END)[0]
    assert few.small_sample and not enough.small_sample  # 4 orders, then 5 (no ratings: left out)
    assert (enough.counts.response_due, enough.counts.due, enough.counts.rated) == (5, 5, 0)
    assert not build_rows(units, "g1", [], START, END)[0].small_sample  # no score at all: nothing to mark


@pytest.mark.usefixtures("backend")
async def test_last_month_and_last_week_in_chat(start: Any) -> None:
    """`统计 上月`, `统計 上週` (traditional) and `排名 上月` answer, instead of the hint."""
    _, wechat = await start()
    for text, head in (
        ("统计 上月", "筱塘社区 统计 · 上月（"),
        ("統計 上週", "筱塘社区 统计 · 上周（"),
        ("统计 上个月", "筱塘社区 统计 · 上月（"),
        ("排名 上月", "筱塘社区 各网格排名 · 上月（"),
        ("排名", "筱塘社区 各网格排名 · 本月（"),
    ):
        reply = (await wechat.say("oAdmin-xiaotang", text)).content or ""
        assert reply.startswith(head), (text, reply)
    assert "统计 上周" in ((await wechat.say("oAdmin-xiaotang", "统计 明年")).content or "")
