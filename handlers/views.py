"""How an order reads on a phone screen: a line in a list, or a short card."""

from __future__ import annotations

from datetime import datetime

from handlers.directory import Directory, StaffInfo
from handlers.rates import CHINA
from handlers.workflow import STATE_NAMES
from storage.models import WorkOrder, WorkOrderEvent

_SHORT = 16


def local_time(moment: datetime | None) -> str:
    """11月30日 14:00, in China time."""
    if moment is None:
        return "—"
    local = moment.astimezone(CHINA)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def short(text: str, limit: int = _SHORT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def place_label(order: WorkOrder, directory: Directory) -> str:
    place = directory.places.get(order.place_id or -1)
    if place is not None:
        return place[0] + (order.place_detail or "")
    return directory.unit_name(order.unit_id)


def order_line(order: WorkOrder) -> str:
    urgent = "【急】" if order.urgent else ""
    return f"#{order.id} {urgent}{order.category} {STATE_NAMES.get(order.state, order.state)}：{short(order.text)}"


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
