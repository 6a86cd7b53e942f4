"""The overview (态势) as one JSON-able dict: the page draws it, and polls it again every few seconds.

Counts come from `storage.dashboard`; the three rates and the 综合分 ranking from `handlers.report`
(`report_rows`, the same numbers as `gridbot report`, `统计` and `排名`). A finished month never changes,
so its rates are kept for a while instead of being computed on every poll.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.dashboard.auth import Admin
from handlers.directory import Directory
from handlers.rates import CHINA, UnitRates, Weights, parse_period, ranked
from handlers.report import report_rows
from handlers.workflow import OPEN_STATES
from storage import dashboard as queries

DAYS = 30
MONTHS = 6
FINISHED_MONTH_SECONDS = 600.0
# Hours: the upper bound of each bar of the time distributions, and its label.
BUCKETS = ((1, "1小时内"), (2, "1-2小时"), (4, "2-4小时"), (8, "4-8小时"), (24, "8-24小时"))
BUCKETS += ((72, "1-3天"), (168, "3-7天"), (float("inf"), "7天以上"))


@dataclass
class MonthCache:
    """Rates of finished months per (unit, month, weights), for FINISHED_MONTH_SECONDS."""

    entries: dict[tuple[str, str, Weights], tuple[float, UnitRates]] = field(default_factory=dict)

    def get(self, key: tuple[str, str, Weights]) -> UnitRates | None:
        found = self.entries.get(key)
        if found is None or time.monotonic() - found[0] > FINISHED_MONTH_SECONDS:
            return None
        return found[1]

    def put(self, key: tuple[str, str, Weights], row: UnitRates) -> None:
        if len(self.entries) > 10_000:
            self.entries.clear()
        self.entries[key] = (time.monotonic(), row)


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


def histogram(hours: list[float]) -> list[int]:
    counts = [0] * len(BUCKETS)
    for value in hours:
        counts[next(i for i, (bound, _) in enumerate(BUCKETS) if value < bound)] += 1
    return counts


async def rates_by_month(
    session: AsyncSession,
    directory: Directory,
    admin: Admin,
    now: datetime,
    weights: Weights,
    cache: MonthCache,
) -> tuple[list[dict[str, Any]], list[UnitRates]]:
    """The admin's unit over the last MONTHS months, and this month's rows of the units just below it."""
    months: list[dict[str, Any]] = []
    children: list[UnitRates] = []
    for label in _months(now):
        period = parse_period(label, now)
        key = (admin.unit_id, label, weights)
        row = cache.get(key) if period.end <= now else None
        if row is None:
            rows = await report_rows(session, directory, period, admin.unit_id, now=now, weights=weights)
            row = rows[0]
            if period.end <= now:
                cache.put(key, row)
            else:
                children = [r for r in rows if r.depth == 1]
        months.append(
            {
                "month": label,
                "response": _percent(row.response_rate),
                "resolution": _percent(row.resolution_rate),
                "satisfaction": _percent(row.satisfaction_rate),
                "composite": None if row.composite is None else round(row.composite, 1),
                "received": row.counts.received,
            }
        )
    return months, children


async def overview(
    session: AsyncSession,
    directory: Directory,
    admin: Admin,
    now: datetime,
    weights: Weights,
    cache: MonthCache,
) -> dict[str, Any]:
    scope = admin.grids
    local = now.astimezone(CHINA)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - timedelta(days=today.weekday())
    first_day = today - timedelta(days=DAYS - 1)
    counts = await queries.open_counts(session, scope, OPEN_STATES, now)
    daily = await queries.daily_counts(session, scope, first_day)
    accept_hours, resolve_hours = await queries.durations(session, scope, first_day)
    per_grid = await queries.open_by_grid(session, scope, OPEN_STATES, now)
    months, children = await rates_by_month(session, directory, admin, now, weights, cache)

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
            "today": await queries.intake_since(session, scope, today),
            "week": await queries.intake_since(session, scope, week),
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
            "accept": histogram(accept_hours),
            "resolve": histogram(resolve_hours),
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
            for row in ranked(children)
        ],
        "heat": heat,
    }
