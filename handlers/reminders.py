"""What the timers record and say when an order's steps fall due. The policy (`handlers/workflow.py`)
says which steps are due and whom each tells; this module turns that into events, the values of the
guarded write, and one notice per person per order; then one message per person per pass.

A pass that finds an order due at several steps at once (a limit shorter than the time between passes,
or a downtime) takes every one of them: each is its own event, every level those steps pass is told
(the assignee reminded, then the community, then the street), and each person gets one notice saying
what was missed and since when.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers import texts
from handlers.directory import Directory
from handlers.views import short, when
from handlers.workflow import ACTIONS, Level, Limits, Phase, apply, chain, told_by
from storage.models import WorkOrder, WorkOrderEvent

__all__ = ["Message", "Notice", "Plan", "messages", "plan"]

LATE = 60.0  # a step taken this many seconds after its moment says when it was due
SEND_KEY_MAX = 128
_WORDS = 30  # characters of the resident's words quoted in a single notice
_CLOSE_TEXT = "居民未在时限内评价，自动关闭"


@dataclass(frozen=True)
class Notice:
    """What one person is told about one order in one pass."""

    openid: str
    order_id: int
    item: str  # order, phase (state and deadline) and steps: the identity of what is reported
    single: str  # the message when it is the only one for this person in the pass
    line: str  # its line in a summary
    own: bool  # the reader must act (a reminder), rather than oversee (an escalation)


@dataclass(frozen=True)
class Plan:
    """The due steps of one order, ready to be written once: `values` and `escalation` go into the
    guarded update; `events` and `notices` only if that update still finds the order where it was."""

    steps: tuple[int, ...]
    moments: tuple[datetime, ...]  # when each was due
    events: tuple[WorkOrderEvent, ...]
    values: dict[str, Any]
    escalation: int  # escalation_level rises to this (0: unchanged)
    notices: tuple[Notice, ...]


def plan(order: WorkOrder, phase: Phase, limits: Limits, directory: Directory, now: datetime) -> Plan | None:
    """Every step of `order` due at `now` after the last one taken (None: nothing due). `order` is a
    snapshot: it is changed here, and written only through the plan."""
    due: datetime = getattr(order, phase.deadline)
    limit = limits.seconds(phase.limit, order.category, bool(order.urgent))
    steps = phase.due_steps(due, limit, order.timer_step or 0, now)
    if not steps:
        return None
    before = order.state
    moments = [phase.step_time(due, limit, index) for index in steps]
    levels = chain(order, directory)
    assignee = levels[0] if levels and levels[0].rank == 0 else None
    verb = phase.verb if phase.name != "accept" or assignee is not None else "派单"
    status = texts.timer_status(verb, (due - now).total_seconds())
    events: list[WorkOrderEvent] = []
    told: dict[int, tuple[Level, bool]] = {}  # chain position → (level, escalated to it)
    escalation = 0
    for index, moment in zip(steps, moments, strict=True):
        rule = phase.steps[index - 1]
        level = told_by(rule, levels)
        escalate = rule.action == "escalate"
        if rule.level is None:
            text = _CLOSE_TEXT
        elif level is None:
            text = f"{status}（无人可通知）"
        else:
            text = f"{status}，{'上报' if escalate else '提醒'}{level.name}"
            position = levels.index(level)
            told[position] = (level, escalate or (position in told and told[position][1]))
            if escalate:
                escalation = max(escalation, level.rank)
        if (now - moment).total_seconds() >= LATE:
            text += f"（应于{when(moment, now)}）"
        events.append(
            apply(
                order,
                rule.action,
                actor="timer",
                text=text,
                at=now,
                limits=limits,
                level=level.rank if level else 1,
            )
        )
    if order.state == before:
        order.timer_step = steps[-1]
    taken = {column for event in events for column in ACTIONS[event.kind].writes}
    values = {column: getattr(order, column) for column in sorted(taken)}
    span = f"{steps[0]}" if len(steps) == 1 else f"{steps[0]}-{steps[-1]}"
    item = f"{order.id}.{before}@{int(due.timestamp())}.{span}"
    notices = _notices(order, directory, levels, told, item, status, when(due, now), verb)
    return Plan(tuple(steps), tuple(moments), tuple(events), values, escalation, tuple(notices))


def _notices(
    order: WorkOrder,
    directory: Directory,
    levels: Sequence[Level],
    told: dict[int, tuple[Level, bool]],
    item: str,
    status: str,
    deadline: str,
    verb: str,
) -> list[Notice]:
    words = short(order.text, _WORDS)
    assignee = levels[0] if levels and levels[0].rank == 0 else None
    who = assignee.name if assignee is not None else "待派单"
    grid = directory.unit_name(order.unit_id)
    notices: list[Notice] = []
    seen: set[str] = set()
    for position in sorted(told, reverse=True):  # a person in two levels hears as the higher one
        level, escalated = told[position]
        if escalated:
            below = [lower.label for lower in levels[:position]]
            single = texts.timer_escalate(order.id, order.category, grid, status, deadline, who, below, words)
            line = texts.timer_line(order.id, order.category, status, who)
        else:
            hint = texts.timer_hint(verb, order.id)
            single = texts.timer_remind(order.id, order.category, status, deadline, words, hint)
            line = texts.timer_line(order.id, order.category, status)
        for person in level.people:
            if person.openid not in seen:
                seen.add(person.openid)
                notices.append(Notice(person.openid, order.id, item, single, line, own=not escalated))
    return notices


@dataclass(frozen=True)
class Message:
    openid: str
    text: str
    order_id: int | None  # None for a summary of several orders
    send_key: str


def messages(notices: Sequence[Notice]) -> list[Message]:
    """One message per person: their one notice, or a short summary of several. The send key names what
    it reports, so no pass can send the same thing twice."""
    by_person: dict[str, list[Notice]] = defaultdict(list)
    for notice in notices:
        by_person[notice.openid].append(notice)
    out: list[Message] = []
    for openid, items in sorted(by_person.items()):
        items.sort(key=lambda n: n.order_id)
        if len(items) == 1:
            text, order_id = items[0].single, items[0].order_id
            key = f"timer:{items[0].item}:{openid}"
        else:
            own = any(n.own for n in items)
            text = texts.timer_summary(
                [n.line for n in items], own=own, oversee=not all(n.own for n in items)
            )
            order_id = None
            digest = hashlib.sha256("|".join(n.item for n in items).encode()).hexdigest()[:32]
            key = f"timers:{digest}:{openid}"
        if len(key) > SEND_KEY_MAX:
            key = "timer:" + hashlib.sha256(key.encode()).hexdigest()
        out.append(Message(openid, text, order_id, key))
    return out
