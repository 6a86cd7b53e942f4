"""Residents' commands: 查询/进度 and 评价 (also the digit answering "请评价")."""

from __future__ import annotations

from handlers import texts
from handlers.access import owns
from handlers.context import Context
from handlers.directory import Directory
from handlers.notices import notify
from handlers.views import order_card, order_line
from handlers.workflow import RATINGS, IllegalTransition, apply
from storage.models import WorkOrder
from storage.orders import events_of, get_order, orders_of_resident, people_in, person

_RATING_WORDS = {"1": "满意", "2": "基本满意", "3": "不满意", **{r: r for r in RATINGS}}


def rating_of(text: str) -> str | None:
    return _RATING_WORDS.get(text.strip().rstrip("。.!！"))


async def query(ctx: Context) -> str:
    assert ctx.command is not None
    if ctx.command.number is None:
        orders = await orders_of_resident(ctx.session, ctx.speaker.openid)
        if not orders:
            return texts.NO_ORDERS
        return "\n".join(["您最近的工单：", *(order_line(o) for o in orders), "回复“查询 号”看详情。"])
    order = await get_order(ctx.session, ctx.command.number)
    if order is None or not owns(ctx, order):
        return texts.NOT_YOUR_ORDER.format(n=ctx.command.number)
    return await card(ctx, order)


async def card(ctx: Context, order: WorkOrder) -> str:
    assignee = await person(ctx.session, order.assignee_openid)
    return order_card(order, ctx.services.directory, assignee, await events_of(ctx.session, order.id))


async def rate_command(ctx: Context) -> str:
    assert ctx.command is not None and ctx.command.number is not None
    rating = rating_of(ctx.command.rest)
    if rating is None:
        return f"请回复：评价 {ctx.command.number} 满意 / 基本满意 / 不满意"
    return await rate(ctx, ctx.command.number, rating)


async def rate(ctx: Context, number: int, rating: str) -> str:
    order = await get_order(ctx.session, number, for_update=True)
    if order is None or not owns(ctx, order):
        return texts.NOT_YOUR_ORDER.format(n=number)
    action = "reopen" if rating == "不满意" else "rate"
    try:
        ctx.session.add(apply(order, action, actor=ctx.speaker.openid, text=rating, at=ctx.now))
    except IllegalTransition as refused:
        return f"工单 #{number}：{refused}"
    order.rating = rating
    await ctx.state.clear_pending(ctx.pending_key)
    if action == "rate":
        await notify(
            ctx, order.assignee_openid, texts.rated_notice(number, rating), order_id=number, reason="rated"
        )
        return texts.RATE_THANKS.format(rating=rating, n=number)
    await _reopen(ctx, order, ctx.services.directory)
    return texts.RATE_REOPENED.format(n=number)


async def _reopen(ctx: Context, order: WorkOrder, directory: Directory) -> None:
    """Not satisfied: back to the assignee with a fresh deadline, and the community admin is told."""
    order.escalation_level += 1
    order.resolve_due = ctx.services.limits.resolve_due(order, ctx.now)
    await notify(
        ctx,
        order.assignee_openid,
        texts.reopened_notice(order.id, order.text),
        order_id=order.id,
        reason="reopen",
    )
    assignee = await person(ctx.session, order.assignee_openid)
    community = directory.ancestor(order.unit_id, "community")
    for admin in await people_in(ctx.session, community, ("community_admin",)):
        who = assignee.name if assignee else "承办人"
        await notify(
            ctx, admin.openid, texts.reopened_admin(order.id, who), order_id=order.id, reason="reopen-admin"
        )
