"""双报到: registrations of in-service Party members, and the count of orders Party members claimed."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring_conflicts
from storage.models import Registration, WorkOrder, WorkOrderEvent

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"


async def active_registration(session: AsyncSession, openid: str) -> Registration | None:
    """This person's pending or approved registration, if any."""
    return await session.scalar(select(Registration).where(Registration.active_key == openid))


async def add_registration(
    session: AsyncSession, *, openid: str, name: str, community_id: str, grid_id: str | None, now: datetime
) -> int | None:
    """A new pending registration; None when the person already has a pending or approved one (two
    messages at once cannot both register: `active_key` is unique)."""
    values = {
        "openid": openid,
        "name": name,
        "community_id": community_id,
        "grid_id": grid_id,
        "status": PENDING,
        "active_key": openid,
        "created_at": now,
        "note": "",
    }
    statement = insert_ignoring_conflicts(session, Registration, Registration.id)
    return (await session.execute(statement, values)).scalar_one_or_none()


async def get_registration(
    session: AsyncSession, number: int, *, for_update: bool = False
) -> Registration | None:
    statement = select(Registration).where(Registration.id == number)
    return await session.scalar(statement.with_for_update() if for_update else statement)


async def approved_registrations(session: AsyncSession) -> list[Registration]:
    """Everyone whose registration was approved: Party members of their grid, beside the org file's."""
    statement = select(Registration).where(Registration.status == APPROVED).order_by(Registration.id)
    return list((await session.scalars(statement)).all())


async def open_registrations(session: AsyncSession) -> list[Registration]:
    """Pending and approved registrations, oldest first."""
    statement = select(Registration).where(Registration.active_key.is_not(None)).order_by(Registration.id)
    return list((await session.scalars(statement)).all())


async def claims_by(
    session: AsyncSession,
    unit_ids: Collection[str],
    actors: Collection[str],
    start: datetime,
    cutoff: datetime,
) -> dict[str, int]:
    """领单 steps taken by `actors` in [start, cutoff), per unit of the order (only units with some)."""
    if not unit_ids or not actors or cutoff <= start:
        return {}
    rows = await session.execute(
        select(WorkOrder.unit_id, func.count())
        .select_from(WorkOrderEvent)
        .join(WorkOrder, WorkOrder.id == WorkOrderEvent.order_id)
        .where(
            WorkOrderEvent.kind == "claim",
            WorkOrderEvent.actor.in_(sorted(actors)),
            WorkOrderEvent.at >= start,
            WorkOrderEvent.at < cutoff,
            WorkOrder.unit_id.in_(sorted(unit_ids)),
        )
        .group_by(WorkOrder.unit_id)
    )
    return {str(unit): int(count) for unit, count in rows.all()}
