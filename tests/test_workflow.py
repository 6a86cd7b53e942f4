"""The state machine in isolation: the table, the refusals, and invariants under random sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.directory import Directory, StaffInfo, UnitInfo
from handlers.workflow import (
    ACCEPT,
    ACTIONS,
    ADMIN_LEVELS,
    ADMIN_ROLES,
    DISPATCH_ROLES,
    FINAL_STATES,
    GRID_STAFF_ROLES,
    NOTES,
    OPEN_DEADLINES,
    OPEN_STATES,
    PHASE_STATES,
    PHASES,
    RATE,
    RATING_STATES,
    ROLES,
    STATE_TABLE,
    STATES,
    TRANSITIONS,
    IllegalTransition,
    Limits,
    admin_rank,
    apply,
    chain,
    create,
    describe_duration,
    next_state,
    next_step_at,
    phase_of,
    told_by,
)
from nlp.classifier import COMMUNITY, DEPARTMENT, GRID, RESPONDERS
from storage.models import WorkOrder
from storage.org import ROLES as ORG_ROLES

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LIMITS = Limits()


def new_order() -> WorkOrder:
    return WorkOrder(
        id=1, state="new", category="设施维修", urgent=False, text="灯坏了", timer_step=0, escalation_level=0
    )


def test_the_table_only_names_known_states() -> None:
    assert {s for s, _ in TRANSITIONS} | set(TRANSITIONS.values()) <= STATES
    assert not any(state in FINAL_STATES for state, _ in TRANSITIONS)


@pytest.mark.parametrize(
    ("state", "action", "reason"),
    [
        ("assigned", "resolve", "请先回复“接单 {n}”，再办结"),
        ("accepted", "accept", "已接单，正在处理中"),
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


@pytest.mark.parametrize(
    "action", ["assign", "claim", "accept", "progress", "resolve", "rate", "cancel", "urge"]
)
@pytest.mark.parametrize("state", ["new", "assigned", "accepted", "resolved", "closed", "cancelled"])
def test_a_refusal_names_the_order_once_with_its_number(state: str, action: str) -> None:
    try:
        next_state(state, action)
    except IllegalTransition as refused:
        text = refused.about(7)
        assert text.startswith("工单 #7") and "：工单" not in text and "号”" not in text, text
        assert "{n}" not in text and text.endswith("。"), text


def test_the_happy_path_stamps_times_and_events() -> None:
    order = new_order()
    steps = ["assign", "accept", "progress", "resolve", "rate"]
    events = [
        apply(order, a, actor="x", at=T0 + timedelta(hours=i), limits=LIMITS, assignee="oL")
        for i, a in enumerate(steps)
    ]
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
    apply(order, "assign", actor="sys", at=T0, limits=LIMITS, assignee="oL")
    order.timer_step = 2
    apply(order, "return", actor="oL", text="不属于本网格", at=T0, limits=LIMITS)
    assert (order.state, order.assignee_openid, order.timer_step) == ("returned", None, 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(sorted(ACTIONS)), max_size=25))
def test_random_sequences_keep_the_invariants(actions: list[str]) -> None:
    order = new_order()
    events = []
    for i, action in enumerate(actions):
        before = order.state
        try:
            event = apply(
                order,
                action,
                actor="someone",
                at=T0 + timedelta(minutes=i),
                limits=LIMITS,
                assignee="oX",
                days=1,
            )
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


# --- the declared policy, read as a table ---------------------------------------------------------

FIXED = T0 - timedelta(days=1)  # every deadline starts here, so a change by an action shows
DEADLINES = ("accept_due", "resolve_due", "rate_due")


def test_each_state_has_exactly_one_phase_and_the_sets_partition_the_states() -> None:
    phases = {phase.name: phase for phase in PHASES}
    assert set(STATE_TABLE) == STATES
    for state, rule in STATE_TABLE.items():
        owners = [name for name, states in PHASE_STATES.items() if state in states]
        assert owners == ([rule.phase.name] if rule.phase else []), state
        assert phase_of(state) is rule.phase
    assert set(OPEN_STATES) == {"new", "assigned", "returned", "accepted", "reopened"}  # returned included
    assert set(RATING_STATES) == {"resolved"} and set(FINAL_STATES) == {"closed", "cancelled"}
    assert OPEN_STATES | RATING_STATES | FINAL_STATES == STATES
    assert len(OPEN_STATES) + len(RATING_STATES) + len(FINAL_STATES) == len(STATES)
    # each phase: its deadline column and kind of limit, its steps in time order
    assert {(p.name, p.deadline, p.limit) for p in phases.values()} == {
        ("accept", "accept_due", "accept"),
        ("resolve", "resolve_due", "resolve"),
        ("rate", "rate_due", "rate"),
    }
    for phase in PHASES:
        assert list(phase.offsets) == sorted(phase.offsets)
        assert all(step.action in NOTES or step.action in ACTIONS for step in phase.steps)
    assert [(s.offset, s.action, s.level) for s in phases["accept"].steps] == [
        (-0.5, "remind", 0),
        (0.0, "remind", 0),
        (0.5, "escalate", 1),
        (1.0, "escalate", 2),
    ]
    assert phases["resolve"].steps == phases["accept"].steps
    assert [(s.offset, s.action, s.level) for s in phases["rate"].steps] == [(0.0, "close_unrated", None)]
    assert OPEN_DEADLINES == {
        "accept_due": ("new", "assigned", "returned"),
        "resolve_due": ("accepted", "reopened"),
    }


def _order_in(state: str) -> WorkOrder:
    order = new_order()
    order.state, order.timer_step, order.assignee_openid = state, 3, "oBefore"
    for column in DEADLINES:
        setattr(order, column, FIXED)
    order.resolved_at = FIXED
    return order


# Every action's effect, as the table promises it; limits chosen so each deadline is told apart.
DEADLINE_EFFECT = {
    "assign": {"accept_due": 7200},
    "transfer": {"accept_due": 7200},
    "return": {"accept_due": 7200},
    "claim": {"resolve_due": 7 * 86400},
    "accept": {"resolve_due": 7 * 86400},
    "reopen": {"resolve_due": 7 * 86400},
    "resolve": {"rate_due": 3 * 86400},
}


@pytest.mark.parametrize(("state", "action"), sorted(TRANSITIONS))
def test_each_action_sets_its_deadlines_and_stamps(state: str, action: str) -> None:
    order = _order_in(state)
    event = apply(
        order, action, actor="oActor", at=T0, limits=LIMITS, text="满意", assignee="oTarget", days=2
    )
    rule = ACTIONS[action]
    assert (event.from_state, event.to_state, order.state) == (
        state,
        TRANSITIONS[(state, action)],
        order.state,
    )
    expected = dict.fromkeys(DEADLINES, FIXED)
    for column, seconds in DEADLINE_EFFECT.get(action, {}).items():
        expected[column] = T0 + timedelta(seconds=seconds)
    if action == "extend":  # from the deadline, or from now when it has passed
        expected["resolve_due"] = T0 + timedelta(days=2)
    assert {c: getattr(order, c) for c in DEADLINES} == expected
    assert set(rule.sets) == set(DEADLINE_EFFECT.get(action, {}))
    for column in rule.stamps:
        assert getattr(order, column) == T0, column
    for column in rule.clears:
        assert getattr(order, column) is None, column
    assignee = {"actor": "oActor", "target": "oTarget"}.get(rule.assignee or "", "oBefore")
    assert order.assignee_openid == (None if "assignee_openid" in rule.clears else assignee)
    restarted = bool(rule.sets or rule.extends) or event.from_state != event.to_state
    assert order.timer_step == (0 if restarted else 3)
    assert (order.rating == "满意") is rule.rating


def test_the_stamps_of_the_life_of_an_order() -> None:
    stamps = {
        name: (rule.stamps, rule.clears, rule.assignee) for name, rule in ACTIONS.items() if not rule.is_note
    }
    assert stamps["accept"] == stamps["claim"] == (("accepted_at",), (), "actor")
    assert stamps["resolve"] == (("resolved_at",), (), None)
    assert stamps["rate"][0] == stamps["close_unrated"][0] == stamps["cancel"][0] == ("closed_at",)
    assert stamps["return"] == ((), ("assignee_openid",), None)
    assert stamps["reopen"] == ((), ("resolved_at",), None)
    assert stamps["assign"][2] == stamps["transfer"][2] == "target"
    assert stamps["progress"] == ((), (), None) and ACTIONS["extend"].extends == "resolve_due"


def test_create_gives_the_first_deadline_and_the_escalation_level_only_rises() -> None:
    order = WorkOrder(category="水电燃气", urgent=True, text="燃气泄漏")
    event = create(order, actor="oR", at=T0, limits=LIMITS, text="燃气泄漏")
    assert (order.state, order.created_at, order.timer_step, order.escalation_level) == ("new", T0, 0, 0)
    assert order.accept_due == T0 + timedelta(minutes=30) and (event.kind, event.to_state) == (
        "create",
        "new",
    )
    assert next_step_at(order, LIMITS) == T0 + timedelta(minutes=15)
    apply(order, "supervise", actor="oS", at=T0, limits=LIMITS, level=2)
    apply(order, "escalate", actor="timer", at=T0, limits=LIMITS, level=1)
    assert order.escalation_level == 2
    with pytest.raises(ValueError, match="needs the person"):
        apply(order, "assign", actor="x", at=T0, limits=LIMITS)


def _directory(*, community_admin: bool = True) -> Directory:
    units = {
        "d": UnitInfo("d", "城厢区", "district", None, None, None),
        "s": UnitInfo("s", "龙桥街道", "street", "d", None, None),
        "c": UnitInfo("c", "筱塘社区", "community", "s", None, None),
        "g": UnitInfo("g", "第一网格", "grid", "c", None, None),
    }
    people = [
        StaffInfo("oL", "林文", "grid_leader", "g"),
        StaffInfo("oP", "陈静", "party_member", "g"),
        StaffInfo("oS", "周强", "street_admin", "s"),
        StaffInfo("oD", "郑敏", "district_admin", "d"),
    ]
    if community_admin:
        people.append(StaffInfo("oC", "黄敏", "community_admin", "c"))
    return Directory(units, {}, {}, (), tuple(people))


@pytest.mark.parametrize(
    ("assignee", "community_admin", "ranks", "told"),
    [
        ("oL", True, [0, 1, 2, 3], ["oL", "oL", "oC", "oS"]),  # grid leader: community, then street
        (None, True, [1, 2, 3], ["oC", "oC", "oS", "oD"]),  # nobody holds it: the community must dispatch
        ("oC", True, [0, 2, 3], ["oC", "oC", "oS", "oD"]),  # a community admin's own level is no escalation
        ("oS", True, [0, 3], ["oS", "oS", "oD", "oD"]),  # the top of the chain hears the rest
        ("oL", False, [0, 2, 3], ["oL", "oL", "oS", "oD"]),  # a community without an admin is passed over
    ],
)
def test_the_chain_for_every_level(
    assignee: str | None, community_admin: bool, ranks: list[int], told: list[str]
) -> None:
    order = new_order()
    order.unit_id, order.assignee_openid = "g", assignee
    levels = chain(order, _directory(community_admin=community_admin))
    assert [level.rank for level in levels] == ranks
    steps = ACCEPT.steps
    assert [told_by(step, levels).people[0].openid for step in steps] == told  # type: ignore[union-attr]
    assert told_by(RATE.steps[0], levels) is None


def test_roles_and_responders_are_the_org_files_and_the_rules_files() -> None:
    assert set(ORG_ROLES) == ROLES
    assert GRID_STAFF_ROLES.isdisjoint(ADMIN_ROLES) and set(DISPATCH_ROLES) <= GRID_STAFF_ROLES
    assert [level for level, _ in ADMIN_LEVELS] == ["community", "street", "district"]
    assert [admin_rank(role) for _, role in ADMIN_LEVELS] == [1, 2, 3] and admin_rank("grid_leader") == 0
    assert set(RESPONDERS) == {GRID, DEPARTMENT, COMMUNITY}


def test_due_steps_after_a_downtime_are_all_of_them_in_order() -> None:
    due, limit = T0, 7200
    at = [due + timedelta(seconds=s) for s in (-3601, -3600, 0, 3600, 7200, 30 * 86400)]
    assert [ACCEPT.due_steps(due, limit, 0, t) for t in at] == [
        [],
        [1],
        [1, 2],
        [1, 2, 3],
        [1, 2, 3, 4],
        [1, 2, 3, 4],
    ]
    assert ACCEPT.due_steps(due, limit, 2, at[-1]) == [3, 4] and ACCEPT.due_steps(due, limit, 4, at[-1]) == []
    assert [RATE.due_steps(due, 3 * 86400, 0, t) for t in at] == [[], [], [1], [1], [1], [1]]
