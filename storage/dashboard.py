"""The dashboard's queries. Every one takes the grids the admin oversees and never reads beyond them.

Counts are grouped in the database; the rates (响应率, 解决率, 满意率, 综合分) are not here: they are
defined once in `handlers/rates.py` over the rows of `storage/stats.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboundMessage, MediaFile, OutboxMessage, WorkOrder
from storage.orders import Deadlines, open_states_of, overdue_condition

__all__ = [
    "OrderFilter",
    "OrderPage",
    "daily_counts",
    "duration_histogram",
    "find_orders",
    "intake_since",
    "media_in_scope",
    "media_of_order",
    "open_by_grid",
    "open_counts",
    "order_in_scope",
    "stream_orders",
    "undelivered_of_order",
]


@dataclass(frozen=True)
class OrderFilter:
    """What the orders list and the export are narrowed to; empty fields narrow nothing."""

    states: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    grids: tuple[str, ...] = ()  # within the admin's grids (a unit chosen in the filter)
    urgent: bool = False
    overdue: bool = False
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    text: str = ""
    now: datetime | None = None  # for `overdue`
    deadlines: Deadlines | None = None  # for `overdue`: the deadline column each open state runs against

    def conditions(self, scope: Collection[str]) -> list[ColumnElement[bool]]:
        grids = [g for g in self.grids if g in scope] if self.grids else sorted(scope)
        found: list[ColumnElement[bool]] = [WorkOrder.unit_id.in_(grids)]
        if self.states:
            found.append(WorkOrder.state.in_(self.states))
        if self.categories:
            found.append(WorkOrder.category.in_(self.categories))
        if self.urgent:
            found.append(WorkOrder.urgent.is_(True))
        if self.overdue and self.now is not None and self.deadlines is not None:
            found.append(overdue_condition(self.now, self.deadlines))
        if self.created_from is not None:
            found.append(WorkOrder.created_at >= self.created_from)
        if self.created_before is not None:
            found.append(WorkOrder.created_at < self.created_before)
        if self.text:
            pattern = "%" + self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            found.append(
                or_(
                    WorkOrder.text.like(pattern, escape="\\"),
                    WorkOrder.place_detail.like(pattern, escape="\\"),
                )
            )
        return found


@dataclass(frozen=True)
class OrderPage:
    orders: list[WorkOrder]
    total: int
    offset: int
    limit: int


async def find_orders(
    session: AsyncSession, scope: Collection[str], flt: OrderFilter, *, offset: int = 0, limit: int = 50
) -> OrderPage:
    """One page of the orders matching `flt` within `scope`, newest first, and how many match in all."""
    where = flt.conditions(scope)
    total = await session.scalar(select(func.count()).select_from(WorkOrder).where(*where))
    rows = await session.scalars(
        select(WorkOrder).where(*where).order_by(WorkOrder.id.desc()).offset(offset).limit(limit)
    )
    return OrderPage(list(rows.all()), int(total or 0), offset, limit)


async def stream_orders(
    session: AsyncSession, scope: Collection[str], flt: OrderFilter, *, batch: int = 1000
) -> AsyncIterator[list[WorkOrder]]:
    """Every order matching `flt` within `scope`, oldest first, in batches (keyset paging by id)."""
    where = flt.conditions(scope)
    after = 0
    while True:
        rows = list(
            (
                await session.scalars(
                    select(WorkOrder).where(*where, WorkOrder.id > after).order_by(WorkOrder.id).limit(batch)
                )
            ).all()
        )
        if not rows:
            return
        yield rows
        after = rows[-1].id


async def order_in_scope(session: AsyncSession, scope: Collection[str], order_id: int) -> WorkOrder | None:
    """The order, if it belongs to one of the grids in `scope`; else None (the caller answers 404)."""
    return await session.scalar(
        select(WorkOrder).where(WorkOrder.id == order_id, WorkOrder.unit_id.in_(sorted(scope)))
    )


# --- the overview ------------------------------------------------------------------------------


async def intake_since(session: AsyncSession, scope: Collection[str], since: datetime) -> int:
    """Orders created in `scope` since the moment."""
    count = await session.scalar(
        select(func.count())
        .select_from(WorkOrder)
        .where(WorkOrder.unit_id.in_(sorted(scope)), WorkOrder.created_at >= since)
    )
    return int(count or 0)


@dataclass(frozen=True)
class OpenCounts:
    open: int
    overdue: int
    urgent: int


async def open_counts(
    session: AsyncSession, scope: Collection[str], deadlines: Deadlines, now: datetime
) -> OpenCounts:
    """Open orders in `scope` (in the states of `deadlines`), how many of them are overdue, and how many
    urgent. One query."""
    late = overdue_condition(now, deadlines)
    open_states = open_states_of(deadlines)
    row = (
        await session.execute(
            select(
                func.count(),
                _how_many(late),
                _how_many(WorkOrder.urgent.is_(True)),
            ).where(WorkOrder.unit_id.in_(sorted(scope)), WorkOrder.state.in_(sorted(open_states)))
        )
    ).one()
    return OpenCounts(int(row[0]), int(row[1]), int(row[2]))


async def open_by_grid(
    session: AsyncSession, scope: Collection[str], deadlines: Deadlines, now: datetime
) -> dict[str, tuple[int, int]]:
    """grid → (open orders, of which overdue), for the grids of `scope` that have any."""
    late = _how_many(overdue_condition(now, deadlines))
    open_states = open_states_of(deadlines)
    rows = await session.execute(
        select(WorkOrder.unit_id, func.count(), late)
        .where(WorkOrder.unit_id.in_(sorted(scope)), WorkOrder.state.in_(sorted(open_states)))
        .group_by(WorkOrder.unit_id)
    )
    return {str(unit): (int(n), int(overdue)) for unit, n, overdue in rows.all()}


def _how_many(condition: ColumnElement[bool]) -> Any:
    """How many rows of the group meet `condition` (0 for none)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _china_day(session: AsyncSession) -> Any:
    """The China-time calendar day of `created_at`, as text 'YYYY-MM-DD' on both backends."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("Asia/Shanghai", WorkOrder.created_at), "YYYY-MM-DD")
    return func.date(WorkOrder.created_at, "+8 hours")


async def daily_counts(
    session: AsyncSession, scope: Collection[str], since: datetime
) -> list[tuple[date, str, int]]:
    """(China-time day, category, orders created) for every day since `since` that had any."""
    day = _china_day(session).label("day")
    rows = await session.execute(
        select(day, WorkOrder.category, func.count())
        .where(WorkOrder.unit_id.in_(sorted(scope)), WorkOrder.created_at >= since)
        .group_by(day, WorkOrder.category)
    )
    return [(date.fromisoformat(str(d)), str(c), int(n)) for d, c, n in rows.all()]


def _hours(session: AsyncSession, later: Any, earlier: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier) / 3600.0
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


async def duration_histogram(
    session: AsyncSession, scope: Collection[str], since: datetime, column: str, bounds: Sequence[float]
) -> list[int]:
    """How many orders created since `since` took hours in [0, b₀), [b₀, b₁), … [bₙ, ∞) from creation to
    `column` (accepted_at or resolved_at); grouped in the database."""
    if column not in ("accepted_at", "resolved_at"):
        raise ValueError(f"not a time column: {column!r}")
    hours = _hours(session, getattr(WorkOrder, column), WorkOrder.created_at)
    bucket = case(*((hours < bound, index) for index, bound in enumerate(bounds)), else_=len(bounds))
    rows = await session.execute(
        select(bucket, func.count())
        .where(
            WorkOrder.unit_id.in_(sorted(scope)),
            WorkOrder.created_at >= since,
            getattr(WorkOrder, column).is_not(None),
        )
        .group_by(bucket)
    )
    counts = [0] * (len(bounds) + 1)
    for index, n in rows.all():
        counts[int(index)] += int(n)
    return counts


# --- an order's media and notices --------------------------------------------------------------


@dataclass(frozen=True)
class MediaItem:
    id: int
    kind: str
    status: str
    content_type: str | None
    size: int | None
    sha256: str | None
    received_at: datetime
    last_error: str | None = field(default=None)


def _media_of(order_ids: Select[Any]) -> Select[Any]:
    return (
        select(MediaFile, InboundMessage.received_at)
        .join(InboundMessage, InboundMessage.id == MediaFile.inbound_id)
        .where(InboundMessage.order_id.in_(order_ids))
    )


async def media_of_order(session: AsyncSession, order_id: int) -> list[MediaItem]:
    """The photos and voice messages sent for this order, in the order they came."""
    rows = await session.execute(_media_of(select(literal(order_id))).order_by(MediaFile.inbound_id))
    return [
        MediaItem(m.id, m.kind, m.status, m.content_type, m.size, m.sha256, received, m.last_error)
        for m, received in rows.all()
    ]


async def media_in_scope(session: AsyncSession, scope: Collection[str], media_id: int) -> MediaFile | None:
    """A stored file, if it belongs to an order of one of the grids in `scope`."""
    orders = select(WorkOrder.id).where(WorkOrder.unit_id.in_(sorted(scope)))
    return await session.scalar(
        select(MediaFile)
        .join(InboundMessage, InboundMessage.id == MediaFile.inbound_id)
        .where(MediaFile.id == media_id, MediaFile.status == "stored", InboundMessage.order_id.in_(orders))
    )


async def undelivered_of_order(session: AsyncSession, order_id: int) -> list[OutboxMessage]:
    """Notices about this order that failed or wait for the person's next message, oldest first."""
    rows = await session.scalars(
        select(OutboxMessage)
        .where(and_(OutboxMessage.order_id == order_id, OutboxMessage.status.in_(("failed", "deferred"))))
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    )
    return list(rows.all())
