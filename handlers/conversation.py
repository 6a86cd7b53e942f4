"""The first conversation: welcome, help, and acknowledging what residents send."""

from __future__ import annotations

from handlers import texts
from handlers.context import Context
from storage.repo import touch_resident


async def welcome(ctx: Context) -> str:
    await touch_resident(ctx.session, ctx.speaker.openid, ctx.now, subscribed=True)
    return texts.WELCOME


async def goodbye(ctx: Context) -> None:
    """An unsubscribe: nothing can be sent any more, so just remember it."""
    if not ctx.speaker.is_staff:
        await touch_resident(ctx.session, ctx.speaker.openid, ctx.now, subscribed=False)


async def ignore(ctx: Context) -> None:
    """Menu clicks without a handler, page views, periodic location reports: stored, not answered."""


async def unsupported(ctx: Context) -> str:
    return texts.UNSUPPORTED
