"""Timers: reminders, escalations (吹哨) and the auto-close of unrated orders.

Each open order is in one phase with one deadline `due` and one limit L (`Limits.seconds`, so the
per-category and urgent limits apply):

    phase                  states                      due           steps (at)
    waiting to be accepted new, assigned, returned     accept_due    1 due−L/2 · 2 due · 3 due+L/2 · 4 due+L
    waiting to be resolved accepted, reopened          resolve_due   the same four
    waiting to be rated    resolved                    rate_due      1 due: closed as unrated, nothing sent

Steps 1 and 2 remind the one who must act (the assignee; for an order nobody holds, the community
admins, who must dispatch it); step 3 escalates one level up (the community admins of the grid's
community), step 4 one more (the street). A level without anyone is skipped. `order.timer_step`
records the last step taken; `workflow.apply` sets it back to 0 whenever the order moves on.

After downtime only the highest due step is taken (one event, one notice), and a pass sends each person
ONE message: a single order's notice, or a short summary of all of theirs.

Fire once, with any number of processes: a pass runs under the state-store lease "timers"; and each
step is written by a guarded UPDATE (same state, deadline and step as read) in the transaction that
adds its event and queues its notices, whose send keys name the (order, phase, step, person) — so
even two passes racing cannot take a step twice or send a notice twice.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.workers.passes import PassLoop
from handlers import texts
from handlers.context import Services
from handlers.directory import Directory, StaffInfo
from handlers.notices import address_of
from handlers.views import short
from handlers.workflow import Limits, apply
from storage import deadlines
from storage.deadlines import LimitRule
from storage.models import WorkOrder
from storage.outbox import enqueue
from storage.state import StateStore

log = logging.getLogger(__name__)

__all__ = ["PHASES", "Phase", "TimerService", "limit_rules", "target_step"]

LEASE_KEY = "timers"
STEP_OFFSETS = (-0.5, 0.0, 0.5, 1.0)  # steps 1..4, in multiples of the limit from the deadline
FIRST_ESCALATION = 3  # steps from here on go one level up each
SEND_KEY_MAX = 128
_WORDS = 30  # characters of the resident's words quoted in a single notice
# Who is above an assignee of this role: the first admin level to escalate to (1 community, 2 street, 3 district).
_ABOVE = {"community_admin": 2, "street_admin": 3, "district_admin": 4}
_ADMIN_LEVELS = (("community", "community_admin"), ("street", "street_admin"), ("district", "district_admin"))


@dataclass(frozen=True)
class Phase:
    kind: str  # accept | resolve | rate: the `Limits.seconds` kind
    states: tuple[str, ...]
    due_field: str
    offsets: tuple[float, ...]  # step s is due at due + offsets[s - 1] * L


PHASES = (
    Phase("accept", ("new", "assigned", "returned"), "accept_due", STEP_OFFSETS),
    Phase("resolve", ("accepted", "reopened"), "resolve_due", STEP_OFFSETS),
    Phase("rate", ("resolved",), "rate_due", (0.0,)),
)


def target_step(due: datetime, limit: int, offsets: Sequence[float], now: datetime) -> int:
    """The highest step due at `now` (0: none yet)."""
    step = 0
    for index, offset in enumerate(offsets, 1):
        if deadlines.step_time(due, limit, offset) <= now:
            step = index
    return step


def limit_rules(limits: Limits, kind: str) -> list[LimitRule]:
    """The limits of `kind` as query rules: per urgency, categories with the same limit together."""
    special = tuple(sorted(limits.category))
    rules: list[LimitRule] = []
    for urgent in (False, True):
        by_seconds: dict[int, list[str]] = defaultdict(list)
        for category in special:
            by_seconds[limits.seconds(kind, category, urgent)].append(category)
        default = limits.seconds(kind, "\x00", urgent)  # a category no override names
        rules.append(LimitRule(default, urgent, None, special))
        rules.extend(LimitRule(s, urgent, tuple(c)) for s, c in sorted(by_seconds.items()))
    return rules


@dataclass(frozen=True)
class Notice:
    """What one person is told about one order's step."""

    openid: str
    order_id: int
    item: str  # order, phase (state and deadline) and step: the identity of what is reported
    single: str  # the message when it is the only one for this person in the pass
    line: str  # its line in a summary
    own: bool  # the reader must act (a reminder), rather than oversee (an escalation)


@dataclass(frozen=True)
class Level:
    name: str  # how the event names it: a person, or a unit with its people
    people: tuple[StaffInfo, ...]


class Recipients:
    """Who is reminded or told at each step, from the org snapshot."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def person(self, openid: str | None) -> StaffInfo | None:
        return self.directory.person(openid)

    def admins(self, unit_id: str | None, role: str) -> list[StaffInfo]:
        return self.directory.people_in(unit_id, (role,))

    def chain(self, order: WorkOrder, assignee: StaffInfo | None) -> list[Level]:
        """The assignee, then each admin level above them that has anyone, nearest first."""
        levels: list[Level] = []
        first = 1
        if assignee is not None:
            levels.append(Level(assignee.name, (assignee,)))
            first = _ABOVE.get(assignee.role, 1)
        for index, (level, role) in enumerate(_ADMIN_LEVELS, 1):
            if index < first:
                continue
            unit = self.directory.ancestor(order.unit_id, level)
            people = self.admins(unit, role)
            if people:
                names = "、".join(p.name for p in people)
                levels.append(Level(f"{self.directory.unit_name(unit)}（{names}）", tuple(people)))
        return levels


class TimerService(PassLoop):
    """Takes the timer steps that are due. `run()` until `stop()`; `run_once()` for one pass."""

    name = "timers"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        state: StateStore,
        services: Services,
        *,
        clock: Callable[[], float],
        interval: float = 30.0,
        on_queued: Callable[[], None] | None = None,
        lease: float = 300.0,
        batch: int = 200,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.state = state
        self.services = services
        self.clock = clock
        self.interval = interval
        self.on_queued = on_queued
        self.lease = lease  # renewed after every batch, so it only has to outlast one batch
        self.batch = batch
        self.owner = uuid.uuid4().hex
        self._rules = {phase.kind: limit_rules(services.limits, phase.kind) for phase in PHASES}

    def rest(self, errors: int) -> float:
        return self.interval

    async def run_once(self) -> int:
        """One pass: take every due step, batch by batch. Returns how many steps were taken; 0 also when
        another process holds the lease (it is doing the same work)."""
        if not await self.state.acquire(LEASE_KEY, self.owner, self.lease):
            return 0
        total = 0
        try:
            while not self._stopping:
                fired, full = await self._batch(self._now())
                total += fired
                if not (full and fired):
                    break
                if not await self.state.acquire(LEASE_KEY, self.owner, self.lease):
                    break  # the lease lapsed and someone else took over
        finally:
            try:
                await self.state.release(LEASE_KEY, self.owner)
            except Exception:  # it expires by itself
                log.warning("could not release the timer lease", exc_info=True)
        if total:
            log.info("timers: %d step(s) taken", total)
        return total

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def _batch(self, now: datetime) -> tuple[int, bool]:
        """Up to `batch` orders of each phase in one transaction; True when a phase filled the batch."""
        fired, full, queued = 0, False, 0
        notices: list[Notice] = []
        async with self.sessions() as session, session.begin():
            recipients = Recipients(self.services.directory)
            for phase in PHASES:
                orders = await deadlines.due_orders(
                    session,
                    states=phase.states,
                    due_field=phase.due_field,
                    offsets=phase.offsets,
                    rules=self._rules[phase.kind],
                    now=now,
                    limit=self.batch,
                )
                full = full or len(orders) >= self.batch
                for order in orders:
                    session.expunge(order)  # a snapshot: every write goes through the guarded UPDATE
                    fired += await self._step(session, recipients, phase, order, now, notices)
            queued = await self._send(session, notices, now)
        if queued and self.on_queued is not None:
            self.on_queued()
        return fired, full

    async def _step(
        self,
        session: AsyncSession,
        recipients: Recipients,
        phase: Phase,
        order: WorkOrder,
        now: datetime,
        notices: list[Notice],
    ) -> int:
        """Take the highest due step of one order; 1 if taken, 0 if someone else moved it first."""
        limit = self.services.limits.seconds(phase.kind, order.category, order.urgent)
        due = getattr(order, phase.due_field)
        step = target_step(due, limit, phase.offsets, now)
        before_state, before_step = order.state, order.timer_step
        if step <= before_step:
            return 0

        async def advance(values: dict[str, object], escalations: int = 0) -> bool:
            return await deadlines.advance(
                session,
                order.id,
                state=before_state,
                timer_step=before_step,
                due_field=phase.due_field,
                due=due,
                values=values,
                escalations=escalations,
            )

        if phase.kind == "rate":
            event = apply(order, "close_unrated", actor="timer", text="居民未在时限内评价，自动关闭", at=now)
            values = {"state": order.state, "closed_at": order.closed_at, "timer_step": order.timer_step}
            if not await advance(values):
                return 0
            session.add(event)
            return 1

        assignee = recipients.person(order.assignee_openid)
        chain = recipients.chain(order, assignee)
        level = chain[min(max(step - 2, 0), len(chain) - 1)] if chain else None
        verb = "办结" if phase.kind == "resolve" else "接单" if assignee is not None else "派单"
        status = texts.timer_status(verb, (due - now).total_seconds())
        escalate = step >= FIRST_ESCALATION
        told = ("上报" if escalate else "提醒") + level.name if level else ""
        event = apply(
            order,
            "escalate" if escalate else "remind",
            actor="timer",
            text=f"{status}，{told}" if told else f"{status}（无人可通知）",
            at=now,
        )
        escalations = sum(1 for s in range(before_step + 1, step + 1) if s >= FIRST_ESCALATION)
        if not await advance({"timer_step": step}, escalations):
            return 0
        session.add(event)
        if level is None:
            return 1
        words = short(order.text, _WORDS)
        item = f"{order.id}.{before_state}@{int(due.timestamp())}.{step}"
        if escalate:
            who = assignee.name if assignee is not None else "待派单"
            grid = self.services.directory.unit_name(order.unit_id)
            single = texts.timer_escalate(order.id, order.category, grid, status, who, words)
            line = texts.timer_line(order.id, order.category, status, who)
        else:
            hint = texts.timer_hint(verb, order.id)
            single = texts.timer_remind(order.id, order.category, status, words, hint)
            line = texts.timer_line(order.id, order.category, status)
        for person in level.people:
            notices.append(Notice(person.openid, order.id, item, single, line, own=not escalate))
        return 1

    async def _send(self, session: AsyncSession, notices: list[Notice], now: datetime) -> int:
        """Queue one message per person: the notice itself, or a summary of several."""
        by_person: dict[str, list[Notice]] = defaultdict(list)
        for notice in notices:
            by_person[notice.openid].append(notice)
        queued = 0
        for openid, items in sorted(by_person.items()):
            items.sort(key=lambda n: n.order_id)
            if len(items) == 1:
                text, order_id = items[0].single, items[0].order_id
                key = f"timer:{items[0].item}:{openid}"
            else:
                text, order_id = (
                    texts.timer_summary(
                        [n.line for n in items],
                        own=any(n.own for n in items),
                        oversee=not all(n.own for n in items),
                    ),
                    None,
                )
                digest = hashlib.sha256("|".join(n.item for n in items).encode()).hexdigest()[:32]
                key = f"timers:{digest}:{openid}"
            if len(key) > SEND_KEY_MAX:
                key = "timer:" + hashlib.sha256(key.encode()).hexdigest()
            channel, recipient = address_of(self.services, openid)
            queued += await enqueue(
                session,
                send_key=key,
                channel=channel,
                recipient=recipient,
                text=text,
                order_id=order_id,
                now=now,
            )
        return queued
