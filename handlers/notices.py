"""Queueing messages to people other than the one being answered (the outbox, same transaction)."""

from __future__ import annotations

from handlers.context import Context, Services
from storage.models import WorkOrder
from storage.orders import followers_of
from storage.outbox import enqueue

# Reporters that are API clients (handlers/open311.py): they read their requests' status, get no notices.
API_SENDER = "open311:"


def address_of(services: Services, openid: str) -> tuple[str, str]:
    """Where to reach a person: the WeCom app for staff who have a WeCom id (when it is set up), else
    the official account."""
    staff = services.directory.person(openid)
    if services.wecom and staff is not None and staff.wecom_userid:
        return "wecom", staff.wecom_userid
    return "wechat", openid


async def notify(ctx: Context, openid: str | None, text: str, *, order_id: int | None, reason: str) -> None:
    """Queue `text` for `openid`, unless that is the person being answered (they get the reply).

    The send key names the inbound message that caused it, so handling the same message again queues
    nothing twice.
    """
    if not openid or openid == ctx.speaker.openid or openid.startswith(API_SENDER):
        return
    channel, recipient = address_of(ctx.services, openid)
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
