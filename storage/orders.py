"""Queries about work orders and the people who handle them."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.deadlines import deadline_column
from storage.models import InboundMessage, OrderFollower, WorkOrder, WorkOrderEvent

# The callers name the states (handlers/workflow.py is the one place that says which are open) and,
# for the lists sorted by deadline, which deadline column each state runs against:
# {"accept_due": ("new", "assigned", "returned"), "resolve_due": ("accepted", "reopened")}.
Deadlines = Mapping[str, Sequence[str]]


def _deadline(deadlines: Deadlines) -> ColumnElement[Any]:
    """The deadline an order runs against in its state (NULL in any other state)."""
    return case(
        *(
            (WorkOrder.state.in_(tuple(states)), deadline_column(column))
            for column, states in deadlines.items()
        ),
        else_=None,
    )


def open_states_of(deadlines: Deadlines) -> tuple[str, ...]:
    """The states `deadlines` names (the open ones)."""
    return tuple(state for states in deadlines.values() for state in states)


async def get_order(session: AsyncSession, order_id: int, *, for_update: bool = False) -> WorkOrder | None:
    stmt = select(WorkOrder).where(WorkOrder.id == order_id)
    if for_update:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def orders_of_resident(session: AsyncSession, openid: str, *, limit: int = 5) -> list[WorkOrder]:
    """The orders a resident reported or follows, newest first."""
    followed = select(OrderFollower.order_id).where(OrderFollower.openid == openid)
    stmt = (
        select(WorkOrder)
        .where((WorkOrder.resident_openid == openid) | WorkOrder.id.in_(followed))
        .order_by(WorkOrder.id.desc())
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def open_orders_for(
    session: AsyncSession, openid: str, grid: str | None, deadlines: Deadlines, *, limit: int = 10
) -> tuple[list[WorkOrder], int]:
    """Orders in the states of `deadlines` assigned to this person, or unassigned ones of their grid:
    urgent first, then by deadline (soonest first); and how many there are in all."""
    condition = WorkOrder.assignee_openid == openid
    if grid:
        condition = condition | ((WorkOrder.unit_id == grid) & WorkOrder.assignee_openid.is_(None))
    condition = WorkOrder.state.in_(open_states_of(deadlines)) & condition
    due = _deadline(deadlines)
    total = await session.scalar(select(func.count()).select_from(WorkOrder).where(condition))
    stmt = (
        select(WorkOrder)
        .where(condition)
        .order_by(WorkOrder.urgent.desc(), due.is_(None), due, WorkOrder.id)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all()), int(total or 0)


async def recent_open_order(
    session: AsyncSession, openid: str, since: datetime, states: Collection[str]
) -> WorkOrder | None:
    """The newest order this resident opened since `since` that is still in one of `states`."""
    stmt = (
        select(WorkOrder)
        .where(
            WorkOrder.resident_openid == openid,
            WorkOrder.created_at >= since,
            WorkOrder.state.in_(tuple(states)),
        )
        .order_by(WorkOrder.id.desc())
        .limit(1)
    )
    return await session.scalar(stmt)


async def events_of(session: AsyncSession, order_id: int) -> list[WorkOrderEvent]:
    stmt = select(WorkOrderEvent).where(WorkOrderEvent.order_id == order_id).order_by(WorkOrderEvent.id)
    return list((await session.scalars(stmt)).all())


async def orders_in(
    session: AsyncSession, grids: list[str], states: tuple[str, ...] | None, *, limit: int = 10
) -> tuple[list[WorkOrder], int]:
    """The newest orders of these grids (in these states), and how many there are in all."""
    condition = WorkOrder.unit_id.in_(grids)
    if states is not None:
        condition = condition & WorkOrder.state.in_(states)
    total = await session.scalar(select(func.count()).select_from(WorkOrder).where(condition))
    rows = await session.scalars(
        select(WorkOrder).where(condition).order_by(WorkOrder.id.desc()).limit(limit)
    )
    return list(rows.all()), int(total or 0)


def overdue_condition(now: datetime, deadlines: Deadlines) -> ColumnElement[bool]:
    """Where an order is in one of the states of `deadlines` and past the deadline of its state."""
    return WorkOrder.state.in_(open_states_of(deadlines)) & (_deadline(deadlines) < now)


async def overdue_in(
    session: AsyncSession, grids: list[str], now: datetime, deadlines: Deadlines, *, limit: int = 10
) -> tuple[list[WorkOrder], int]:
    """Orders of these grids in the states of `deadlines` that are past the deadline of their state:
    urgent first, then the most overdue; and how many there are in all."""
    due = _deadline(deadlines)
    condition = WorkOrder.unit_id.in_(grids) & overdue_condition(now, deadlines)
    total = await session.scalar(select(func.count()).select_from(WorkOrder).where(condition))
    stmt = (
        select(WorkOrder).where(condition).order_by(WorkOrder.urgent.desc(), due, WorkOrder.id).limit(limit)
    )
    return list((await session.scalars(stmt)).all()), int(total or 0)


async def followers_of(session: AsyncSession, order_id: int) -> list[str]:
    rows = await session.scalars(
        select(OrderFollower.openid).where(OrderFollower.order_id == order_id).order_by(OrderFollower.id)
    )
    return list(rows.all())


async def follows(session: AsyncSession, order_id: int, openid: str) -> bool:
    found = await session.scalar(
        select(OrderFollower.id).where(OrderFollower.order_id == order_id, OrderFollower.openid == openid)
    )
    return found is not None


# --- the hot path of a new report: plain statements built once ------------------------------------

_ORDER = WorkOrder.__table__
_EVENT = WorkOrderEvent.__table__
_INBOUND = InboundMessage.__table__
_INSERT_ORDER = insert(_ORDER).returning(_ORDER.c.id)
_INSERT_EVENT = insert(_EVENT)
_SET_MEDIA = update(_ORDER).where(_ORDER.c.id == bindparam("b_id")).values(media=bindparam("b_media"))


def loose_images(inbound: Any = _INBOUND) -> tuple[Any, ...]:
    """Where an inbound row (of `inbound`, the table or an alias) is a photo one person sent since a
    moment that belongs to no order yet (bind `b_channel`, `b_sender`, `b_since`)."""
    return (
        inbound.c.channel == bindparam("b_channel"),
        inbound.c.sender == bindparam("b_sender"),
        inbound.c.kind == "image",
        inbound.c.order_id.is_(None),
        inbound.c.received_at >= bindparam("b_since"),
    )


_ATTACH_IMAGES = (
    update(_INBOUND)
    .where(*loose_images())
    .values(order_id=bindparam("b_order"))
    .returning(_INBOUND.c.id, _INBOUND.c.payload)
)
_RECENT_LIKE = (
    select(_ORDER.c.id, _ORDER.c.text, _ORDER.c.place_id, _ORDER.c.place_detail)
    .where(
        _ORDER.c.unit_id == bindparam("b_grid"),
        _ORDER.c.category == bindparam("b_category"),
        _ORDER.c.created_at >= bindparam("b_since"),
        _ORDER.c.state.in_(bindparam("b_states", expanding=True)),
    )
    .order_by(_ORDER.c.id.desc())
    .limit(20)
)


@dataclass(frozen=True)
class OrderSketch:
    """Just enough of an order to compare a new report with it."""

    id: int
    text: str
    place_id: int | None
    place_detail: str | None


_EVENT_COLUMNS = ("kind", "actor", "text", "from_state", "to_state", "at")


async def insert_order(
    session: AsyncSession, values: dict[str, Any], events: Sequence[WorkOrderEvent]
) -> int:
    """Write a new order and its first events (not added to the session); its number."""
    order_id = int((await session.execute(_INSERT_ORDER, values)).scalar_one())
    rows = [{**{c: getattr(e, c) for c in _EVENT_COLUMNS}, "order_id": order_id} for e in events]
    await session.execute(_INSERT_EVENT, rows)
    return order_id


async def set_media(session: AsyncSession, order_id: int, media: list[dict[str, str]]) -> None:
    await session.execute(_SET_MEDIA, {"b_id": order_id, "b_media": media})


async def attach_inbound(session: AsyncSession, inbound_ids: list[int], order_id: int) -> None:
    """These stored messages (a voice kept for the report that followed it) belong to this order."""
    await session.execute(
        update(InboundMessage)
        .where(InboundMessage.id.in_(inbound_ids), InboundMessage.order_id.is_(None))
        .values(order_id=order_id)
        .execution_options(synchronize_session=False)
    )


async def attach_loose_images(
    session: AsyncSession, channel: str, openid: str, since: datetime, order_id: int
) -> list[dict[str, Any]]:
    """Give this order the photos the person sent recently that belong to no order yet; their payloads."""
    params = {"b_channel": channel, "b_sender": openid, "b_since": since, "b_order": order_id}
    rows = (await session.execute(_ATTACH_IMAGES, params)).all()
    return [row.payload for row in sorted(rows, key=lambda row: row.id)]


async def recent_orders_like(
    session: AsyncSession, grid: str, category: str, since: datetime, states: tuple[str, ...]
) -> list[OrderSketch]:
    """Orders of this grid and category opened since `since` and still in one of `states`, newest first."""
    params = {"b_grid": grid, "b_category": category, "b_since": since, "b_states": list(states)}
    rows = (await session.execute(_RECENT_LIKE, params)).all()
    return [OrderSketch(r.id, r.text, r.place_id, r.place_detail) for r in rows]
