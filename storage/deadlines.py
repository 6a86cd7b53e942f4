"""Queries for the timers: which open orders have a reminder, escalation or auto-close due, and the
guarded write that moves an order's timer step on exactly once.

The caller describes the time limits as plain `LimitRule`s (this layer knows nothing of the config),
and each phase's steps as offsets from its deadline in multiples of the limit L: step s of an order is
due at `due + offsets[s - 1] * L`. The query is exact for every rule (no over-fetching of orders whose
next step is not yet due), filters on the state first (the `(state, unit_id)` index) so closed orders
are never read, and compares the due column with constants computed here, which both SQLite and
PostgreSQL evaluate the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import WorkOrder

__all__ = ["DUE_FIELDS", "LimitRule", "advance", "deadline_column", "due_orders", "earliest", "step_time"]

DUE_FIELDS = frozenset({"accept_due", "resolve_due", "rate_due"})


@dataclass(frozen=True)
class LimitRule:
    """Orders of this urgency and of these categories have `seconds` for the phase.

    `categories=None` means every category not in `excluded` (the default limit).
    """

    seconds: int
    urgent: bool
    categories: tuple[str, ...] | None = None
    excluded: tuple[str, ...] = ()


def step_time(due: datetime, seconds: int, offset: float) -> datetime:
    """When a step falls: the deadline moved by `offset` times the limit (negative: before it)."""
    return due + timedelta(seconds=offset * seconds)


def deadline_column(due_field: str) -> Any:
    if due_field not in DUE_FIELDS:
        raise ValueError(f"not a deadline column: {due_field!r}")
    return getattr(WorkOrder, due_field)


def _rule_matches(rule: LimitRule) -> ColumnElement[bool]:
    urgent = WorkOrder.urgent.is_(True) if rule.urgent else WorkOrder.urgent.is_not(True)
    if rule.categories is not None:
        category = WorkOrder.category.in_(rule.categories) if rule.categories else false()
    elif rule.excluded:
        category = WorkOrder.category.not_in(rule.excluded)
    else:
        category = true()
    return and_(urgent, category)


async def due_orders(
    session: AsyncSession,
    *,
    states: Sequence[str],
    due_field: str,
    offsets: Sequence[float],
    rules: Sequence[LimitRule],
    now: datetime,
    limit: int,
) -> list[WorkOrder]:
    """Orders in `states` whose next timer step (`timer_step + 1`) is due at `now`, earliest deadline first.

    An order whose steps are all done (`timer_step >= len(offsets)`) or that has no deadline is never
    returned. At most `limit` rows.
    """
    column = deadline_column(due_field)
    per_rule = []
    for rule in rules:
        steps = [
            and_(WorkOrder.timer_step == done, column <= step_time(now, rule.seconds, -offset))
            for done, offset in enumerate(offsets)
        ]
        per_rule.append(and_(_rule_matches(rule), or_(*steps)))
    if not per_rule:
        return []
    stmt = (
        select(WorkOrder)
        .where(
            WorkOrder.state.in_(tuple(states)),
            column.is_not(None),
            WorkOrder.timer_step < len(offsets),
            or_(*per_rule),
        )
        .order_by(column, WorkOrder.id)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


@dataclass(frozen=True)
class Earliest:
    """The earliest deadline among the orders of one urgency and category at one timer step."""

    urgent: bool
    category: str
    timer_step: int
    due: datetime


async def earliest(
    session: AsyncSession, *, states: Sequence[str], due_field: str, steps: int
) -> list[Earliest]:
    """For the orders in `states` with a deadline and fewer than `steps` timer steps taken: the earliest
    deadline per (urgency, category, timer step). The caller turns each into the moment its next step
    falls; one query, a few rows (categories × steps), however many orders are open."""
    column = deadline_column(due_field)
    stmt = (
        select(WorkOrder.urgent, WorkOrder.category, WorkOrder.timer_step, func.min(column))
        .where(WorkOrder.state.in_(tuple(states)), column.is_not(None), WorkOrder.timer_step < steps)
        .group_by(WorkOrder.urgent, WorkOrder.category, WorkOrder.timer_step)
    )
    rows = (await session.execute(stmt)).all()
    return [Earliest(bool(urgent), category, step, due) for urgent, category, step, due in rows if due]


async def advance(
    session: AsyncSession,
    order_id: int,
    *,
    state: str,
    timer_step: int,
    due_field: str,
    due: datetime,
    values: dict[str, Any],
    escalation: int = 0,
) -> bool:
    """Write `values` (and raise `escalation_level` to `escalation`, never lowering it) if the order is
    still where it was read: same state, same deadline, same timer step. False when anyone moved it on meanwhile (another
    timer pass, or a person: 接单, 延期, 转派 …) — then the caller must not record or send anything.

    On PostgreSQL the row stays locked until the caller's transaction ends, so a racing pass waits and
    then finds the step already taken; SQLite serialises writers.
    """
    column = deadline_column(due_field)
    changes: dict[str, Any] = dict(values)
    if escalation:
        level = WorkOrder.escalation_level
        changes["escalation_level"] = case((level < escalation, escalation), else_=level)
    stmt = (
        update(WorkOrder)
        .where(
            WorkOrder.id == order_id,
            WorkOrder.state == state,
            WorkOrder.timer_step == timer_step,
            column == due,
        )
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]
