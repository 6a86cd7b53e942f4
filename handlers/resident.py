"""Residents' commands: 查询/进度, 评价 (also the digit answering "请评价"), 撤销, 催办, 绑定."""

from __future__ import annotations

from handlers import texts
from handlers.access import owns
from handlers.context import Context
from handlers.directory import Directory
from handlers.notices import notify
from handlers.questions import WAIT, Ask
from handlers.views import order_card, order_line, short
from handlers.workflow import (
    OPEN_STATES,
    RATINGS,
    STATE_NAMES,
    IllegalTransition,
    community_admins,
    deadline_of,
)
from storage.models import WorkOrder
from storage.orders import events_of, follows, get_order, orders_of_resident
from storage.repo import bind_resident, touch_resident

_RATING_WORDS = {"1": "满意", "2": "基本满意", "3": "不满意", **{r: r for r in RATINGS}}


def rating_of(text: str) -> str | None:
    return _RATING_WORDS.get(text.strip().rstrip("。.!！"))


async def query(ctx: Context) -> str:
    assert ctx.command is not None
    if ctx.command.number is None:
        return await my_orders(ctx)
    order = await get_order(ctx.session, ctx.command.number)
    if order is None or not (owns(ctx, order) or await follows(ctx.session, order.id, ctx.speaker.openid)):
        return texts.NOT_YOUR_ORDER.format(n=ctx.command.number)
    return await card(ctx, order)


async def my_orders(ctx: Context) -> str:
    orders = await orders_of_resident(ctx.session, ctx.speaker.openid)
    if not orders:
        return texts.NO_ORDERS
    return "\n".join(["您最近的工单：", *(order_line(o) for o in orders), "回复“查询 号”看详情。"])


async def card(ctx: Context, order: WorkOrder) -> str:
    assignee = ctx.services.directory.person(order.assignee_openid)
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
        ctx.step(order, action, rating)  # 不满意 reopens it: a fresh deadline, the community is told
    except IllegalTransition as refused:
        return refused.about(number)
    await ctx.state.clear_pending(ctx.pending_key)
    if action == "rate":
        await notify(
            ctx, order.assignee_openid, texts.rated_notice(number, rating), order_id=number, reason="rated"
        )
        return texts.RATE_THANKS.format(rating=rating, n=number)
    await _reopen(ctx, order, ctx.services.directory)
    return texts.RATE_REOPENED.format(n=number)


async def _reopen(ctx: Context, order: WorkOrder, directory: Directory) -> None:
    """Not satisfied: back to the assignee (with the fresh deadline the policy gave it), and the community
    admin is told."""
    await notify(
        ctx,
        order.assignee_openid,
        texts.reopened_notice(order.id, order.text),
        order_id=order.id,
        reason="reopen",
    )
    assignee = ctx.services.directory.person(order.assignee_openid)
    for admin in community_admins(order.unit_id, directory):
        who = assignee.name if assignee else "承办人"
        await notify(
            ctx, admin.openid, texts.reopened_admin(order.id, who), order_id=order.id, reason="reopen-admin"
        )


URGE_EVERY = 2 * 3600.0  # one 催办 per order in this many seconds


async def cancel(ctx: Context) -> str:
    assert ctx.command is not None and ctx.command.number is not None
    order = await get_order(ctx.session, ctx.command.number, for_update=True)
    if order is None or ctx.command.access is None or not ctx.command.access(ctx, order):
        return texts.NOT_YOUR_ORDER.format(n=ctx.command.number)
    try:
        ctx.step(order, "cancel", "居民撤销")
    except IllegalTransition as refused:
        return refused.about(order.id)
    notice = texts.CANCELLED_NOTICE.format(n=order.id)
    await notify(ctx, order.assignee_openid, notice, order_id=order.id, reason="cancel")
    return texts.CANCELLED.format(n=order.id)


async def urge(ctx: Context) -> str:
    """催办: the assignee is reminded (the community admins too when it is overdue or unassigned)."""
    assert ctx.command is not None and ctx.command.number is not None
    order = await get_order(ctx.session, ctx.command.number, for_update=True)
    if order is None or ctx.command.access is None or not ctx.command.access(ctx, order):
        return texts.NOT_YOUR_ORDER.format(n=ctx.command.number)
    if order.state not in OPEN_STATES:
        return texts.URGE_CLOSED.format(n=order.id, state=STATE_NAMES[order.state])
    if not await ctx.state.add_once(f"urge:{order.id}", URGE_EVERY):
        return texts.URGED_RECENTLY.format(n=order.id)
    ctx.step(order, "urge", "居民催办")
    notice = texts.URGE_NOTICE.format(n=order.id, category=order.category, words=short(order.text, 40))
    await notify(ctx, order.assignee_openid, notice, order_id=order.id, reason="urge")
    due = deadline_of(order)
    if order.assignee_openid is None or (due is not None and due < ctx.now):
        for admin in community_admins(order.unit_id, ctx.services.directory):
            await notify(ctx, admin.openid, notice, order_id=order.id, reason="urge-admin")
    return texts.URGED.format(n=order.id)


async def bind(ctx: Context) -> str:
    """绑定 地址: remember where the resident lives; without an address, ask for it (or a location)."""
    assert ctx.command is not None
    if not ctx.command.rest:
        said = (ctx.pending or {}).get("said")
        if (ctx.pending or {}).get("place") and said:  # the bare place just sent: 绑定 takes it
            return await bind_to(ctx, str(said))
        await ctx.state.set_pending(ctx.pending_key, {"ask": Ask.BIND}, WAIT)
        return texts.BIND_ASK
    return await bind_to(ctx, ctx.command.rest)


async def bind_to(ctx: Context, address: str) -> str:
    directory = ctx.services.directory
    match = directory.index.find(address)
    if match is None:
        return texts.PLACE_NOT_FOUND
    await touch_resident(ctx.session, ctx.speaker.openid, ctx.now)
    await bind_resident(
        ctx.session,
        ctx.speaker.openid,
        place_id=int(match.key),
        detail=match.detail or None,
        unit_id=match.grid,
    )
    await ctx.state.clear_pending(ctx.pending_key)
    place = directory.places[int(match.key)][0] + match.detail
    return texts.BOUND.format(place=place, branch=directory.branch_name(match.grid))


async def bind_grid(ctx: Context, grid: str, label: str) -> str:
    await touch_resident(ctx.session, ctx.speaker.openid, ctx.now)
    await bind_resident(ctx.session, ctx.speaker.openid, place_id=None, detail=label or None, unit_id=grid)
    await ctx.state.clear_pending(ctx.pending_key)
    directory = ctx.services.directory
    return texts.BOUND.format(place=label or directory.unit_name(grid), branch=directory.branch_name(grid))
