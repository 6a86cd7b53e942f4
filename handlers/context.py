"""What a handler gets: the message, who sent it, the unit of work to act in, and the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.directory import Directory, StaffInfo
from handlers.grammar import Command
from handlers.incoming import Incoming
from handlers.rates import DEFAULT_WEIGHTS, Weights
from handlers.workflow import ACTIONS, ADMIN_ROLES, GRID_STAFF_ROLES, Limits, apply, next_step_at
from nlp.classifier import Classifier
from nlp.gate import Gate
from storage.models import WorkOrder, WorkOrderEvent
from storage.state import StateStore

RESIDENT = "resident"


@dataclass(frozen=True)
class Speaker:
    """The sender: a listed staff member (role and unit from the org file) or a resident."""

    openid: str
    person: StaffInfo | None = None

    @property
    def role(self) -> str:
        return self.person.role if self.person else RESIDENT

    @property
    def unit_id(self) -> str | None:
        return self.person.unit_id if self.person else None

    @property
    def name(self) -> str:
        return self.person.name if self.person else "居民"

    @property
    def is_staff(self) -> bool:
        return self.person is not None

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES

    @property
    def is_grid_staff(self) -> bool:
        return self.role in GRID_STAFF_ROLES


@dataclass(frozen=True)
class Services:
    """Loaded once per process: the classifier, the org snapshot and the time limits."""

    classifier: Classifier
    directory: Directory
    limits: Limits
    wecom: bool = False  # staff with a wecom_userid get their notices through the WeCom app
    weights: Weights = DEFAULT_WEIGHTS  # of the three rates in the composite score
    dashboard_url: str = "http://127.0.0.1:8080"  # where links to the dashboard point ([server] public_url)

    @cached_property
    def gate(self) -> Gate:
        """The intake gate (nlp/rules/gate.toml), reading text as this classifier does."""
        return Gate.load(classifier=self.classifier)


@dataclass
class Context:
    msg: Incoming
    speaker: Speaker
    session: AsyncSession  # one per message; the dispatcher commits it with the stored reply
    state: StateStore
    services: Services
    now: datetime
    inbound_id: int
    command: Command | None = None
    queued: list[str] = field(default_factory=list)  # send keys queued for the outbox in this transaction
    order_id: int | None = None  # the order this message opened or was added to
    pending: dict[str, Any] | None = None  # the question the bot was waiting on, read with the rate limit
    loose_images: bool = True  # False: the sender surely has no recent photo waiting for an order
    urgent: bool = False  # the reply is an emergency's: it goes first, before any deferred notice
    next_step: datetime | None = None  # the earliest timer step of an order moved here (wakes the timers)

    @property
    def pending_key(self) -> str:
        return f"{self.msg.channel}:{self.msg.sender}"

    def step(self, order: WorkOrder, action: str, text: str = "", **changes: Any) -> WorkOrderEvent:
        """Move the order by the policy (`workflow.apply`: state, deadlines, stamps), add its event to the
        session and note when its next timer step falls. IllegalTransition when the state forbids it."""
        event = apply(
            order,
            action,
            actor=self.speaker.openid,
            at=self.now,
            limits=self.services.limits,
            text=text,
            **changes,
        )
        self.session.add(event)
        if ACTIONS[action].restarts_timers(event.from_state or "", event.to_state or ""):
            self.timers_from(order)  # a new deadline (or phase): the timers may have to wake earlier
        return event

    def timers_from(self, order: WorkOrder) -> None:
        """Remember when this order's next timer step falls, so the timers wake for it once committed."""
        at = next_step_at(order, self.services.limits)
        if at is not None and (self.next_step is None or at < self.next_step):
            self.next_step = at
