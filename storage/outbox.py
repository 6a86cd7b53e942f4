"""The outbox: messages to send, written in the caller's transaction, claimed by a worker with a lease.

A row's life: `pending` → `sent`, or → `deferred` (the person is outside WeChat's customer-service
window) → `delivered_in_reply` (prepended to the passive reply to their next message), or → `failed`.

`claim_next` moves `next_attempt_at` forward by the lease and bumps `attempts`: the row is invisible to
other workers until the lease lapses, so a worker that dies mid-send leaves it to be sent again later.
`attempts` doubles as a fencing token: a worker whose lease lapsed cannot overwrite a newer claim.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring_conflicts
from storage.models import OutboxMessage, WorkOrder, utcnow

__all__ = [
    "DEFERRED",
    "DELIVERED_IN_REPLY",
    "FAILED",
    "PENDING",
    "SENT",
    "claim_next",
    "enqueue",
    "mark_deferred",
    "mark_failed",
    "mark_retry",
    "mark_sent",
    "take_deferred",
    "undeliverable",
]

PENDING = "pending"
SENT = "sent"
DEFERRED = "deferred"
DELIVERED_IN_REPLY = "delivered_in_reply"  # needs `status` VARCHAR(24)
FAILED = "failed"

_ERROR_MAX = 500


async def enqueue(
    session: AsyncSession,
    *,
    send_key: str,
    channel: str,
    recipient: str,
    text: str,
    order_id: int | None = None,
    kind: str = "text",
    payload: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> bool:
    """Queue a message in the caller's transaction. True if queued; False if `send_key` already was.

    Insert-or-ignore, so a repeated key neither raises nor spoils the caller's transaction.
    """
    now = now or utcnow()
    values = {
        "send_key": send_key,
        "channel": channel,
        "recipient": recipient,
        "kind": kind,
        "text": text,
        "payload": payload or {},
        "order_id": order_id,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    result = await session.execute(insert_ignoring_conflicts(session, OutboxMessage), values)
    return bool(result.rowcount)  # type: ignore[attr-defined]


_OUTBOX = OutboxMessage.__table__
_DUE = (_OUTBOX.c.status == PENDING) & (_OUTBOX.c.next_attempt_at <= bindparam("b_now"))


@functools.cache
def _claim(skip: frozenset[str]) -> Any:
    """The claim statement, built once per set of channels to pass over: the worker runs it for every
    message it sends."""
    due = _DUE if not skip else _DUE & _OUTBOX.c.channel.not_in(sorted(skip))
    oldest_due = (
        select(_OUTBOX.c.id)
        .where(due)
        .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)  # rendered on PostgreSQL only
        .scalar_subquery()
    )
    return (
        update(_OUTBOX)
        .where(_OUTBOX.c.id == oldest_due, due)
        .values(next_attempt_at=bindparam("b_until"), attempts=_OUTBOX.c.attempts + 1)
        .returning(*_OUTBOX.c)
    )


async def claim_next(
    session: AsyncSession, now: datetime, lease_seconds: float, *, skip: frozenset[str] = frozenset()
) -> OutboxMessage | None:
    """Take the most overdue pending row for `lease_seconds`, or None when nothing is due; rows of the
    channels in `skip` stay where they are.

    One statement, so it is atomic on SQLite; on PostgreSQL `SKIP LOCKED` lets concurrent claimers pass
    each other instead of queueing on the same row. The caller commits before sending. The row comes
    back as a detached `OutboxMessage`, readable after the session closes.
    """
    params = {"b_now": now, "b_until": now + timedelta(seconds=lease_seconds)}
    row = (await session.execute(_claim(skip), params)).one_or_none()
    return None if row is None else OutboxMessage(**row._mapping)


@functools.cache
def _settle(fenced: bool, columns: tuple[str, ...]) -> Any:
    """UPDATE a pending row's `columns` (bind parameters named after them); fenced: only if `attempts`
    is still the value the claim returned."""
    where = [_OUTBOX.c.id == bindparam("b_id"), _OUTBOX.c.status == PENDING]
    if fenced:
        where.append(_OUTBOX.c.attempts == bindparam("b_fence"))
    return update(_OUTBOX).where(*where).values({name: bindparam(f"v_{name}") for name in columns})


async def _set(session: AsyncSession, message_id: int, fence: int | None, **values: Any) -> bool:
    """Update a pending row; with `fence`, only if no claim came after the one that read `attempts`."""
    statement = _settle(fence is not None, tuple(sorted(values)))
    params = {"b_id": message_id, **{f"v_{name}": value for name, value in values.items()}}
    if fence is not None:
        params["b_fence"] = fence
    result = await session.execute(statement, params)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def mark_sent(session: AsyncSession, message_id: int, now: datetime) -> bool:
    """Record a delivery. Not fenced: whoever sent it, it was sent. False if it was no longer pending."""
    return await _set(session, message_id, None, status=SENT, sent_at=now, last_error=None)


async def mark_retry(
    session: AsyncSession,
    message_id: int,
    *,
    attempts: int,
    error: str,
    next_at: datetime,
    count: bool = True,
) -> bool:
    """Try again at `next_at`. `attempts` is the value the claim returned; False if a newer claim won.

    `count=False` gives the attempt back (a quota stop is not the message's fault).
    """
    values: dict[str, Any] = {"next_attempt_at": next_at, "last_error": error[:_ERROR_MAX]}
    if not count:
        values["attempts"] = attempts - 1
    return await _set(session, message_id, attempts, **values)


async def mark_failed(session: AsyncSession, message_id: int, *, attempts: int, error: str) -> bool:
    """Give up on the message; it stays visible in `undeliverable`."""
    return await _set(session, message_id, attempts, status=FAILED, last_error=error[:_ERROR_MAX])


async def mark_deferred(session: AsyncSession, message_id: int, *, attempts: int, error: str) -> bool:
    """Keep the notice for the passive reply to the recipient's next message."""
    return await _set(session, message_id, attempts, status=DEFERRED, last_error=error[:_ERROR_MAX])


@dataclass(frozen=True)
class Notice:
    """A notice taken to ride on a reply."""

    id: int
    text: str
    status: str
    order_id: int | None
    created_at: datetime


async def take_deferred(
    session: AsyncSession,
    channel: str,
    recipient: str,
    now: datetime | None = None,
    *,
    limit: int | None = None,
) -> list[Notice]:
    """The deferred notices for one person (the oldest `limit`), marked delivered in the caller's transaction.

    One UPDATE … RETURNING, so two concurrent replies cannot both take the same notice. It runs on
    every message a person sends, so the statement is built once.
    """
    params = {"b_channel": channel, "b_recipient": recipient, "b_sent_at": now or utcnow()}
    rows = (await session.execute(_take_deferred(limit), params)).all()
    notices = [Notice(r.id, r.text, r.status, r.order_id, r.created_at) for r in rows]
    return sorted(notices, key=lambda notice: (notice.created_at, notice.id))


def deferred_for_recipient() -> tuple[Any, ...]:
    """Where a row is a notice kept for the reply to one person (bind `b_channel`, `b_recipient`)."""
    return (
        _OUTBOX.c.channel == bindparam("b_channel"),
        _OUTBOX.c.recipient == bindparam("b_recipient"),
        _OUTBOX.c.status == DEFERRED,
    )


@functools.cache
def _take_deferred(limit: int | None) -> Any:
    table = _OUTBOX
    oldest = (
        select(table.c.id)
        .where(*deferred_for_recipient())
        .order_by(table.c.created_at, table.c.id)
        .limit(limit)
    )
    return (
        update(table)
        .where(table.c.id.in_(oldest), table.c.status == DEFERRED)
        .values(status=DELIVERED_IN_REPLY, sent_at=bindparam("b_sent_at"))
        .returning(table.c.id, table.c.text, table.c.status, table.c.order_id, table.c.created_at)
    )


async def undeliverable(
    session: AsyncSession, *, grids: list[str] | None = None, limit: int = 100
) -> list[OutboxMessage]:
    """Failed and deferred messages, oldest first: what an admin may need to pass on by other means.

    With `grids`, only notices about orders of those grids.
    """
    stmt = select(OutboxMessage).where(OutboxMessage.status.in_((FAILED, DEFERRED)))
    if grids is not None:
        stmt = stmt.join(WorkOrder, WorkOrder.id == OutboxMessage.order_id).where(
            WorkOrder.unit_id.in_(grids)
        )
    stmt = stmt.order_by(OutboxMessage.created_at, OutboxMessage.id).limit(limit)
    return list((await session.scalars(stmt)).all())
