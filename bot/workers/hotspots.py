"""The hot-spot watch (主动治理): every half minute, one pass of `handlers.hotspots.check`.

A pass is two indexed range scans of the last window's reports (plus one count per grid and category
busy enough to need its usual rate). It runs under the state store's lease "hotspots", so with several
processes usually one works at a time; the hot spot's unique key makes each alert go once even when two
passes overlap.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.workers.passes import PassLoop
from handlers.context import Services
from handlers.hotspots import HotspotRules, check
from storage.state import StateStore

log = logging.getLogger(__name__)

LEASE_KEY = "hotspots"
INTERVAL = 30.0
MAX_REST = 300.0


class HotspotWatch(PassLoop):
    name = "hot spots"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        state: StateStore,
        services: Services,
        rules: HotspotRules,
        *,
        clock: Callable[[], float],
        interval: float = INTERVAL,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.state = state
        self.services = services
        self.rules = rules
        self.clock = clock
        self.interval = interval
        self.on_queued = on_queued

    def rest(self, errors: int) -> float:
        return min(self.interval * 2 ** min(errors, 10), max(MAX_REST, self.interval))

    async def run_once(self) -> int:
        """One check; the number of alerts queued (0 when another process holds the lease)."""
        owner = uuid.uuid4().hex
        if not await self.state.acquire(LEASE_KEY, owner, self.interval * 2):
            return 0
        try:
            now = datetime.fromtimestamp(self.clock(), UTC)
            async with self.sessions() as session, session.begin():
                queued = await check(session, self.services, self.rules, now)
        finally:
            await self.state.release(LEASE_KEY, owner)
        if queued:
            log.info("hot spots: %d alerts queued", len(queued))
            if self.on_queued is not None:
                self.on_queued()
        return len(queued)
