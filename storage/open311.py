"""The queries behind Open311 GeoReport v2 (bot/open311/): service requests by id, code, date and state."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboundMessage, WorkOrder, WorkOrderEvent

MAX_REQUESTS = 1000  # one answer lists at most this many, newest first


async def find_orders(
    session: AsyncSession,
    *,
    ids: Collection[int] | None = None,
    categories: Collection[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    states: Collection[str] | None = None,
    limit: int = MAX_REQUESTS,
) -> list[WorkOrder]:
    """Orders by number (which overrides every other filter), else by category, creation time in
    [start, end] and state; newest first."""
    statement = select(WorkOrder).order_by(WorkOrder.id.desc()).limit(limit)
    if ids is not None:
        statement = statement.where(WorkOrder.id.in_(sorted(ids)))
    else:
        if categories is not None:
            statement = statement.where(WorkOrder.category.in_(sorted(categories)))
        if start is not None:
            statement = statement.where(WorkOrder.created_at >= start)
        if end is not None:
            statement = statement.where(WorkOrder.created_at <= end)
        if states is not None:
            statement = statement.where(WorkOrder.state.in_(sorted(states)))
    return list((await session.scalars(statement)).all())


async def last_changed(session: AsyncSession, order_ids: Collection[int]) -> dict[int, datetime]:
    """When each order last had a step (its newest event)."""
    if not order_ids:
        return {}
    rows = await session.execute(
        select(WorkOrderEvent.order_id, func.max(WorkOrderEvent.at))
        .where(WorkOrderEvent.order_id.in_(sorted(order_ids)))
        .group_by(WorkOrderEvent.order_id)
    )
    return {int(order_id): at for order_id, at in rows.all()}


async def order_of_inbound(session: AsyncSession, channel: str, dedupe_key: str) -> int | None:
    """The order a handled inbound message opened or joined."""
    return await session.scalar(
        select(InboundMessage.order_id).where(
            InboundMessage.channel == channel, InboundMessage.dedupe_key == dedupe_key
        )
    )
