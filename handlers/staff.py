"""Grid staff in chat: 待办, 接单, 进展, 办结. Each step is an event and tells the resident."""

from __future__ import annotations

from handlers import texts
from handlers.access import may_work_on
from handlers.context import Context
from handlers.notices import notify
from handlers.views import order_line
from handlers.workflow import IllegalTransition, apply
from storage.models import WorkOrder
from storage.orders import get_order, open_orders_for

RATE_PENDING = "rate"


async def _order_to_work_on(ctx: Context) -> WorkOrder | str:
    """The order the command names, or the refusal to answer with."""
    assert ctx.command is not None and ctx.command.number is not None
    number = ctx.command.number
    order = await get_order(ctx.session, number, for_update=True)
    if order is None:
        return texts.NO_SUCH_ORDER.format(n=number)
    if not may_work_on(ctx, order):
        return texts.NOT_ALLOWED.format(n=number)
    return order


async def todo(ctx: Context) -> str:
    orders = await open_orders_for(ctx.session, ctx.speaker.openid, ctx.speaker.unit_id)
    if not orders:
        return "您目前没有待办工单。"
    lines = ["您的待办工单：", *(order_line(o) for o in orders), "回复“接单 号”接单，“办结 号 结果”办结。"]
    return "\n".join(lines)


async def accept(ctx: Context) -> str:
    order = await _order_to_work_on(ctx)
    if isinstance(order, str):
        return order
    try:
        event = apply(order, "accept", actor=ctx.speaker.openid, at=ctx.now)
    except IllegalTransition as refused:
        return f"工单 #{order.id}：{refused}"
    ctx.session.add(event)
    order.assignee_openid = ctx.speaker.openid
    order.resolve_due = ctx.services.limits.resolve_due(order, ctx.now)
    who = f"{ctx.services.directory.branch_name(order.unit_id)}的{ctx.speaker.name}"
    await notify(
        ctx, order.resident_openid, texts.order_accepted(order.id, who), order_id=order.id, reason="accept"
    )
    return texts.staff_done(
        order.id, "已接单", f"有进展请回复“进展 {order.id} 内容”，办好后回复“办结 {order.id} 结果”。"
    )


async def progress(ctx: Context) -> str:
    order = await _order_to_work_on(ctx)
    if isinstance(order, str):
        return order
    assert ctx.command is not None
    note = ctx.command.rest
    try:
        ctx.session.add(apply(order, "progress", actor=ctx.speaker.openid, text=note, at=ctx.now))
    except IllegalTransition as refused:
        return f"工单 #{order.id}：{refused}"
    await notify(
        ctx, order.resident_openid, texts.order_progress(order.id, note), order_id=order.id, reason="progress"
    )
    return texts.staff_done(order.id, "进展已记录并告知居民", f"办好后回复“办结 {order.id} 结果”。")


async def resolve(ctx: Context) -> str:
    order = await _order_to_work_on(ctx)
    if isinstance(order, str):
        return order
    assert ctx.command is not None
    result = ctx.command.rest
    try:
        ctx.session.add(apply(order, "resolve", actor=ctx.speaker.openid, text=result, at=ctx.now))
    except IllegalTransition as refused:
        return f"工单 #{order.id}：{refused}"
    limits = ctx.services.limits
    order.rate_due = limits.rate_due(order, ctx.now)
    await notify(
        ctx,
        order.resident_openid,
        texts.order_resolved(order.id, result),
        order_id=order.id,
        reason="resolve",
    )
    question = {"ask": RATE_PENDING, "order": order.id}
    ttl = float(limits.seconds("rate", order.category, order.urgent))
    await ctx.state.set_pending(f"wechat:{order.resident_openid}", question, ttl)
    return texts.staff_done(order.id, "已办结", "已请居民评价，评价后会通知您。")
