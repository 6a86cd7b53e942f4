"""How long the dashboard's queries take over 100,000 orders in PostgreSQL.

    python bench/dashboard.py [--orders 100000] [--runs 7] [--without-indexes]

Makes a database of its own (dropped at the end), imports the demo org, seeds the orders over the past
year with their events (create, assign, accept, resolve, rate as their state says) through COPY, then
times, as a district admin (all 10 grids) and a community admin (3 grids):

- the overview JSON as each 5-second poll asks for it (the counts, charts and heat view live; the rates
  from the cache that the background keeps fresh), and the running month's rates that the background
  computes every few seconds while someone watches, and
- a filtered orders list (open, one category, page 1 of 50) and a text search.

It prints the median and p95 of each. `--without-indexes` drops the dashboard's indexes (migration 0007)
first, to show what they buy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import _common  # noqa: F401 - puts the repository root on sys.path
import asyncpg
from _common import PG_ADMIN_URL, _plain_dsn, percentile, reachable, scratch_postgres

from bot.dashboard.auth import Admin, admin_in
from bot.dashboard.overview import RatesCache, overview
from handlers.directory import Directory
from handlers.rates import DEFAULT_WEIGHTS, parse_period
from handlers.report import report_rows
from handlers.workflow import OPEN_STATES
from storage import dashboard as queries
from storage.db import create_engine, session_factory
from storage.org import apply_org, load_org_file
from tests.conftest import DEMO_ORG

DISTRICT, COMMUNITY = "oDistrict001", "oAdmin-xiaotang"
CATEGORIES = ["环境卫生", "物业服务", "设施维修", "停车交通", "噪音扰民", "治安安全", "水电燃气", "绿化园林"]
WORDS = [
    "楼道灯坏了",
    "垃圾没人清理",
    "路面有坑",
    "晚上噪音太大",
    "车库积水",
    "井盖松动",
    "电梯故障",
    "树枝挡路",
]
INDEXES = ("ix_work_order_unit_created",)


def seed_rows(
    n: int, grids: list[str], leaders: dict[str, str], now: datetime
) -> tuple[list[Any], list[Any]]:
    rng = random.Random(12)
    orders, events = [], []
    for order_id in range(1, n + 1):
        created = now - timedelta(seconds=rng.uniform(0, 365 * 86400))
        grid = rng.choice(grids)
        category = rng.choice(CATEGORIES)
        urgent = rng.random() < 0.03
        accept_due = created + timedelta(hours=0.5 if urgent else 2)
        fate = rng.random()
        recent = created > now - timedelta(days=10)
        open_order = (recent and fate < 0.5) or fate < 0.003  # a few old orders are stuck open
        accepted = created + timedelta(minutes=rng.expovariate(1 / 70)) if fate < 0.97 or not recent else None
        resolved = (
            accepted + timedelta(hours=rng.expovariate(1 / 40)) if accepted and not open_order else None
        )
        rated = resolved + timedelta(hours=rng.uniform(1, 60)) if resolved and fate < 0.8 else None
        closed = rated or (resolved + timedelta(days=3) if resolved else None)
        if closed and closed > now:
            closed, rated = None, None
        state = (
            "closed"
            if closed
            else "resolved"
            if resolved and resolved < now
            else "accepted"
            if accepted and accepted < now
            else "assigned"
        )
        rating = rng.choice(["满意", "满意", "基本满意", "不满意"]) if rated else None
        resolve_due = accepted + timedelta(days=7) if accepted else None
        orders.append(
            (
                order_id, f"oResident{order_id % 20000}", f"{rng.choice(WORDS)}（{order_id}号）", category,
                0.8, [], urgent, None, None, grid, None, leaders[grid], state, [], None, None, None,
                rating, 0, 0, created, accept_due, resolve_due, None,
                accepted if state != "assigned" else None, resolved, closed,
            )
        )  # fmt: skip
        steps = [
            ("create", "resident", None, "new", created),
            ("assign", "system", "new", "assigned", created),
        ]
        if accepted and accepted < now:
            steps.append(("accept", leaders[grid], "assigned", "accepted", accepted))
        if resolved and resolved < now:
            steps.append(("resolve", leaders[grid], "accepted", "resolved", resolved))
        if rated:
            steps.append(("rate", "resident", "resolved", "closed", rated))
        elif closed:
            steps.append(("close_unrated", "system", "resolved", "closed", closed))
        events += [(order_id, kind, actor, rating or "", a, b, at) for kind, actor, a, b, at in steps]
    return orders, events


ORDER_COLUMNS = [
    "id", "resident_openid", "text", "category", "confidence", "keywords", "urgent", "place_id",
    "place_detail", "unit_id", "department_id", "assignee_openid", "state", "media", "lat", "lng",
    "duplicate_of", "rating", "escalation_level", "timer_step", "created_at", "accept_due", "resolve_due",
    "rate_due", "accepted_at", "resolved_at", "closed_at",
]  # fmt: skip
EVENT_COLUMNS = ["order_id", "kind", "actor", "text", "from_state", "to_state", "at"]


async def seed(url: str, n: int) -> Directory:
    engine = create_engine(url)
    async with session_factory(engine)() as session, session.begin():
        await apply_org(session, load_org_file(str(DEMO_ORG)))
    async with session_factory(engine)() as session:
        directory = await Directory.load(session)
    await engine.dispose()
    grids = sorted(u.id for u in directory.units.values() if u.level == "grid")
    leaders = {g: directory.people_in(g, ("grid_leader",))[0].openid for g in grids}
    orders, events = seed_rows(n, grids, leaders, datetime.now(UTC))
    conn = await asyncpg.connect(_plain_dsn(url))
    try:
        await conn.set_type_codec(
            "json",
            encoder=lambda v: json.dumps(v).encode(),
            decoder=json.loads,
            schema="pg_catalog",
            format="binary",
        )
        await conn.copy_records_to_table("work_order", records=orders, columns=ORDER_COLUMNS)
        await conn.copy_records_to_table("work_order_event", records=events, columns=EVENT_COLUMNS)
        await conn.execute("SELECT setval('work_order_id_seq', (SELECT max(id) FROM work_order))")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    print(f"seeded {len(orders):,} orders and {len(events):,} events")
    return directory


async def timed(label: str, runs: int, call: Any) -> None:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    print(f"  {label:<44} median {statistics.median(times):7.1f} ms   p95 {percentile(times, 95):7.1f} ms")


async def measure_admin(sessions: Any, directory: Directory, admin: Admin, now: datetime, runs: int) -> None:
    print(f"{admin.title}（{len(admin.grids)} 个网格）")
    cache = RatesCache()

    async def poll() -> None:
        await overview(sessions, directory, admin, now, DEFAULT_WEIGHTS, cache)

    async def running_month() -> None:
        async with sessions() as session:
            await report_rows(session, directory, parse_period("本月", now), admin.unit_id, now=now)

    async def filtered() -> None:
        flt = queries.OrderFilter(states=tuple(sorted(OPEN_STATES)), categories=("设施维修",), now=now)
        async with sessions() as session:
            await queries.find_orders(session, admin.grids, flt, limit=50)

    async def search() -> None:
        flt = queries.OrderFilter(text="井盖", overdue=True, now=now)
        async with sessions() as session:
            await queries.find_orders(session, admin.grids, flt, limit=50)

    await poll()  # starts the rates of the 6 months in the background, as the first page view does
    await asyncio.gather(*cache.tasks.values())
    await timed("overview JSON, each 5-second poll", runs, poll)
    await timed("  the running month's rates (in the background)", max(3, runs // 2), running_month)
    await timed("list: open · 设施维修 · page 1 of 50", runs, filtered)
    await timed("list: text 井盖 · overdue · page 1 of 50", runs, search)
    await cache.close()


async def measure(url: str, directory: Directory, runs: int) -> None:
    engine = create_engine(url)
    now = datetime.now(UTC)
    try:
        for openid in (DISTRICT, COMMUNITY):
            admin = admin_in(directory, openid)
            assert admin is not None
            await measure_admin(session_factory(engine), directory, admin, now, runs)
    finally:
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--without-indexes", action="store_true")
    args = parser.parse_args()
    if not reachable(PG_ADMIN_URL):
        raise SystemExit(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    async with scratch_postgres(tag="dashboard") as url:
        directory = await seed(url, args.orders)
        if args.without_indexes:
            conn = await asyncpg.connect(_plain_dsn(url))
            try:
                for name in INDEXES:
                    await conn.execute(f"DROP INDEX IF EXISTS {name}")
                await conn.execute("ANALYZE")
            finally:
                await conn.close()
            print("without the dashboard's indexes:", ", ".join(INDEXES))
        await measure(url, directory, args.runs)


if __name__ == "__main__":
    asyncio.run(main())
