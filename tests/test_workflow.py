"""The state machine in isolation: the table, the refusals, and invariants under random sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.workflow import (
    ACTIONS,
    FINAL_STATES,
    NOTES,
    STATES,
    TRANSITIONS,
    IllegalTransition,
    Limits,
    apply,
    describe_duration,
    next_state,
)
from storage.models import WorkOrder

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def new_order() -> WorkOrder:
    return WorkOrder(id=1, state="new", category="设施维修", urgent=False, text="灯坏了", timer_step=0)


def test_the_table_only_names_known_states() -> None:
    assert {s for s, _ in TRANSITIONS} | set(TRANSITIONS.values()) <= STATES
    assert not any(state in FINAL_STATES for state, _ in TRANSITIONS)


@pytest.mark.parametrize(
    ("state", "action", "reason"),
    [
        ("assigned", "resolve", "请先接单，再办结"),
        ("accepted", "accept", "该工单已接单，正在处理中"),
        ("accepted", "cancel", "不能撤销"),
        ("resolved", "progress", "正等待居民评价"),
        ("closed", "urge", "已关闭，不能再操作"),
        ("cancelled", "accept", "已撤销，不能再操作"),
        ("assigned", "rate", "办结后才能评价"),
    ],
)
def test_illegal_steps_are_refused_with_the_reason(state: str, action: str, reason: str) -> None:
    with pytest.raises(IllegalTransition, match=reason):
        next_state(state, action)


def test_the_happy_path_stamps_times_and_events() -> None:
    order = new_order()
    steps = ["assign", "accept", "progress", "resolve", "rate"]
    events = [apply(order, a, actor="x", at=T0 + timedelta(hours=i)) for i, a in enumerate(steps)]
    assert [(e.from_state, e.to_state) for e in events] == [
        ("new", "assigned"),
        ("assigned", "accepted"),
        ("accepted", "accepted"),
        ("accepted", "resolved"),
        ("resolved", "closed"),
    ]
    assert order.accepted_at == T0 + timedelta(hours=1)
    assert order.resolved_at == T0 + timedelta(hours=3)
    assert order.closed_at == T0 + timedelta(hours=4)


def test_return_clears_the_assignee_and_restarts_the_timers() -> None:
    order = new_order()
    apply(order, "assign", actor="sys", at=T0)
    order.assignee_openid, order.timer_step = "oL", 2
    apply(order, "return", actor="oL", text="不属于本网格", at=T0)
    assert (order.state, order.assignee_openid, order.timer_step) == ("returned", None, 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(sorted(ACTIONS)), max_size=25))
def test_random_sequences_keep_the_invariants(actions: list[str]) -> None:
    order = new_order()
    events = []
    for i, action in enumerate(actions):
        before = order.state
        try:
            event = apply(order, action, actor="someone", at=T0 + timedelta(minutes=i))
        except IllegalTransition:
            assert order.state == before  # a refused step changes nothing
            continue
        events.append(event)
        assert order.state in STATES  # one known state at a time
        assert (event.from_state, event.to_state) == (before, order.state)  # every change has its event
        assert before not in FINAL_STATES  # a closed or cancelled order never changes again
        if action in NOTES:
            assert order.state == before
    changes = [e for e in events if e.from_state != e.to_state]
    assert all((e.from_state, e.kind) in TRANSITIONS for e in changes)
    if order.state in FINAL_STATES:
        assert order.closed_at is not None


def test_limits_follow_category_and_urgency() -> None:
    limits = Limits(category={"水电燃气": {"resolve": 24 * 3600}, "消防应急": {"urgent_accept": 600}})
    assert limits.seconds("resolve", "水电燃气", False) == 24 * 3600
    assert limits.seconds("resolve", "设施维修", False) == 7 * 86400
    assert limits.seconds("accept", "设施维修", True) == 30 * 60
    assert limits.seconds("accept", "消防应急", True) == 600
    assert limits.seconds("rate", "设施维修", True) == 3 * 86400


@pytest.mark.parametrize(
    ("seconds", "text"), [(7200, "2 小时"), (1800, "30 分钟"), (259200, "3 天"), (5400, "1.5 小时")]
)
def test_durations_read_naturally(seconds: int, text: str) -> None:
    assert describe_duration(seconds) == text
