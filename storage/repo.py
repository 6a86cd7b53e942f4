"""Small queries named after what they answer. Each takes the caller's session (one per message)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring_conflicts, upsert
from storage.models import InboundMessage, Resident
from storage.orders import loose_images
from storage.outbox import deferred_for_recipient


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
    statement = insert_ignoring_conflicts(session, InboundMessage, InboundMessage.id)
    inserted = (await session.execute(statement, values)).scalar_one_or_none()
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


_INBOUND = InboundMessage.__table__
# Built once: these run for every message.
_LOCK_INBOUND = (
    select(
        _INBOUND.c.reply,
        _INBOUND.c.handled_at,
        exists().where(*deferred_for_recipient()).label("deferred"),
        exists().where(*loose_images(_INBOUND.alias("earlier"))).label("loose_images"),
    )
    .where(_INBOUND.c.id == bindparam("b_id"))
    .with_for_update(of=_INBOUND)
)
_MARK_HANDLED = (
    update(_INBOUND)
    .where(_INBOUND.c.id == bindparam("b_id"))
    .values(
        reply=bindparam("b_reply"),
        handled_at=bindparam("b_at"),
        order_id=func.coalesce(bindparam("b_order", type_=_INBOUND.c.order_id.type), _INBOUND.c.order_id),
    )
)


@dataclass(frozen=True)
class InboundLock:
    """The stored message under its lock, and what else its sender has waiting (each saves a statement
    on the common message that has neither)."""

    reply: str | None
    handled: bool
    deferred: bool  # notices kept for this person's next reply (45015/45047)
    loose_images: bool  # photos sent since `images_since` that belong to no order yet


async def lock_inbound(
    session: AsyncSession, inbound_id: int, channel: str, sender: str, images_since: datetime
) -> InboundLock:
    """The inbound row, locked for this transaction on PostgreSQL (a concurrent copy waits here)."""
    params = {
        "b_id": inbound_id,
        "b_channel": channel,
        "b_sender": sender,
        "b_recipient": sender,
        "b_since": images_since,
    }
    row = (await session.execute(_LOCK_INBOUND, params)).one()
    return InboundLock(row.reply, row.handled_at is not None, bool(row.deferred), bool(row.loose_images))


async def mark_handled(
    session: AsyncSession, inbound_id: int, reply: str, at: datetime, order_id: int | None = None
) -> None:
    """Store the reply (and the order it made or joined) with the handler's own changes, in its transaction."""
    params = {"b_id": inbound_id, "b_reply": reply, "b_at": at, "b_order": order_id}
    await session.execute(_MARK_HANDLED, params)


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
    changed: tuple[str, ...] = ("last_message_at",)
    if subscribed is not None:
        values["subscribed"] = subscribed
        changed = ("last_message_at", "subscribed")
    statement = upsert(
        session, Resident, ("openid",), changed, Resident.place_id, Resident.place_detail, Resident.unit_id
    )
    row = (await session.execute(statement, values)).one()
    return ResidentInfo(openid, row.place_id, row.place_detail, row.unit_id)


async def bind_resident(
    session: AsyncSession, openid: str, *, place_id: int | None, detail: str | None, unit_id: str
) -> None:
    await session.execute(
        update(Resident)
        .where(Resident.openid == openid)
        .values(place_id=place_id, place_detail=detail, unit_id=unit_id)
    )


async def last_words_before(
    session: AsyncSession, channel: str, sender: str, before_id: int, since: datetime
) -> tuple[int, str, str | None, int | None] | None:
    """The id, text, reply and order of the last text-like message this person sent before
    `before_id`, since `since` — how a question the bot forgot (in-process state after a restart) is
    found again."""
    row = (
        await session.execute(
            select(InboundMessage.id, InboundMessage.text, InboundMessage.reply, InboundMessage.order_id)
            .where(
                InboundMessage.channel == channel,
                InboundMessage.sender == sender,
                InboundMessage.id < before_id,
                InboundMessage.kind.in_(("text", "voice", "link")),
                InboundMessage.received_at >= since,
            )
            .order_by(InboundMessage.id.desc())
            .limit(1)
        )
    ).one_or_none()
    return (row.id, row.text, row.reply, row.order_id) if row is not None else None
