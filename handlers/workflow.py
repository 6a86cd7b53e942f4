"""The workflow policy, declared once: every rule of a work order's life that more than one module needs.

- **Roles**: who works a grid's orders, who takes a new one, which admin oversees which level.
- **States** (spec §6): new → assigned → accepted → resolved → closed, with `returned` (退单: back to
  the community's queue), `reopened` (the resident was not satisfied: back to the assignee) and
  `cancelled` (by the resident before acceptance). Each state is in exactly one **phase**, which names
  the deadline it runs against, the kind of limit, and the timer steps (reminders, escalations, the
  auto-close); final states have none.
- **The escalation chain** (吹哨): who each timer step tells.
- **Actions**: what people (or the timers) do to an order — the transition, the deadlines it sets or
  moves, what it stamps or clears. `apply()` does all of it, so no caller touches a deadline itself.

`tests/test_workflow.py` reads these tables and proves what they promise. `storage/` knows nothing of
them: its queries take the state sets as parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from handlers.directory import Directory, StaffInfo
from storage.models import WorkOrder, WorkOrderEvent

# --- roles ----------------------------------------------------------------------------------------
# The words are the org file's (`storage.org.ROLES` checks a file against them); their meaning is here.

GRID_STAFF_ROLES = frozenset({"grid_leader", "grid_member", "party_member"})  # work their grid's orders
DISPATCH_ROLES = ("grid_leader", "grid_member")  # who of a grid takes its new orders, in this order
DEPARTMENT_ROLE = "department_contact"  # takes the orders a department handles (物业服务 …)
# The admin levels above a grid, nearest first, each with its admin role: the escalation chain.
ADMIN_LEVELS: tuple[tuple[str, str], ...] = (
    ("community", "community_admin"),
    ("street", "street_admin"),
    ("district", "district_admin"),
)
COMMUNITY_ADMIN = ADMIN_LEVELS[0][1]  # dispatches, receives 退单, grants long extensions
ADMIN_ROLES: Mapping[str, str] = {role: level for level, role in ADMIN_LEVELS}  # role → level it oversees
ROLES = frozenset(GRID_STAFF_ROLES | set(ADMIN_ROLES) | {DEPARTMENT_ROLE})


def admin_rank(role: str) -> int:
    """1 for a community admin, 2 street, 3 district; 0 for anyone else."""
    return next((rank for rank, (_, r) in enumerate(ADMIN_LEVELS, 1) if r == role), 0)


# --- phases and their timer steps -----------------------------------------------------------------


@dataclass(frozen=True)
class TimerStep:
    offset: float  # when: the deadline + offset × the limit L (−0.5: half the limit before it)
    action: str  # the event it records
    level: int | None  # who is told: 0 whoever must act, n the n-th level of the chain above; None nobody


@dataclass(frozen=True)
class Phase:
    name: str
    verb: str  # what the order waits for, as staff read it: 接单, 办结, 评价
    deadline: str  # the WorkOrder column it runs against
    limit: str  # the kind of limit (`Limits.seconds`): accept, resolve, rate
    steps: tuple[TimerStep, ...]

    @property
    def offsets(self) -> tuple[float, ...]:
        return tuple(step.offset for step in self.steps)

    def step_time(self, due: datetime, limit: int, index: int) -> datetime:
        """When step `index` (1-based) falls for a deadline `due` and a limit of `limit` seconds."""
        return due + timedelta(seconds=self.steps[index - 1].offset * limit)

    def due_steps(self, due: datetime, limit: int, done: int, now: datetime) -> list[int]:
        """The steps after `done` that are due at `now`, in order (several after a downtime or when the
        limit is shorter than a pass)."""
        return [i for i in range(done + 1, len(self.steps) + 1) if self.step_time(due, limit, i) <= now]


# Remind whoever must act at half time and at the deadline; then tell one level up at deadline + L/2
# and two levels up at deadline + L. With the default 2 h: 1 h, 2 h, 3 h (community), 4 h (street).
REMIND_THEN_ESCALATE = (
    TimerStep(-0.5, "remind", 0),
    TimerStep(0.0, "remind", 0),
    TimerStep(0.5, "escalate", 1),
    TimerStep(1.0, "escalate", 2),
)
ACCEPT = Phase("accept", "接单", "accept_due", "accept", REMIND_THEN_ESCALATE)
RESOLVE = Phase("resolve", "办结", "resolve_due", "resolve", REMIND_THEN_ESCALATE)
RATE = Phase("rate", "评价", "rate_due", "rate", (TimerStep(0.0, "close_unrated", None),))
PHASES = (ACCEPT, RESOLVE, RATE)
DEADLINE_LIMITS: Mapping[str, str] = {phase.deadline: phase.limit for phase in PHASES}


# --- states ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    title: str  # how people read it
    phase: Phase | None  # None: final, nothing more happens


STATE_TABLE: Mapping[str, State] = {
    "new": State("待派单", ACCEPT),
    "assigned": State("待接单", ACCEPT),
    "returned": State("已退回社区", ACCEPT),
    "accepted": State("处理中", RESOLVE),
    "reopened": State("重新处理", RESOLVE),
    "resolved": State("已办结待评价", RATE),
    "closed": State("已关闭", None),
    "cancelled": State("已撤销", None),
}
START = "new"
STATE_NAMES: Mapping[str, str] = {name: state.title for name, state in STATE_TABLE.items()}
STATES = frozenset(STATE_TABLE)
PHASE_STATES: Mapping[str, tuple[str, ...]] = {
    phase.name: tuple(s for s, state in STATE_TABLE.items() if state.phase == phase) for phase in PHASES
}
OPEN_STATES = frozenset(PHASE_STATES["accept"] + PHASE_STATES["resolve"])  # staff still have work to do
RATING_STATES = frozenset(PHASE_STATES["rate"])  # resolved, waiting for the resident
FINAL_STATES = frozenset(s for s, state in STATE_TABLE.items() if state.phase is None)
RESOLVED_STATES = frozenset(
    {"resolved", "closed"}
)  # the work is done: resolved, then rated or closed unrated
CANCELLED = "cancelled"
RATINGS = ("满意", "基本满意", "不满意")
# The deadline each open state runs against, for the lists sorted by it (待办, 逾期).
OPEN_DEADLINES: Mapping[str, tuple[str, ...]] = {
    phase.deadline: PHASE_STATES[phase.name] for phase in (ACCEPT, RESOLVE)
}


def phase_of(state: str) -> Phase | None:
    return STATE_TABLE[state].phase if state in STATE_TABLE else None


def deadline_of(order: WorkOrder) -> datetime | None:
    """The deadline the order runs against now (None when it is final or has none)."""
    phase = phase_of(order.state)
    return getattr(order, phase.deadline) if phase else None


# --- the escalation chain -------------------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    rank: int  # 0 the assignee; otherwise the admin level (1 community, 2 street, 3 district)
    name: str  # how an event names it: a person, or a unit with its people
    people: tuple[StaffInfo, ...]
    label: str  # how a message to a level above names it: 承办人, or the unit


def chain(order: WorkOrder, directory: Directory) -> list[Level]:
    """Who a timer step tells, by level: the assignee first (an order nobody holds: the community admins,
    who must dispatch it), then each admin level above them that has anyone, nearest first. A level with
    nobody in it is passed over, so the next one up hears instead."""
    levels: list[Level] = []
    above = 1
    assignee = directory.person(order.assignee_openid)
    if assignee is not None:
        levels.append(Level(0, assignee.name, (assignee,), "承办人"))
        above = admin_rank(assignee.role) + 1  # an admin assignee's own level is no escalation
    for rank, (level, role) in enumerate(ADMIN_LEVELS, 1):
        if rank < above:
            continue
        unit = directory.ancestor(order.unit_id, level)
        people = directory.people_in(unit, (role,))
        if people:
            names = "、".join(p.name for p in people)
            unit_name = directory.unit_name(unit)
            levels.append(Level(rank, f"{unit_name}（{names}）", tuple(people), unit_name))
    return levels


def community_admins(unit_id: str | None, directory: Directory) -> list[StaffInfo]:
    """The admins of the community a unit belongs to: they dispatch, take 退单 and grant long extensions."""
    return directory.people_in(directory.ancestor(unit_id, ADMIN_LEVELS[0][0]), (COMMUNITY_ADMIN,))


def told_by(step: TimerStep, levels: Sequence[Level]) -> Level | None:
    """The level a step tells (the top of the chain when it is shorter), or None."""
    if step.level is None or not levels:
        return None
    return levels[min(step.level, len(levels) - 1)]


# --- actions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    moves: Mapping[str, str] = field(default_factory=dict)  # from state → to state; empty: a note
    sets: tuple[str, ...] = ()  # deadlines set to the moment of the action + their limit
    extends: str | None = None  # a deadline moved back by the days granted (from itself, or now if later)
    stamps: tuple[str, ...] = ()  # columns set to the moment of the action
    clears: tuple[str, ...] = ()  # columns set to None
    assignee: str | None = None  # "actor": whoever acts takes it; "target": given to the one named
    rating: bool = False  # the text is the resident's rating, kept on the order
    escalates: bool = False  # escalation_level rises to the level told (never falls)

    @property
    def is_note(self) -> bool:
        return not self.moves

    @property
    def writes(self) -> tuple[str, ...]:
        """The columns this action may change (escalation_level aside)."""
        columns = ["state", "timer_step", *self.sets, *self.stamps, *self.clears]
        columns += [self.extends] if self.extends else []
        columns += ["assignee_openid"] if self.assignee else []
        columns += ["rating"] if self.rating else []
        return tuple(dict.fromkeys(columns))

    def restarts_timers(self, before: str, after: str) -> bool:
        """A new phase, or a new deadline: its reminders start again."""
        return bool(self.sets or self.extends) or before != after


CREATE = Action(sets=("accept_due",), stamps=("created_at",))  # a new order, in state START
ACTIONS: Mapping[str, Action] = {
    # 派单 (again to someone else before anyone accepted it), 领单, 接单, 转派, 退单
    "assign": Action(
        {"new": "assigned", "returned": "assigned", "assigned": "assigned"},
        sets=("accept_due",),
        assignee="target",
    ),
    "claim": Action(  # 党员领单: a Party member of the grid takes an order nobody has accepted
        {"new": "accepted", "returned": "accepted", "assigned": "accepted"},
        sets=("resolve_due",),
        stamps=("accepted_at",),
        assignee="actor",
    ),
    "accept": Action(
        {"assigned": "accepted", "reopened": "accepted"},
        sets=("resolve_due",),
        stamps=("accepted_at",),
        assignee="actor",
    ),
    "transfer": Action(
        {"assigned": "assigned", "accepted": "assigned", "reopened": "assigned"},
        sets=("accept_due",),
        assignee="target",
    ),
    "return": Action(  # not ours: the community's turn to dispatch it
        {"assigned": "returned", "accepted": "returned"},
        sets=("accept_due",),
        clears=("assignee_openid",),
    ),
    "progress": Action({"accepted": "accepted", "reopened": "reopened"}),
    "extend": Action({"accepted": "accepted", "reopened": "reopened"}, extends="resolve_due"),
    "resolve": Action(
        {"accepted": "resolved", "reopened": "resolved"}, sets=("rate_due",), stamps=("resolved_at",)
    ),
    "rate": Action({"resolved": "closed"}, stamps=("closed_at",), rating=True),
    "reopen": Action(  # 不满意: back to the assignee with a fresh deadline; the community is told
        {"resolved": "reopened"},
        sets=("resolve_due",),
        clears=("resolved_at",),
        rating=True,
        escalates=True,
    ),
    "close_unrated": Action({"resolved": "closed"}, stamps=("closed_at",)),
    "cancel": Action(
        {"new": "cancelled", "assigned": "cancelled", "returned": "cancelled"}, stamps=("closed_at",)
    ),
    # Notes: recorded, the order stays where it is.
    "remind": Action(),
    "escalate": Action(escalates=True),
    "urge": Action(),
    "supervise": Action(escalates=True),
    "extend_request": Action(),
    "photo": Action(),
    "follow": Action(),
}
TRANSITIONS: Mapping[tuple[str, str], str] = {
    (before, name): after for name, action in ACTIONS.items() for before, after in action.moves.items()
}
NOTES = frozenset(name for name, action in ACTIONS.items() if action.is_note)

# Why an action is refused in a state where the table has no row for it.
# Why an action is refused in a state where the table has no row for it; {n} is the order's number.
_REFUSALS: Mapping[str, str] = {
    "assign": "工单 #{n} 现在不能派单：只有待派单、待接单或已退回的工单可以派单。",
    "claim": "工单 #{n} 已有人承办，不能领单。",
    "accept": "工单 #{n} 现在不能接单：只有待接单的工单可以接单。",
    "transfer": "工单 #{n} 不能转派：只有未办结的工单可以转派。",
    "return": "工单 #{n} 不能退单：只有待接单或处理中的工单可以退单。",
    "progress": "工单 #{n} 还没接单，请先回复“接单 {n}”，再记录进展。",
    "extend": "工单 #{n} 还没接单，请先回复“接单 {n}”，再申请延期。",
    "resolve": "工单 #{n} 还没接单，请先回复“接单 {n}”，再办结。",
    "rate": "工单 #{n} 还没办结，办结后才能评价。",
    "reopen": "工单 #{n} 还没办结，办结后才能评价。",
    "close_unrated": "工单 #{n} 不在待评价，不会自动关闭。",
    "cancel": "工单 #{n} 已有人接单处理，不能撤销；如需加快，请回复“催办 {n}”。",
}
_FINAL = "工单 #{{n}} {state}，不能再操作。"
_TAKEN = "工单 #{n} 已接单，正在处理中。"
_AWAITING_RATING = "工单 #{n} 已办结，正等待居民评价。"
_ANY = "工单 #{n} 当前状态不能进行此操作。"


class IllegalTransition(ValueError):
    """The order cannot take this step now; `about(n)` says why, in Chinese, naming the order once."""

    def about(self, number: int | None) -> str:
        return str(self).replace("{n}", str(number) if number is not None else "")


def next_state(state: str, action: str) -> str:
    if action in NOTES:
        if state in FINAL_STATES:
            raise IllegalTransition(_FINAL.format(state=STATE_NAMES[state]))
        return state
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        if state in FINAL_STATES:
            raise IllegalTransition(_FINAL.format(state=STATE_NAMES[state])) from None
        if action in ("accept", "claim") and state == "accepted":
            raise IllegalTransition(_TAKEN) from None
        if state == "resolved" and action in (
            "accept",
            "progress",
            "resolve",
            "transfer",
            "return",
            "extend",
        ):
            raise IllegalTransition(_AWAITING_RATING) from None
        raise IllegalTransition(_REFUSALS.get(action, _ANY)) from None


def apply(
    order: WorkOrder,
    action: str,
    *,
    actor: str,
    at: datetime,
    limits: Limits,
    text: str = "",
    assignee: str | None = None,
    days: int = 0,
    level: int = 1,
) -> WorkOrderEvent:
    """Move the order one step by the table — state, deadlines, stamps, assignee, rating, escalation —
    and return the event that records it (the caller adds it to the session).

    `assignee` names whom an assign/transfer gives it to; `days` is what an extension grants; `level`
    is the escalation level an escalating step told (1 community, 2 street, 3 district).
    """
    before = order.state
    after = next_state(before, action)
    order.state = after
    rule = ACTIONS[action]
    restart = rule.restarts_timers(before, after)
    _take(
        rule,
        order,
        action,
        actor=actor,
        at=at,
        limits=limits,
        text=text,
        restart=restart,
        assignee=assignee,
        days=days,
        level=level,
    )
    return WorkOrderEvent(
        order_id=order.id, kind=action, actor=actor, text=text, from_state=before, to_state=after, at=at
    )


def create(order: WorkOrder, *, actor: str, at: datetime, limits: Limits, text: str = "") -> WorkOrderEvent:
    """A new order: in state `START`, created now, with its first deadline (to be accepted) and no
    timer step or escalation yet. Returns its `create` event."""
    order.state = START
    order.escalation_level = 0
    _take(CREATE, order, "create", actor=actor, at=at, limits=limits, text=text, restart=True)
    return WorkOrderEvent(
        order_id=order.id, kind="create", actor=actor, text=text, from_state=None, to_state=START, at=at
    )


def _take(
    rule: Action,
    order: WorkOrder,
    action: str,
    *,
    actor: str,
    at: datetime,
    limits: Limits,
    text: str,
    restart: bool,
    assignee: str | None = None,
    days: int = 0,
    level: int = 1,
) -> None:
    for column in rule.sets:
        setattr(order, column, limits.due(column, order, at))
    if rule.extends:
        if days <= 0:
            raise ValueError(f"{action} needs the days granted")
        start = max(getattr(order, rule.extends) or at, at)
        setattr(order, rule.extends, start + timedelta(days=days))
    for column in rule.stamps:
        setattr(order, column, at)
    for column in rule.clears:
        setattr(order, column, None)
    if rule.assignee == "actor":
        order.assignee_openid = actor
    elif rule.assignee == "target":
        if not assignee:
            raise ValueError(f"{action} needs the person it is given to")
        order.assignee_openid = assignee
    if rule.rating:
        order.rating = text
    if rule.escalates:
        order.escalation_level = max(order.escalation_level or 0, level)
    if restart:
        order.timer_step = 0


def next_step_at(order: WorkOrder, limits: Limits) -> datetime | None:
    """When the order's next timer step falls (None: no step left, or no deadline)."""
    phase = phase_of(order.state)
    if phase is None:
        return None
    due = getattr(order, phase.deadline)
    done = order.timer_step or 0
    if due is None or done >= len(phase.steps):
        return None
    return phase.step_time(due, limits.seconds(phase.limit, order.category, bool(order.urgent)), done + 1)


# --- time limits ----------------------------------------------------------------------------------


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

    def due(self, deadline: str, order: WorkOrder, start: datetime) -> datetime:
        """The deadline `deadline` (accept_due, resolve_due, rate_due) of a phase that starts at `start`."""
        kind = DEADLINE_LIMITS[deadline]
        return start + timedelta(seconds=self.seconds(kind, order.category, bool(order.urgent)))

    def accept_due(self, order: WorkOrder, start: datetime) -> datetime:
        return self.due("accept_due", order, start)

    def resolve_due(self, order: WorkOrder, start: datetime) -> datetime:
        return self.due("resolve_due", order, start)

    def rate_due(self, order: WorkOrder, start: datetime) -> datetime:
        return self.due("rate_due", order, start)


def describe_duration(seconds: int) -> str:
    """2 小时, 30 分钟, 3 天 — how long, in plain words."""
    if seconds % 86400 == 0:
        return f"{seconds // 86400} 天"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} 小时"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} 小时"
    return f"{max(1, seconds // 60)} 分钟"
