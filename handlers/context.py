"""What a handler gets: the message, who sent it, and the unit of work to act in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.incoming import Incoming
from storage.models import Person
from storage.state import StateStore

RESIDENT = "resident"


@dataclass(frozen=True)
class Speaker:
    """The sender: a listed staff member (role and unit from the org file) or a resident."""

    openid: str
    person: Person | None = None

    @property
    def role(self) -> str:
        return self.person.role if self.person else RESIDENT

    @property
    def unit_id(self) -> str | None:
        return self.person.unit_id if self.person else None

    @property
    def is_staff(self) -> bool:
        return self.person is not None


@dataclass(frozen=True)
class Context:
    msg: Incoming
    speaker: Speaker
    session: AsyncSession  # one per message; the dispatcher commits it with the stored reply
    state: StateStore
    now: datetime
