"""Grid staff in chat: 待办, 接单, 领单, 进展, 办结, 转派, 退单, 延期. Each step is an event and tells
whoever must know."""

from __future__ import annotations

from typing import Any

from handlers import texts
from handlers.access import may_oversee
from handlers.context import Context
from handlers.notices import notify, notify_residents
from handlers.questions import Ask
from handlers.targets import Target, find_target
from handlers.views import local_time, order_line, place_label
from handlers.workflow import OPEN_DEADLINES, IllegalTransition, community_admins, next_state
from storage.models import WorkOrder
from storage.orders import get_order, open_orders_for

EXTENSION_WITHOUT_CONSENT = 3  # days a grid may extend on its own; more needs the community admin


async def load_order(ctx: Context) -> WorkOrder | str:
    """The order the command names, locked for this transaction, or the refusal to answer with: the
    command's declared `access` rule says who may act on it (handlers/commands.py)."""
    assert ctx.command is not None and ctx.command.number is not None and ctx.command.access is not None
    number = ctx.command.number
    order = await get_order(ctx.session, number, for_update=True)
    if order is None:
        return texts.NO_SUCH_ORDER.format(n=number)
    if not ctx.command.access(ctx, order):
        return texts.NOT_ALLOWED.format(n=number)
    return order


def step(ctx: Context, order: WorkOrder, action: str, text: str = "", **changes: Any) -> str | None:
    """Take the step by the policy and record its event; the refusal text when the state does not allow it."""
    try:
        ctx.step(order, action, text, **changes)
    except IllegalTransition as refused:
        return refused.about(order.id)
    return None


async def todo(ctx: Context) -> str:
    """My open orders (and my grid's unassigned ones): urgent first, then by deadline, each with it."""
    openid, grid = ctx.speaker.openid, ctx.speaker.unit_id
    orders, total = await open_orders_for(ctx.session, openid, grid, OPEN_DEADLINES)
    if not orders:
        return "您目前没有待办工单。"
    head = f"您的待办工单 {total} 张" + (f"，先列最急的 {len(orders)} 张：" if total > len(orders) else "：")
    lines = [head, *(order_line(o, ctx.now) for o in orders), "回复“接单 号”接单，“办结 号 结果”办结。"]
    return "\n".join(lines)


async def accept(ctx: Context) -> str:
    order = await load_order(ctx)
    if isinstance(order, str):
        return order
    if refused := step(ctx, order, "accept"):
        return refused
    who = f"{ctx.services.directory.branch_name(order.unit_id)}的{ctx.speaker.name}"
    await notify_residents(ctx, order, texts.order_accepted(order.id, who), reason="accept")
    return texts.staff_done(
        order.id, "已接单", f"有进展请回复“进展 {order.id} 内容”，办好后回复“办结 {order.id} 结果”。"
    )


async def claim(ctx: Context) -> str:
    """党员领单: a Party member (or other grid staff) of the order's grid takes an order nobody has accepted."""
    order = await load_order(ctx)
    if isinstance(order, str):
        return order
    previous = order.assignee_openid
    if refused := step(ctx, order, "claim"):
        return refused
    notice = texts.CLAIM_NOTICE.format(n=order.id, who=ctx.speaker.name)
    await notify(ctx, previous, notice, order_id=order.id, reason="claim")
    who = f"{ctx.services.directory.branch_name(order.unit_id)}的党员{ctx.speaker.name}"
    await notify_residents(ctx, order, texts.order_accepted(order.id, who), reason="accept")
    return texts.CLAIMED.format(n=order.id)


async def progress(ctx: Context) -> str:
    order = await load_order(ctx)
    if isinstance(order, str):
        return order
    assert ctx.command is not None
    note = ctx.command.rest
    if refused := step(ctx, order, "progress", note):
        return refused
    await notify_residents(ctx, order, texts.order_progress(order.id, note), reason="progress")
    return texts.staff_done(order.id, "进展已记录并告知居民", f"办好后回复“办结 {order.id} 结果”。")


async def resolve(ctx: Context) -> str:
    order = await load_order(ctx)
    if isinstance(order, str):
        return order
    assert ctx.command is not None
    result = ctx.command.rest
    if refused := step(ctx, order, "resolve", result):
        return refused
    limits = ctx.services.limits
    await notify_residents(
        ctx,
        order,
        texts.order_resolved(order.id, result),
        reason="resolve",
        follower_text=texts.order_resolved_follower(order.id, result),
    )
    question = {"ask": Ask.RATE, "order": order.id}
    ttl = float(limits.seconds("rate", order.category, order.urgent))
    await ctx.state.set_pending(f"wechat:{order.resident_openid}", question, ttl)
    return texts.staff_done(order.id, "已办结", "已请居民评价，评价后会通知您。")


async def transfer(ctx: Context) -> str:
    """转派: the assignee or grid staff pass it within their community; admins anywhere they oversee."""
    order = await load_order(ctx)
    if isinstance(order, str):
        return order
    return await hand_over(ctx, order, "transfer")


async def hand_over(ctx: Context, order: WorkOrder, action: str) -> str:
    """Give the order to the grid or person the command names (转派 / 派单)."""
    assert ctx.command is not None
    directory = ctx.services.directory
    scope = ctx.speaker.unit_id if may_oversee(ctx, order) else directory.ancestor(order.unit_id, "community")
    target = await find_target(ctx, ctx.command.rest, scope)
    if isinstance(target, str):
        return target
    if target.person.openid == order.assignee_openid and order.state == "assigned":
        return f"工单 #{order.id} 已经由{target.person.name}承办。"
    text = f"{ctx.speaker.name}派给 {target.label}"
    if refused := step(ctx, order, action, text, assignee=target.person.openid):
        return refused
    await _assign_to(ctx, order, target)
    return (texts.DISPATCHED if action == "assign" else texts.TRANSFERRED).format(
        n=order.id, who=target.label
    )


async def _assign_to(ctx: Context, order: WorkOrder, target: Target) -> None:
    if target.grid is not None:
        order.unit_id = target.grid
    label = place_label(order, ctx.services.directory)
    message = texts.new_order(
        order.id, order.category, label, order.text, order.urgent, **texts.media_counts(order.media)
    )
    await notify(ctx, target.person.openid, message, order_id=order.id, reason="assign")
    resident_notice = texts.TRANSFER_NOTICE.format(
        n=order.id, who=ctx.services.directory.branch_name(order.unit_id)
    )
    await notify_residents(ctx, order, resident_notice, reason="handover")


async def return_order(ctx: Context) -> str:
    """退单: not ours — back to the community's queue with the reason."""
    order = await load_order(ctx)
    if isinstance(order, str):
        return order
    assert ctx.command is not None
    reason = ctx.command.rest
    if refused := step(ctx, order, "return", reason):  # the community's turn to dispatch it
        return refused
    notice = texts.RETURN_NOTICE.format(
        n=order.id, category=order.category, who=ctx.speaker.name, reason=reason
    )
    for admin in community_admins(order.unit_id, ctx.services.directory):
        await notify(ctx, admin.openid, notice, order_id=order.id, reason="return")
    return texts.RETURNED.format(n=order.id)


async def extend(ctx: Context) -> str:
    """延期: up to 3 days on the grid's word; more needs a community (or higher) admin, who may grant it."""
    order = await load_order(ctx)
    if isinstance(order, str):
        return order
    assert ctx.command is not None and ctx.command.days is not None
    days, reason = ctx.command.days, ctx.command.rest
    try:
        next_state(order.state, "extend")
    except IllegalTransition as refused:
        return refused.about(order.id)
    if days > EXTENSION_WITHOUT_CONSENT and not may_oversee(ctx, order):
        step(ctx, order, "extend_request", f"{days} 天：{reason}")
        notice = texts.EXTEND_REQUEST.format(who=ctx.speaker.name, n=order.id, days=days, reason=reason)
        for admin in community_admins(order.unit_id, ctx.services.directory):
            await notify(ctx, admin.openid, notice, order_id=order.id, reason="extend-request")
        return texts.EXTEND_ASKED
    step(ctx, order, "extend", f"{days} 天：{reason}", days=days)
    notice = texts.EXTEND_NOTICE.format(n=order.id, days=days, reason=reason)
    await notify_residents(ctx, order, notice, reason="extend")
    if order.assignee_openid != ctx.speaker.openid:
        granted = texts.EXTENDED.format(n=order.id, days=days, due=local_time(order.resolve_due))
        await notify(ctx, order.assignee_openid, granted, order_id=order.id, reason="extend-granted")
    return texts.EXTENDED.format(n=order.id, days=days, due=local_time(order.resolve_due))
