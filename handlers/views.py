"""How an order reads on a phone screen: a line in a list, or a short card."""

from __future__ import annotations

from datetime import datetime, timedelta

from handlers.directory import Directory, StaffInfo
from handlers.rates import CHINA
from handlers.texts import timer_span
from handlers.workflow import STATE_NAMES, deadline_of
from storage.models import WorkOrder, WorkOrderEvent

_SHORT = 16


def local_time(moment: datetime | None) -> str:
    """11月30日 14:00, in China time."""
    if moment is None:
        return "—"
    local = moment.astimezone(CHINA)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def when(moment: datetime, now: datetime) -> str:
    """今天 15:35, 明天 09:00, 昨天 18:00, 12月5日 18:00 (another year: 2027年1月3日 09:00), in China time."""
    local, today = moment.astimezone(CHINA), now.astimezone(CHINA).date()
    words = {today: "今天", today + timedelta(days=1): "明天", today - timedelta(days=1): "昨天"}
    day = words.get(local.date())
    if day is None:
        day = f"{local.month}月{local.day}日"
        if local.year != today.year:
            day = f"{local.year}年{day}"
    return f"{day} {local:%H:%M}"


def due_note(order: WorkOrder, now: datetime) -> str:
    """（今天 15:35 前） for an order's current deadline; （超时 2 小时，应于今天 15:35 前） once it passed."""
    due = deadline_of(order)
    if due is None:
        return ""
    if due < now:
        return f"（超时 {timer_span((now - due).total_seconds())}，应于{when(due, now)} 前）"
    return f"（{when(due, now)} 前）"


def short(text: str, limit: int = _SHORT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def place_label(order: WorkOrder, directory: Directory) -> str:
    place = directory.places.get(order.place_id or -1)
    if place is not None:
        return place[0] + (order.place_detail or "")
    return directory.unit_name(order.unit_id)


def order_line(order: WorkOrder, now: datetime | None = None) -> str:
    """#12 【急】设施维修 待接单：楼道灯坏了; with `now`, its deadline after it."""
    urgent = "【急】" if order.urgent else ""
    state = STATE_NAMES.get(order.state, order.state)
    line = f"#{order.id} {urgent}{order.category} {state}：{short(order.text)}"
    return line + due_note(order, now) if now is not None else line


def order_card(
    order: WorkOrder,
    directory: Directory,
    assignee: StaffInfo | None,
    events: list[WorkOrderEvent] | None = None,
) -> str:
    lines = [
        f"工单 #{order.id}（{order.category}{'，紧急' if order.urgent else ''}）",
        f"状态：{STATE_NAMES.get(order.state, order.state)}",
        f"地点：{place_label(order, directory)}",
        f"问题：{short(order.text, 60)}",
        f"承办：{assignee.name if assignee else '待派单'}（{directory.branch_name(order.unit_id)}）",
    ]
    if order.rating:
        lines.append(f"评价：{order.rating}")
    notes = [e for e in events or [] if e.kind in ("progress", "resolve") and e.text]
    if notes:
        lines.append(f"最新进展：{short(notes[-1].text, 40)}")
    return "\n".join(lines)
