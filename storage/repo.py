"""Small queries named after what they answer. Each takes the caller's session (one per message)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring_conflicts, upsert
from storage.models import InboundMessage, Resident


@dataclass(frozen=True)
class InboundRecord:
    id: int
    reply: str | None
    handled: bool
    duplicate: bool


async def record_inbound(
    session: AsyncSession,
    *,
    channel: str,
    dedupe_key: str,
    sender: str,
    kind: str,
    text: str,
    payload: dict[str, Any],
    sent_at: datetime,
    received_at: datetime,
) -> InboundRecord:
    """Store a message before anything else happens; a redelivery returns the row already there.

    Commits on its own: what a person sent is kept even if handling it fails later.
    """
    values = {
        "channel": channel,
        "dedupe_key": dedupe_key,
        "sender": sender,
        "kind": kind,
        "text": text,
        "payload": payload,
        "sent_at": sent_at,
        "received_at": received_at,
    }
    statement = insert_ignoring_conflicts(session, InboundMessage, values).returning(InboundMessage.id)
    inserted = (await session.execute(statement)).scalar_one_or_none()
    await session.commit()
    if inserted is not None:
        return InboundRecord(id=inserted, reply=None, handled=False, duplicate=False)
    existing = await find_inbound(session, channel, dedupe_key)
    if existing is None:  # pragma: no cover - the conflicting row cannot vanish
        raise RuntimeError(f"inbound message {channel}:{dedupe_key} neither inserted nor found")
    return existing


async def find_inbound(session: AsyncSession, channel: str, dedupe_key: str) -> InboundRecord | None:
    row = (
        await session.execute(
            select(InboundMessage.id, InboundMessage.reply, InboundMessage.handled_at).where(
                InboundMessage.channel == channel, InboundMessage.dedupe_key == dedupe_key
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return InboundRecord(id=row.id, reply=row.reply, handled=row.handled_at is not None, duplicate=True)


async def lock_inbound(session: AsyncSession, inbound_id: int) -> InboundRecord:
    """The inbound row, locked for this transaction on PostgreSQL (a concurrent copy waits here)."""
    row = (
        await session.execute(
            select(InboundMessage.reply, InboundMessage.handled_at)
            .where(InboundMessage.id == inbound_id)
            .with_for_update()
        )
    ).one()
    return InboundRecord(id=inbound_id, reply=row.reply, handled=row.handled_at is not None, duplicate=True)


async def mark_handled(
    session: AsyncSession, inbound_id: int, reply: str, at: datetime, order_id: int | None = None
) -> None:
    """Store the reply (and the order it made or joined) with the handler's own changes, in its transaction."""
    values: dict[str, Any] = {"reply": reply, "handled_at": at}
    if order_id is not None:
        values["order_id"] = order_id
    await session.execute(update(InboundMessage).where(InboundMessage.id == inbound_id).values(**values))


@dataclass(frozen=True)
class ResidentInfo:
    openid: str
    place_id: int | None
    place_detail: str | None
    unit_id: str | None


async def touch_resident(
    session: AsyncSession, openid: str, at: datetime, *, subscribed: bool | None = None
) -> ResidentInfo:
    """Create the resident on first contact, remember when they last wrote; one statement."""
    values: dict[str, Any] = {
        "openid": openid,
        "first_seen_at": at,
        "last_message_at": at,
        "subscribed": True,
    }
    changed = ["last_message_at"]
    if subscribed is not None:
        values["subscribed"] = subscribed
        changed.append("subscribed")
    statement = upsert(session, Resident, values, ["openid"], changed).returning(
        Resident.place_id, Resident.place_detail, Resident.unit_id
    )
    row = (await session.execute(statement)).one()
    return ResidentInfo(openid, row.place_id, row.place_detail, row.unit_id)


async def bind_resident(
    session: AsyncSession, openid: str, *, place_id: int | None, detail: str | None, unit_id: str
) -> None:
    await session.execute(
        update(Resident)
        .where(Resident.openid == openid)
        .values(place_id=place_id, place_detail=detail, unit_id=unit_id)
    )
