"""Keeps this process's org snapshot current without a restart.

`gridbot org import` bumps the org revision in the database when it changes anything; the watcher reads
that one row every few seconds and, when it has moved, loads the snapshot again and swaps it in whole.
Every server process watches for itself, so all of them follow within one interval.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.metrics import Metrics
from bot.workers.passes import PassLoop
from handlers.context import Services
from handlers.directory import Directory
from storage.org import org_revision

log = logging.getLogger(__name__)

POLL_SECONDS = 10.0
MAX_REST = 300.0


class OrgWatcher(PassLoop):
    name = "org watch"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        services: Services,
        revision: int,
        *,
        interval: float = POLL_SECONDS,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.services = services
        self.revision = revision  # of the snapshot `services` holds
        self.interval = interval
        self.metrics = metrics

    def rest(self, errors: int) -> float:
        return min(self.interval * 2 ** min(errors, 10), max(MAX_REST, self.interval))

    async def run_once(self) -> int:
        """Reload the snapshot if the org changed since it was taken; 1 if it did, else 0."""
        async with self.sessions() as session:
            revision = await org_revision(session)
            if revision == self.revision:
                return 0
            # An import committing between these reads only makes the next pass reload once more.
            directory = await Directory.load(session)
        self.services.classifier.add_words(directory.names())
        self.services.directory.adopt(directory)
        self.revision = revision
        log.info("organisation reloaded (revision %d)", revision)
        if self.metrics is not None:
            self.metrics.inc("gridbot_org_reloads_total")
        return 1
