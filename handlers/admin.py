"""Admins in chat: 状态, 列表, 逾期, 派单, 督办, 统计, 排名, 后台 — each within the unit the admin oversees."""

from __future__ import annotations

from handlers import texts
from handlers.context import Context
from handlers.login_links import new_login_link
from handlers.notices import notify
from handlers.report import ranking_reply, stats_reply
from handlers.resident import card
from handlers.staff import hand_over, load_order, step
from handlers.views import local_time, order_line, short
from handlers.workflow import (
    ADMIN_LEVELS,
    FINAL_STATES,
    OPEN_DEADLINES,
    OPEN_STATES,
    PHASE_STATES,
    RATING_STATES,
    admin_rank,
    community_admins,
    deadline_of,
)
from storage.orders import get_order, orders_in, overdue_in
from storage.outbox import undeliverable

LIST_STATES: dict[str, tuple[str, ...] | None] = {
    "待派单": ("new",),
    "待接单": ("assigned",),
    "处理中": PHASE_STATES["resolve"],
    "已退回": ("returned",),
    "待评价": tuple(sorted(RATING_STATES)),
    "已关闭": tuple(sorted(FINAL_STATES)),
    "全部": None,
}
DEFAULT_LIST = tuple(sorted(OPEN_STATES))
LIST_HINT = "可写：列表 待接单|处理中|已退回|待评价|全部 [单位]"


def grids_under(ctx: Context, unit_id: str | None) -> list[str]:
    return ctx.services.directory.grids_under(unit_id)


async def status(ctx: Context) -> str:
    assert ctx.command is not None and ctx.command.number is not None
    number = ctx.command.number
    order = await get_order(ctx.session, number)
    if order is None:
        return texts.NO_SUCH_ORDER.format(n=number)
    if ctx.command.access is None or not ctx.command.access(ctx, order):
        return texts.NOT_ALLOWED.format(n=number)
    lines = [await card(ctx, order)]
    if order.escalation_level:
        level = ADMIN_LEVELS[min(order.escalation_level, len(ADMIN_LEVELS)) - 1][0]
        unit = ctx.services.directory.ancestor(order.unit_id, level)
        lines.append(f"已上报督办：{ctx.services.directory.unit_name(unit)}")
    due = deadline_of(order)
    if order.state in OPEN_STATES and due is not None:
        lines.append(f"时限：{local_time(due)}" + ("（已超时）" if due < ctx.now else ""))
    failed = await undeliverable(ctx.session, grids=[order.unit_id or ""], limit=50)
    missed = [m for m in failed if m.order_id == order.id]
    if missed:
        lines.append(f"有 {len(missed)} 条通知未送达，请电话联系相关人员。")
    return "\n".join(lines)


async def list_orders(ctx: Context) -> str:
    assert ctx.command is not None
    states: tuple[str, ...] | None = DEFAULT_LIST
    named = "未办结的"  # what the count counts: open orders, unless a state is asked for
    scope = ctx.speaker.unit_id
    for word in ctx.command.rest.split():
        if word in LIST_STATES:
            states = LIST_STATES[word]
            named = "" if word == "全部" else f"{word}的"
            continue
        unit = _unit_named(ctx, word)
        if unit is None:
            return f"没有找到“{word}”。{LIST_HINT}"
        scope = unit
    orders, total = await orders_in(ctx.session, grids_under(ctx, scope), states)
    if not orders:
        return texts.NO_ORDERS_IN_LIST
    head = f"{ctx.services.directory.unit_name(scope)}{named}工单共 {total} 张" + (
        f"，显示最新 {len(orders)} 张：" if total > len(orders) else "："
    )
    return "\n".join([head, *(order_line(o) for o in orders), "回复“状态 号”看详情。"])


def _unit_named(ctx: Context, word: str) -> str | None:
    """A unit the speaker oversees, by id or name."""
    directory = ctx.services.directory
    for unit in directory.units.values():
        if word in (unit.id, unit.name) and directory.contains(ctx.speaker.unit_id, unit.id):
            return unit.id
    return None


async def overdue(ctx: Context) -> str:
    grids = grids_under(ctx, ctx.speaker.unit_id)
    late, total = await overdue_in(ctx.session, grids, ctx.now, OPEN_DEADLINES)
    missed = await undeliverable(ctx.session, grids=grids, limit=20)
    if not late and not missed:
        return texts.NOTHING_OVERDUE
    lines: list[str] = []
    if late:
        shown = f"，先列最急的 {len(late)} 张" if total > len(late) else ""
        lines.append(f"超时工单 {total} 张{shown}：")
        lines += [order_line(o, ctx.now) for o in late]
    if missed:
        lines.append(f"未送达通知 {len(missed)} 条（请电话联系）：")
        lines += [f"#{m.order_id} 给{m.recipient[-4:]}：{short(m.text, 14)}" for m in missed[:5]]
    lines.append("回复“督办 号”督促承办人，“派单 号 网格或人”改派。")
    return "\n".join(lines)


async def dispatch_order(ctx: Context) -> str:
    """派单: an admin gives an order (waiting, returned, or not yet accepted) to a grid or a person."""
    order = await load_order(ctx)
    if isinstance(order, str):
        return order
    return await hand_over(ctx, order, "assign")


async def supervise(ctx: Context) -> str:
    """督办: the assignee (or, with none, the community admins) is told to hurry; recorded as an escalation."""
    order = await load_order(ctx)
    if isinstance(order, str):
        return order
    if order.state not in OPEN_STATES:
        return f"工单 #{order.id} 不在办理中，无需督办。"
    level = max(1, admin_rank(ctx.speaker.role))  # the order is now overseen at the supervisor's level
    if refused := step(ctx, order, "supervise", f"{ctx.speaker.name}督办", level=level):
        return refused
    notice = texts.SUPERVISE_NOTICE.format(
        who=ctx.speaker.name, n=order.id, category=order.category, words=short(order.text, 40)
    )
    recipients = [order.assignee_openid] if order.assignee_openid else []
    if not recipients:
        recipients = [p.openid for p in community_admins(order.unit_id, ctx.services.directory)]
    for openid in recipients:
        await notify(ctx, openid, notice, order_id=order.id, reason="supervise")
    return texts.SUPERVISED.format(n=order.id)


async def stats(ctx: Context) -> str:
    assert ctx.command is not None
    services = ctx.services
    unit = ctx.speaker.unit_id or ""
    return await stats_reply(
        ctx.session, services.directory, unit, ctx.command.rest, ctx.now, weights=services.weights
    )


async def ranking(ctx: Context) -> str:
    services = ctx.services
    unit = ctx.speaker.unit_id or ""
    period = ctx.command.rest if ctx.command is not None and ctx.command.rest else "本月"
    return await ranking_reply(
        ctx.session, services.directory, unit, period, ctx.now, weights=services.weights
    )


async def dashboard_link(ctx: Context) -> str:
    """后台: a one-time link to the dashboard (指挥中心), good for 10 minutes."""
    link = await new_login_link(ctx.session, ctx.speaker.openid, ctx.services.dashboard_url, ctx.now)
    return texts.DASHBOARD_LINK.format(url=link)
