"""Queueing messages to people other than the one being answered (the outbox, same transaction)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from storage.models import Person, WorkOrder
from storage.orders import followers_of
from storage.outbox import enqueue


async def address_of(session: AsyncSession, openid: str, *, wecom: bool) -> tuple[str, str]:
    """Where to reach a person: the WeCom app for staff who have a WeCom id (when it is set up), else
    the official account."""
    if wecom:
        person = await session.get(Person, openid)
        if person is not None and person.active and person.wecom_userid:
            return "wecom", person.wecom_userid
    return "wechat", openid


async def notify(ctx: Context, openid: str | None, text: str, *, order_id: int | None, reason: str) -> None:
    """Queue `text` for `openid`, unless that is the person being answered (they get the reply).

    The send key names the inbound message that caused it, so handling the same message again queues
    nothing twice.
    """
    if not openid or openid == ctx.speaker.openid:
        return
    channel, recipient = "wechat", openid
    staff = ctx.services.directory.person(openid)
    if ctx.services.wecom and staff is not None and staff.wecom_userid:
        channel, recipient = "wecom", staff.wecom_userid
    key = f"{ctx.msg.channel}:{ctx.inbound_id}:{reason}:{order_id}:{openid}"
    queued = await enqueue(
        ctx.session,
        send_key=key,
        channel=channel,
        recipient=recipient,
        text=text,
        order_id=order_id,
        payload={"notice": reason},
        now=ctx.now,
    )
    if queued:
        ctx.queued.append(key)


async def notify_residents(
    ctx: Context, order: WorkOrder, text: str, *, reason: str, follower_text: str | None = None
) -> None:
    """Tell the resident who reported the order, and everyone who reported it again (its followers)."""
    await notify(ctx, order.resident_openid, text, order_id=order.id, reason=reason)
    for openid in await followers_of(ctx.session, order.id):
        await notify(ctx, openid, follower_text or text, order_id=order.id, reason=reason)
