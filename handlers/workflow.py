"""The work-order state machine and deadlines: the one place that says which step is allowed when.

States (spec §6): new → assigned → accepted → resolved → closed, with `returned` (退单: back to the
community's queue), `reopened` (the resident was not satisfied: back to the assignee) and `cancelled`
(by the resident before acceptance). Every allowed step is a row of `TRANSITIONS`; steps that only
record something (reminders, 催办, 督办) are `NOTES`. Anything else is refused with the reason in Chinese.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from storage.models import WorkOrder, WorkOrderEvent

STATE_NAMES = {
    "new": "待派单",
    "assigned": "待接单",
    "accepted": "处理中",
    "reopened": "重新处理",
    "returned": "已退回社区",
    "resolved": "已办结待评价",
    "closed": "已关闭",
    "cancelled": "已撤销",
}
STATES = frozenset(STATE_NAMES)
OPEN_STATES = frozenset({"new", "assigned", "accepted", "reopened", "returned"})
FINAL_STATES = frozenset({"closed", "cancelled"})
RATINGS = ("满意", "基本满意", "不满意")

# (state, action) → next state. Actions are what people (or the timers) do to an order.
TRANSITIONS: Mapping[tuple[str, str], str] = {
    ("new", "assign"): "assigned",
    ("returned", "assign"): "assigned",
    ("assigned", "assign"): "assigned",  # 派单 again to someone else before anyone accepted
    ("new", "claim"): "accepted",  # 党员领单: a Party member of the grid takes an unassigned order
    ("returned", "claim"): "accepted",
    ("assigned", "claim"): "accepted",  # a Party member steps in before the assignee has accepted
    ("assigned", "accept"): "accepted",
    ("reopened", "accept"): "accepted",
    ("assigned", "transfer"): "assigned",
    ("accepted", "transfer"): "assigned",
    ("reopened", "transfer"): "assigned",
    ("assigned", "return"): "returned",
    ("accepted", "return"): "returned",
    ("accepted", "progress"): "accepted",
    ("reopened", "progress"): "reopened",
    ("accepted", "extend"): "accepted",
    ("reopened", "extend"): "reopened",
    ("accepted", "resolve"): "resolved",
    ("reopened", "resolve"): "resolved",
    ("resolved", "rate"): "closed",
    ("resolved", "reopen"): "reopened",
    ("resolved", "close_unrated"): "closed",
    ("new", "cancel"): "cancelled",
    ("assigned", "cancel"): "cancelled",
    ("returned", "cancel"): "cancelled",
}
# Steps that record something without moving the order: reminders, escalations, 催办, 督办.
NOTES = frozenset({"remind", "escalate", "urge", "supervise", "extend_request", "photo", "follow"})
ACTIONS = frozenset(action for _, action in TRANSITIONS) | NOTES

# Why an action is refused in a state where the table has no row for it.
_REFUSALS: Mapping[str, str] = {
    "assign": "只有待派单、待接单或已退回的工单可以派单",
    "claim": "只有还没人承办的工单可以领单",
    "accept": "只有待接单的工单可以接单",
    "transfer": "只有未办结的工单可以转派",
    "return": "只有待接单或处理中的工单可以退单",
    "progress": "请先接单，再记录进展",
    "extend": "请先接单，再申请延期",
    "resolve": "请先接单，再办结",
    "rate": "工单办结后才能评价",
    "reopen": "工单办结后才能评价",
    "close_unrated": "只有已办结待评价的工单会自动关闭",
    "cancel": "工单已有人接单处理，不能撤销；如有需要请回复“催办 号”",
}


class IllegalTransition(ValueError):
    """The order cannot take this step now; the message says why, in Chinese."""


def next_state(state: str, action: str) -> str:
    if action in NOTES:
        if state in FINAL_STATES:
            raise IllegalTransition(f"该工单{STATE_NAMES[state]}，不能再操作")
        return state
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        if state in FINAL_STATES:
            raise IllegalTransition(f"该工单{STATE_NAMES[state]}，不能再操作") from None
        if action in ("accept", "claim") and state == "accepted":
            raise IllegalTransition("该工单已接单，正在处理中") from None
        if state == "resolved" and action in (
            "accept",
            "progress",
            "resolve",
            "transfer",
            "return",
            "extend",
        ):
            raise IllegalTransition("该工单已办结，正等待居民评价") from None
        raise IllegalTransition(_REFUSALS.get(action, "当前状态不能进行此操作")) from None


def apply(order: WorkOrder, action: str, *, actor: str, text: str = "", at: datetime) -> WorkOrderEvent:
    """Move the order one step and return the event that records it (the caller adds it to the session)."""
    before = order.state
    after = next_state(before, action)
    order.state = after
    if action in ("accept", "claim"):
        order.accepted_at = at
    elif action == "resolve":
        order.resolved_at = at
    elif action in ("rate", "close_unrated", "cancel"):
        order.closed_at = at
    elif action == "reopen":
        order.resolved_at = None
    elif action == "return":
        order.assignee_openid = None
    if action not in NOTES and action != "progress":
        order.timer_step = 0  # a new phase (or a new deadline): its reminders start again
    return WorkOrderEvent(
        order_id=order.id, kind=action, actor=actor, text=text, from_state=before, to_state=after, at=at
    )


@dataclass(frozen=True)
class Limits:
    """Time limits in seconds; `category` overrides them per category (config first, then the rules file)."""

    accept: int = 2 * 3600
    resolve: int = 7 * 86400
    rate: int = 3 * 86400
    urgent_accept: int = 30 * 60
    urgent_resolve: int = 2 * 3600
    category: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def seconds(self, kind: str, category: str, urgent: bool) -> int:
        """The limit of `kind` (accept, resolve, rate) for an order of this category and urgency."""
        key = f"urgent_{kind}" if urgent and kind in ("accept", "resolve") else kind
        override = self.category.get(category, {})
        if key in override:
            return override[key]
        return int(getattr(self, key))

    def accept_due(self, order: WorkOrder, start: datetime) -> datetime:
        return start + timedelta(seconds=self.seconds("accept", order.category, order.urgent))

    def resolve_due(self, order: WorkOrder, start: datetime) -> datetime:
        return start + timedelta(seconds=self.seconds("resolve", order.category, order.urgent))

    def rate_due(self, order: WorkOrder, start: datetime) -> datetime:
        return start + timedelta(seconds=self.seconds("rate", order.category, order.urgent))


def describe_duration(seconds: int) -> str:
    """2 小时, 30 分钟, 3 天 — how long, in plain words."""
    if seconds % 86400 == 0:
        return f"{seconds // 86400} 天"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} 小时"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} 小时"
    return f"{max(1, seconds // 60)} 分钟"
