"""主动治理: the reports of a recent window by grid and category, and the hot spots they open and close."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring_conflicts
from storage.models import HotSpot, OrderFollower, WorkOrder


@dataclass
class Reports:
    """Reports (new orders, and residents who reported an open order again) of one grid and category."""

    unit_id: str
    category: str
    count: int = 0
    order_ids: set[int] = field(default_factory=set)


async def reports_between(session: AsyncSession, since: datetime, until: datetime) -> list[Reports]:
    """Every grid and category with reports in [since, until], busiest first. Two indexed range scans."""
    found: dict[tuple[str, str], Reports] = {}
    orders = select(WorkOrder.id, WorkOrder.unit_id, WorkOrder.category).where(
        WorkOrder.created_at >= since,
        WorkOrder.created_at <= until,
        WorkOrder.unit_id.is_not(None),
        WorkOrder.state != "cancelled",
    )
    again = (
        select(WorkOrder.id, WorkOrder.unit_id, WorkOrder.category)
        .select_from(OrderFollower)
        .join(WorkOrder, WorkOrder.id == OrderFollower.order_id)
        .where(OrderFollower.created_at >= since, OrderFollower.created_at <= until)
    )
    for statement in (orders, again):
        for order_id, unit_id, category in (await session.execute(statement)).all():
            entry = found.setdefault((unit_id, category), Reports(unit_id, category))
            entry.count += 1
            entry.order_ids.add(int(order_id))
    return sorted(found.values(), key=lambda r: (-r.count, r.unit_id, r.category))


async def counts_between(
    session: AsyncSession, pairs: Collection[tuple[str, str]], since: datetime, until: datetime
) -> dict[tuple[str, str], int]:
    """Reports of these grids and categories in [since, until): the baseline of their usual rate. Two
    grouped queries over the range, whatever the number of pairs."""
    if not pairs:
        return {}
    units, categories = sorted({u for u, _ in pairs}), sorted({c for _, c in pairs})
    orders = (
        select(WorkOrder.unit_id, WorkOrder.category, func.count())
        .where(
            WorkOrder.created_at >= since,
            WorkOrder.created_at < until,
            WorkOrder.unit_id.in_(units),
            WorkOrder.category.in_(categories),
            WorkOrder.state != "cancelled",
        )
        .group_by(WorkOrder.unit_id, WorkOrder.category)
    )
    again = (
        select(WorkOrder.unit_id, WorkOrder.category, func.count())
        .select_from(OrderFollower)
        .join(WorkOrder, WorkOrder.id == OrderFollower.order_id)
        .where(
            OrderFollower.created_at >= since,
            OrderFollower.created_at < until,
            WorkOrder.unit_id.in_(units),
            WorkOrder.category.in_(categories),
        )
        .group_by(WorkOrder.unit_id, WorkOrder.category)
    )
    counts = dict.fromkeys(pairs, 0)
    for statement in (orders, again):
        for unit_id, category, count in (await session.execute(statement)).all():
            if (unit_id, category) in counts:
                counts[(unit_id, category)] += int(count)
    return counts


def open_key(unit_id: str, category: str) -> str:
    return f"{unit_id}|{category}"


async def open_hotspot(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """Record a new hot spot; None when that grid and category has one open already (whoever inserted
    it first alerts, once, even with several processes checking at the same moment)."""
    values = {**values, "open_key": open_key(values["unit_id"], values["category"]), "closed_at": None}
    statement = insert_ignoring_conflicts(session, HotSpot, HotSpot.id)
    return (await session.execute(statement, values)).scalar_one_or_none()


async def open_hotspots(session: AsyncSession, unit_ids: Collection[str] | None = None) -> list[HotSpot]:
    statement = select(HotSpot).where(HotSpot.open_key.is_not(None)).order_by(HotSpot.opened_at, HotSpot.id)
    if unit_ids is not None:
        statement = statement.where(HotSpot.unit_id.in_(sorted(unit_ids)))
    return list((await session.scalars(statement)).all())


async def grow_hotspot(session: AsyncSession, hotspot_id: int, reports: int, order_ids: list[int]) -> None:
    """An open hot spot keeps the most reports seen in a window and every order seen while it was open."""
    await session.execute(
        update(HotSpot)
        .where(HotSpot.id == hotspot_id, HotSpot.open_key.is_not(None))
        .values(reports=reports, order_ids=order_ids)
    )


async def close_hotspot(session: AsyncSession, hotspot_id: int, at: datetime) -> bool:
    """It has cooled down; False if another process closed it first."""
    result = await session.execute(
        update(HotSpot)
        .where(HotSpot.id == hotspot_id, HotSpot.open_key.is_not(None))
        .values(open_key=None, closed_at=at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def orders_by_id(session: AsyncSession, ids: Collection[int]) -> list[WorkOrder]:
    statement = select(WorkOrder).where(WorkOrder.id.in_(sorted(ids))).order_by(WorkOrder.id)
    return list((await session.scalars(statement)).all())
