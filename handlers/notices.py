"""Queueing messages to people other than the one being answered (the outbox, same transaction)."""

from __future__ import annotations

from handlers.context import Context
from storage.outbox import enqueue


async def notify(ctx: Context, openid: str | None, text: str, *, order_id: int | None, reason: str) -> None:
    """Queue `text` for `openid`, unless that is the person being answered (they get the reply).

    The send key names the inbound message that caused it, so handling the same message again queues
    nothing twice.
    """
    if not openid or openid == ctx.speaker.openid:
        return
    key = f"{ctx.msg.channel}:{ctx.inbound_id}:{reason}:{order_id}:{openid}"
    queued = await enqueue(
        ctx.session,
        send_key=key,
        channel="wechat",
        recipient=openid,
        text=text,
        order_id=order_id,
        now=ctx.now,
    )
    if queued:
        ctx.queued.append(key)
