"""Admins in chat: 状态 (more commands come with the lifecycle issue)."""

from __future__ import annotations

from handlers import texts
from handlers.access import may_oversee
from handlers.context import Context
from handlers.resident import card
from storage.orders import get_order


async def status(ctx: Context) -> str:
    assert ctx.command is not None and ctx.command.number is not None
    number = ctx.command.number
    order = await get_order(ctx.session, number)
    if order is None:
        return texts.NO_SUCH_ORDER.format(n=number)
    if not may_oversee(ctx, order):
        return texts.NOT_ALLOWED.format(n=number)
    return await card(ctx, order)
