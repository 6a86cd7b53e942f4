"""Small queries named after what they answer. Each takes the caller's session (one per message)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboundMessage, Person, Resident, Unit


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
    row = InboundMessage(
        channel=channel,
        dedupe_key=dedupe_key,
        sender=sender,
        kind=kind,
        text=text,
        payload=payload,
        sent_at=sent_at,
        received_at=received_at,
    )
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        existing = await find_inbound(session, channel, dedupe_key)
        if existing is None:  # pragma: no cover - the conflicting row cannot vanish
            raise
        return existing
    return InboundRecord(id=row.id, reply=None, handled=False, duplicate=False)


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


async def mark_handled(session: AsyncSession, inbound_id: int, reply: str, at: datetime) -> None:
    """Store the reply with the handler's own changes, in the same transaction."""
    await session.execute(
        update(InboundMessage).where(InboundMessage.id == inbound_id).values(reply=reply, handled_at=at)
    )


async def active_person(session: AsyncSession, openid: str) -> Person | None:
    person = await session.get(Person, openid)
    return person if person is not None and person.active else None


async def person_by_wecom_userid(session: AsyncSession, userid: str) -> Person | None:
    return await session.scalar(select(Person).where(Person.wecom_userid == userid, Person.active.is_(True)))


async def touch_resident(
    session: AsyncSession, openid: str, at: datetime, *, subscribed: bool | None = None
) -> Resident:
    """The resident row for this openid, created on first contact; remembers when they last wrote."""
    resident = await session.get(Resident, openid)
    if resident is None:
        resident = Resident(openid=openid, first_seen_at=at, subscribed=True)
        session.add(resident)
    resident.last_message_at = at
    if subscribed is not None:
        resident.subscribed = subscribed
    return resident


async def units_by_id(session: AsyncSession) -> dict[str, Unit]:
    return {unit.id: unit for unit in (await session.scalars(select(Unit))).all()}
