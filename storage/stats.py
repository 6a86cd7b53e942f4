"""The rows the three rates are computed from (definitions: `handlers/rates.py`, `docs/rates.md`).

Two queries per report, whatever the number of orders: the orders of a set of units that matter for a
period, then all their events before the cut-off. Plain frozen dataclasses come out; nothing here knows
what a rate is. Portable SQLite / PostgreSQL: plain comparisons on UTC columns, a subquery instead of a
long list of bound ids.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import WorkOrder, WorkOrderEvent


@dataclass(frozen=True)
class EventRow:
    kind: str
    at: datetime
    to_state: str | None = None
    text: str = ""


@dataclass(frozen=True)
class OrderRow:
    """One order as the rates see it: where it is, when it was due, and what happened to it (in order)."""

    id: int
    unit_id: str
    created_at: datetime
    accept_due: datetime | None
    resolve_due: datetime | None
    rating: str | None = None
    events: tuple[EventRow, ...] = ()


def _relevant(
    unit_ids: Collection[str], start: datetime, cutoff: datetime, end: datetime
) -> ColumnElement[bool]:
    """Orders of these units that can count in [start, cutoff): received, due (or due later in the
    period, [cutoff, end)), rated, accepted or resolved in it, or still open at the cut-off (for the
    overdue count)."""
    in_window = WorkOrderEvent.at >= start, WorkOrderEvent.at < cutoff
    acted = select(WorkOrderEvent.order_id).where(
        WorkOrderEvent.kind.in_(("accept", "claim", "resolve", "rate", "reopen")), *in_window
    )
    return and_(
        WorkOrder.unit_id.in_(sorted(unit_ids)),
        or_(
            and_(WorkOrder.created_at >= start, WorkOrder.created_at < cutoff),
            and_(WorkOrder.accept_due >= start, WorkOrder.accept_due < end),
            and_(WorkOrder.resolve_due >= start, WorkOrder.resolve_due < end),
            and_(
                WorkOrder.created_at < cutoff,
                or_(WorkOrder.closed_at.is_(None), WorkOrder.closed_at >= cutoff),
            ),
            WorkOrder.id.in_(acted),
        ),
    )


async def order_rows(
    session: AsyncSession,
    unit_ids: Collection[str],
    start: datetime,
    cutoff: datetime,
    *,
    kinds: Collection[str] | None = None,
    end: datetime | None = None,
) -> list[OrderRow]:
    """The orders of `unit_ids` that matter for the period [start, end) as of `cutoff` (default: the
    end), each with its events before `cutoff` (only `kinds` when given), oldest first. Two queries."""
    if not unit_ids or cutoff <= start:
        return []
    condition = _relevant(unit_ids, start, cutoff, max(end or cutoff, cutoff))
    orders = (
        await session.execute(
            select(
                WorkOrder.id,
                WorkOrder.unit_id,
                WorkOrder.created_at,
                WorkOrder.accept_due,
                WorkOrder.resolve_due,
                WorkOrder.rating,
            )
            .where(condition)
            .order_by(WorkOrder.id)
        )
    ).all()
    if not orders:
        return []
    event_query = (
        select(
            WorkOrderEvent.order_id,
            WorkOrderEvent.kind,
            WorkOrderEvent.at,
            WorkOrderEvent.to_state,
            WorkOrderEvent.text,
        )
        .where(
            WorkOrderEvent.order_id.in_(select(WorkOrder.id).where(condition)),
            WorkOrderEvent.at < cutoff,
        )
        .order_by(WorkOrderEvent.order_id, WorkOrderEvent.at, WorkOrderEvent.id)
    )
    if kinds is not None:
        event_query = event_query.where(WorkOrderEvent.kind.in_(sorted(kinds)))
    events: dict[int, list[EventRow]] = {}
    for order_id, kind, at, to_state, text in (await session.execute(event_query)).all():
        events.setdefault(order_id, []).append(EventRow(kind, at, to_state, text or ""))
    return [
        OrderRow(
            id=row.id,
            unit_id=row.unit_id,
            created_at=row.created_at,
            accept_due=row.accept_due,
            resolve_due=row.resolve_due,
            rating=row.rating,
            events=tuple(events.get(row.id, ())),
        )
        for row in orders
    ]
