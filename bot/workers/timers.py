"""Timers: the loop that takes the reminders, escalations (吹哨) and auto-closes the policy declares.

What is due and whom it tells is `handlers/workflow.py` (phases, steps, the chain); what is recorded
and said is `handlers/reminders.py`. This module only finds the orders, writes each one's steps once,
queues the messages, and sleeps until the next step.

**On time.** After each pass the service asks the database for the earliest next step of any order
(one grouped query per phase) and sleeps until that moment, at most `[timers] max_sleep`. Whoever
writes a deadline in this process calls `hint(moment)` (the dispatcher does, after its commit), which
wakes the service early when that step falls before the planned wake-up: a new urgent order is not
left waiting for a sleep planned before it existed. Across processes nothing needs to be passed on:
each process plans from the shared database, and the process that wrote a deadline wakes itself.

**Once, with any number of processes.** A pass runs under the short state-store lease "timers" (so one
pass at a time sends each person one message); a process that finds it held tries again a moment
later. And each order's steps are written by a guarded UPDATE (same state, deadline and step as read)
in the transaction that adds their events and queues their notices, whose send keys name the (order,
phase, steps, person) — so even two passes racing without the lease cannot take a step twice or send
a notice twice.

After a downtime (or with limits shorter than the time between passes) every due step is taken: each
is its own event, every level is told, each person gets one message (`handlers/reminders.py`).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.metrics import Metrics
from bot.workers.passes import PassLoop
from handlers import reminders
from handlers.context import Services
from handlers.notices import address_of
from handlers.workflow import PHASE_STATES, PHASES, Limits, Phase
from storage import deadlines
from storage.deadlines import LimitRule
from storage.outbox import enqueue
from storage.state import StateStore

log = logging.getLogger(__name__)

__all__ = ["LAG_GAUGE", "TimerService", "limit_rules"]

LEASE_KEY = "timers"
LAG_GAUGE = "gridbot_timer_lag_seconds"
MAX_SLEEP = 60.0  # the default of `[timers] max_sleep`
BUSY_RETRY = 0.25  # seconds before trying again when another process holds the pass lease
IDLE_FLOOR = 0.05  # the least rest when a step looks due but the pass took nothing (never spin)
OVERSLEEP = 0.001  # wake this much after the moment, so the pass surely finds the step due


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
        max_sleep: float = MAX_SLEEP,
        on_queued: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
        lease: float = 30.0,
        batch: int = 200,
        busy_retry: float = BUSY_RETRY,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.state = state
        self.services = services
        self.clock = clock
        self.max_sleep = max_sleep
        self.on_queued = on_queued
        self.metrics = metrics
        self.lease = lease  # renewed after every batch, so it only has to outlast one batch
        self.batch = batch
        self.busy_retry = busy_retry
        self.owner = uuid.uuid4().hex
        self.next_at: float | None = None  # when the next step falls (epoch s), as the last pass found
        self.lateness: list[float] = []  # seconds each step of the last pass that took any was late
        self._rules = {phase.name: limit_rules(services.limits, phase.limit) for phase in PHASES}
        self._hinted: float | None = None  # the earliest step hinted since the last pass began
        self._wake_at = -math.inf  # when the current rest ends; -inf while a pass runs
        self._elsewhere = False  # the last pass found the lease held by another process
        self._took = 0

    # --- when to run ------------------------------------------------------------------------------

    def hint(self, moment: datetime) -> None:
        """A deadline was just written whose next step falls at `moment`: wake early for it."""
        at = moment.timestamp()
        if self._hinted is None or at < self._hinted:
            self._hinted = at
        if at < self._wake_at:
            self.wake()

    def rest(self, errors: int) -> float:
        now = self.clock()
        if errors:
            wait = min(self.max_sleep, 2.0 ** min(errors, 8))
        elif self._elsewhere:
            wait = self.busy_retry
        else:
            moments = [m for m in (self.next_at, self._hinted) if m is not None]
            wait = min(moments) - now + OVERSLEEP if moments else self.max_sleep
            if wait <= 0 and not self._took:
                wait = IDLE_FLOOR
        wait = min(max(wait, 0.0), self.max_sleep)
        self._wake_at = now + wait
        return wait

    # --- one pass ---------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """One pass: take every due step, batch by batch, then find when the next one falls. Returns how
        many steps were taken; 0 also when another process holds the lease (it is doing the same work)."""
        self._wake_at = -math.inf  # awake: a hint now is kept for rest(), not a wake-up
        self._hinted = None  # anything hinted before this moment was committed: this pass sees it
        if not await self.state.acquire(LEASE_KEY, self.owner, self.lease):
            self._elsewhere, self._took = True, 0
            return 0
        self._elsewhere = False
        total, lateness = 0, []
        try:
            while not self._stopping:
                fired, full, late = await self._batch(self._now())
                total += fired
                lateness += late
                if not (full and fired):
                    break
                if not await self.state.acquire(LEASE_KEY, self.owner, self.lease):
                    break  # the lease lapsed and someone else took over
            self.next_at = await self._next_step()
        finally:
            try:
                await self.state.release(LEASE_KEY, self.owner)
            except Exception:  # it expires by itself
                log.warning("could not release the timer lease", exc_info=True)
        self._took = total
        if lateness:
            self.lateness = lateness
            if self.metrics is not None:
                self.metrics.gauge(LAG_GAUGE, max(lateness))
            log.info("timers: %d step(s) taken, at most %.3f s late", total, max(lateness))
        return total

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def _batch(self, now: datetime) -> tuple[int, bool, list[float]]:
        """Up to `batch` orders of each phase in one transaction: the steps taken, whether a phase filled
        the batch, and how late each step was."""
        fired, full, queued = 0, False, 0
        notices: list[reminders.Notice] = []
        lateness: list[float] = []
        async with self.sessions() as session, session.begin():
            for phase in PHASES:
                orders = await deadlines.due_orders(
                    session,
                    states=PHASE_STATES[phase.name],
                    due_field=phase.deadline,
                    offsets=phase.offsets,
                    rules=self._rules[phase.name],
                    now=now,
                    limit=self.batch,
                )
                full = full or len(orders) >= self.batch
                for order in orders:
                    session.expunge(order)  # a snapshot: every write goes through the guarded UPDATE
                    state, step = order.state, order.timer_step
                    due = getattr(order, phase.deadline)
                    plan = reminders.plan(order, phase, self.services.limits, self.services.directory, now)
                    if plan is None or not await self._write(
                        session, phase, order.id, state, step, due, plan
                    ):
                        continue  # nothing due after all, or someone moved it first
                    session.add_all(plan.events)
                    notices += plan.notices
                    fired += len(plan.steps)
                    lateness += [(now - moment).total_seconds() for moment in plan.moments]
            queued = await self._send(session, notices, now)
        if queued and self.on_queued is not None:
            self.on_queued()
        return fired, full, lateness

    async def _write(
        self,
        session: AsyncSession,
        phase: Phase,
        order_id: int,
        state: str,
        step: int,
        due: datetime,
        plan: reminders.Plan,
    ) -> bool:
        return await deadlines.advance(
            session,
            order_id,
            state=state,
            timer_step=step,
            due_field=phase.deadline,
            due=due,
            values=plan.values,
            escalation=plan.escalation,
        )

    async def _send(self, session: AsyncSession, notices: Sequence[reminders.Notice], now: datetime) -> int:
        """Queue one message per person: the notice itself, or a summary of several."""
        queued = 0
        for message in reminders.messages(notices):
            channel, recipient = address_of(self.services, message.openid)
            queued += await enqueue(
                session,
                send_key=message.send_key,
                channel=channel,
                recipient=recipient,
                text=message.text,
                order_id=message.order_id,
                now=now,
            )
        return queued

    async def _next_step(self) -> float | None:
        """When the earliest next step of any order falls (epoch seconds), or None."""
        limits, best = self.services.limits, None
        async with self.sessions() as session:
            for phase in PHASES:
                rows = await deadlines.earliest(
                    session, states=PHASE_STATES[phase.name], due_field=phase.deadline, steps=len(phase.steps)
                )
                for row in rows:
                    limit = limits.seconds(phase.limit, row.category, row.urgent)
                    at = phase.step_time(row.due, limit, row.timer_step + 1).timestamp()
                    best = at if best is None else min(best, at)
        return best
