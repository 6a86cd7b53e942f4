"""What /metrics reports about the work at scrape time: open and overdue orders, the outbox backlog and
how long its oldest message has waited. One statement, on indexed columns."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxMessage, WorkOrder
from storage.orders import Deadlines, open_states_of, overdue_condition
from storage.outbox import PENDING


async def live_gauges(session: AsyncSession, deadlines: Deadlines, now: datetime) -> dict[str, float]:
    """The gauges; `deadlines` names the open states and the deadline each runs against."""
    open_states = open_states_of(deadlines)
    open_orders = select(func.count()).select_from(WorkOrder).where(WorkOrder.state.in_(sorted(open_states)))
    overdue = select(func.count()).select_from(WorkOrder).where(overdue_condition(now, deadlines))
    pending = OutboxMessage.status == PENDING
    backlog = select(func.count()).select_from(OutboxMessage).where(pending)
    oldest = select(func.min(OutboxMessage.created_at)).where(pending)
    row = (
        await session.execute(
            select(
                open_orders.scalar_subquery(),
                overdue.scalar_subquery(),
                backlog.scalar_subquery(),
                oldest.scalar_subquery(),
            )
        )
    ).one()
    oldest_at = row[3]
    if isinstance(oldest_at, str):  # SQLite hands back MIN() of a datetime column as text
        oldest_at = datetime.fromisoformat(oldest_at)
    if oldest_at is not None and oldest_at.tzinfo is None:
        oldest_at = oldest_at.replace(tzinfo=now.tzinfo)
    return {
        "gridbot_open_orders": float(row[0] or 0),
        "gridbot_overdue_orders": float(row[1] or 0),
        "gridbot_outbox_backlog": float(row[2] or 0),
        "gridbot_outbox_oldest_seconds": max(0.0, (now - oldest_at).total_seconds()) if oldest_at else 0.0,
    }
