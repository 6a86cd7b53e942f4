"""The media worker's rows: photos and voice messages to download and keep.

`discover` adds a `pending` row for each inbound photo or voice message with a MediaId that has none
(insert-or-ignore on the unique inbound id, so several processes may discover the same message).
`claim_next` takes the most overdue pending row for a lease, bumping `attempts` (the fencing token), as
`storage.outbox.claim_next` does; the settle calls write only if that claim is still the newest.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring_conflicts
from storage.models import InboundMessage, MediaFile

__all__ = [
    "FAILED",
    "PENDING",
    "STORED",
    "claim_next",
    "discover",
    "mark_failed",
    "mark_retry",
    "mark_stored",
]

PENDING = "pending"
STORED = "stored"
FAILED = "failed"
KINDS = ("image", "voice")
_ERROR_MAX = 500
_MEDIA = MediaFile.__table__


async def discover(session: AsyncSession, channels: tuple[str, ...], since: datetime, now: datetime) -> int:
    """Queue the photos and voice messages received since `since` that have no row yet; how many."""
    media_id = InboundMessage.payload["media_id"].as_string()
    found = (
        await session.execute(
            select(InboundMessage.id, InboundMessage.channel, InboundMessage.kind, media_id)
            .where(
                InboundMessage.kind.in_(KINDS),
                InboundMessage.received_at >= since,
                InboundMessage.channel.in_(channels),
                media_id.is_not(None),
                ~exists().where(MediaFile.inbound_id == InboundMessage.id),
            )
            .order_by(InboundMessage.id)
            .limit(500)
        )
    ).all()
    rows = [
        {
            "inbound_id": inbound_id,
            "channel": channel,
            "kind": kind,
            "media_id": str(media)[:256],
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for inbound_id, channel, kind, media in found
        if media
    ]
    if rows:
        await session.execute(insert_ignoring_conflicts(session, MediaFile), rows)
    return len(rows)


_DUE = (_MEDIA.c.status == PENDING) & (_MEDIA.c.next_attempt_at <= bindparam("b_now"))


@functools.cache
def _claim() -> Any:
    oldest_due = (
        select(_MEDIA.c.id)
        .where(_DUE)
        .order_by(_MEDIA.c.next_attempt_at, _MEDIA.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        update(_MEDIA)
        .where(_MEDIA.c.id == oldest_due, _DUE)
        .values(next_attempt_at=bindparam("b_until"), attempts=_MEDIA.c.attempts + 1)
        .returning(*_MEDIA.c)
    )


async def claim_next(session: AsyncSession, now: datetime, lease_seconds: float) -> MediaFile | None:
    """Take the most overdue pending row for `lease_seconds` (a detached value), or None."""
    params = {"b_now": now, "b_until": now + timedelta(seconds=lease_seconds)}
    row = (await session.execute(_claim(), params)).one_or_none()
    return None if row is None else MediaFile(**row._mapping)


async def _settle(session: AsyncSession, media_id: int, attempts: int, **values: Any) -> bool:
    result = await session.execute(
        update(_MEDIA)
        .where(_MEDIA.c.id == media_id, _MEDIA.c.status == PENDING, _MEDIA.c.attempts == attempts)
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def mark_stored(
    session: AsyncSession,
    media_id: int,
    *,
    attempts: int,
    sha256: str,
    content_type: str,
    size: int,
    now: datetime,
) -> bool:
    return await _settle(
        session,
        media_id,
        attempts,
        status=STORED,
        sha256=sha256,
        content_type=content_type,
        size=size,
        stored_at=now,
        last_error=None,
    )


async def mark_retry(
    session: AsyncSession, media_id: int, *, attempts: int, error: str, next_at: datetime
) -> bool:
    return await _settle(session, media_id, attempts, next_attempt_at=next_at, last_error=error[:_ERROR_MAX])


async def mark_failed(session: AsyncSession, media_id: int, *, attempts: int, error: str) -> bool:
    return await _settle(session, media_id, attempts, status=FAILED, last_error=error[:_ERROR_MAX])
