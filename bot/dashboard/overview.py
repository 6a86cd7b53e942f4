"""The overview (态势) as one JSON-able dict: the page draws it, and polls it again every few seconds.

Counts come from `storage.dashboard`; the three rates and the 综合分 ranking from `handlers.report`
(`report_rows`, the same numbers as `gridbot report`, `统计` and `排名`), computed in the background and
kept (`RatesCache`) so that a poll never waits for a month's pass over its orders.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.dashboard.auth import Admin
from handlers.directory import Directory
from handlers.rates import CHINA, Period, UnitRates, Weights, parse_period, ranked
from handlers.report import report_rows
from handlers.workflow import OPEN_DEADLINES
from storage import dashboard as queries

log = logging.getLogger(__name__)

DAYS = 30
MONTHS = 6
FINISHED_MONTH_SECONDS = 3600.0  # it never changes, short of an org import
RUNNING_MONTH_SECONDS = 5.0  # with a 5-second poll the page trails a change by at most ~10 s
FIRST_WAIT = 0.25
# Hours: the upper bound of each bar of the time distributions, and its label.
BUCKETS = ((1, "1小时内"), (2, "1-2小时"), (4, "2-4小时"), (8, "4-8小时"), (24, "8-24小时"))
BUCKETS += ((72, "1-3天"), (168, "3-7天"), (float("inf"), "7天以上"))


RatesKey = tuple[str, str, Weights]  # unit, month, weights


@dataclass
class RatesCache:
    """The three rates per (unit, month, weights), computed in the background and served while fresh.

    A month's rates take a full pass over its orders and events (`handlers.report.report_rows`): about a
    second for a district's month at 100,000 orders a year. A poll must not wait for that, so a poll gets
    what is cached and, when it is older than its freshness (a finished month: an hour, the running month:
    RUNNING_MONTH_SECONDS), one computation per key starts in the background; the next poll shows it.
    A key never computed is waited for up to FIRST_WAIT seconds.
    """

    entries: dict[RatesKey, tuple[float, list[UnitRates]]] = field(default_factory=dict)
    tasks: dict[RatesKey, asyncio.Task[list[UnitRates]]] = field(default_factory=dict)

    async def rows(
        self, key: RatesKey, fresh_for: float, compute: Callable[[], Awaitable[list[UnitRates]]]
    ) -> list[UnitRates] | None:
        entry = self.entries.get(key)
        if entry is None or time.monotonic() - entry[0] > fresh_for:
            task = self.tasks.get(key)
            if task is None:
                task = asyncio.create_task(compute(), name=f"rates {key[0]} {key[1]}")
                self.tasks[key] = task
                task.add_done_callback(lambda done: self._settle(key, done))
            if entry is None:
                await asyncio.wait({task}, timeout=FIRST_WAIT)
                entry = self.entries.get(key)
        return entry[1] if entry else None

    def _settle(self, key: RatesKey, task: asyncio.Task[list[UnitRates]]) -> None:
        self.tasks.pop(key, None)
        if task.cancelled():
            return
        if task.exception() is not None:
            log.warning("dashboard rates for %s %s failed: %s", key[0], key[1], task.exception())
            return
        if len(self.entries) > 10_000:
            self.entries.clear()
        self.entries[key] = (time.monotonic(), task.result())

    async def close(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)


def _months(now: datetime) -> list[str]:
    local = now.astimezone(CHINA)
    year, month = local.year, local.month
    labels = []
    for _ in range(MONTHS):
        labels.append(f"{year}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return labels[::-1]


def _percent(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 1)


async def rates_by_month(
    sessions: async_sessionmaker[AsyncSession],
    directory: Directory,
    admin: Admin,
    now: datetime,
    weights: Weights,
    cache: RatesCache,
) -> tuple[list[dict[str, Any]], list[UnitRates] | None]:
    """The admin's unit over the last MONTHS months (None where not computed yet), and this month's rows
    of the units just below it."""
    months: list[dict[str, Any]] = []
    children: list[UnitRates] | None = None
    for label in _months(now):
        period = parse_period(label, now)

        async def compute(period: Period = period) -> list[UnitRates]:
            async with sessions() as session:
                return await report_rows(session, directory, period, admin.unit_id, now=now, weights=weights)

        running = period.end > now
        fresh_for = RUNNING_MONTH_SECONDS if running else FINISHED_MONTH_SECONDS
        rows = await cache.rows((admin.unit_id, label, weights), fresh_for, compute)
        row = rows[0] if rows else None
        if running and rows is not None:
            children = [r for r in rows if r.depth == 1]
        months.append(
            {
                "month": label,
                "response": _percent(row.response_rate) if row else None,
                "resolution": _percent(row.resolution_rate) if row else None,
                "satisfaction": _percent(row.satisfaction_rate) if row else None,
                "composite": None if row is None or row.composite is None else round(row.composite, 1),
                "received": row.counts.received if row else None,
            }
        )
    return months, children


async def overview(
    sessions: async_sessionmaker[AsyncSession],
    directory: Directory,
    admin: Admin,
    now: datetime,
    weights: Weights,
    cache: RatesCache,
) -> dict[str, Any]:
    scope = admin.grids
    local = now.astimezone(CHINA)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - timedelta(days=today.weekday())
    first_day = today - timedelta(days=DAYS - 1)
    bounds = [bound for bound, _ in BUCKETS[:-1]]
    async with sessions() as session:
        counts = await queries.open_counts(session, scope, OPEN_DEADLINES, now)
        daily = await queries.daily_counts(session, scope, first_day)
        accept = await queries.duration_histogram(session, scope, first_day, "accepted_at", bounds)
        resolve = await queries.duration_histogram(session, scope, first_day, "resolved_at", bounds)
        per_grid = await queries.open_by_grid(session, scope, OPEN_DEADLINES, now)
        today_count = await queries.intake_since(session, scope, today)
        week_count = await queries.intake_since(session, scope, week)
    months, children = await rates_by_month(sessions, directory, admin, now, weights, cache)

    days = [(first_day + timedelta(days=i)).date() for i in range(DAYS)]
    categories = sorted({category for _, category, _ in daily})
    table = {(day, category): n for day, category, n in daily}
    heat = [
        {
            "grid": grid,
            "name": directory.unit_name(grid),
            "lat": directory.centres[grid][0],
            "lng": directory.centres[grid][1],
            "open": per_grid.get(grid, (0, 0))[0],
            "overdue": per_grid.get(grid, (0, 0))[1],
        }
        for grid in scope
        if grid in directory.centres
    ]
    return {
        "unit": admin.unit_name,
        "updated": local.strftime("%H:%M:%S"),
        "counts": {
            "today": today_count,
            "week": week_count,
            "open": counts.open,
            "overdue": counts.overdue,
            "urgent": counts.urgent,
        },
        "daily": {
            "days": [f"{d.month}-{d.day:02d}" for d in days],
            "series": [
                {"label": category, "data": [table.get((d, category), 0) for d in days]}
                for category in categories
            ],
        },
        "months": months,
        "durations": {
            "labels": [label for _, label in BUCKETS],
            "accept": accept,
            "resolve": resolve,
        },
        "ranking": [
            {
                "name": row.name,
                "rank": row.rank if row.composite is not None else None,
                "composite": None if row.composite is None else round(row.composite, 1),
                "response": _percent(row.response_rate),
                "resolution": _percent(row.resolution_rate),
                "satisfaction": _percent(row.satisfaction_rate),
                "received": row.counts.received,
                "overdue": row.counts.overdue,
            }
            for row in ranked(children or [])
        ],
        "ranking_ready": children is not None,
        "heat": heat,
    }
