"""Exactly-once handling of inbound messages.

WeChat redelivers a message (up to 3 deliveries) when the reply is slow. Each message is stored first,
in its own transaction. Handling then runs in one transaction that begins by reading the stored row
under a lock (PostgreSQL: SELECT … FOR UPDATE; SQLite: its single connection serialises writers), so a
copy that arrives meanwhile waits for the first to commit and answers with the stored reply. After a
restart the stored row and its reply are still there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.edge.dispatcher import Dispatcher
from bot.metrics import Metrics
from handlers import texts
from handlers.incoming import Incoming
from storage.repo import record_inbound

log = logging.getLogger(__name__)


class Inbox:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        dispatcher: Dispatcher,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.clock = clock

    async def receive(self, msg: Incoming) -> str | None:
        """The reply for this message (None: answer `success`), handling it at most once."""
        async with self.sessions() as session:
            record = await record_inbound(
                session,
                channel=msg.channel,
                dedupe_key=msg.dedupe_key,
                sender=msg.sender,
                kind=f"event:{msg.event}" if msg.event else msg.kind,
                text=msg.text,
                payload=msg.payload(),
                sent_at=msg.sent_at,
                received_at=datetime.fromtimestamp(self.clock(), UTC),
            )
        if record.duplicate:
            self.metrics.inc("gridbot_duplicates_total")
            if record.handled:
                return record.reply or None
        return await self._handle_once(msg, record.id)

    async def _handle_once(self, msg: Incoming, inbound_id: int) -> str | None:
        try:
            reply = await self.dispatcher.feed(msg, inbound_id)
        except Exception:
            # Not marked handled: the stored message is retried on redelivery and visible to admins.
            log.exception("handling inbound message %s failed", inbound_id)
            self.metrics.inc("gridbot_handler_errors_total")
            return texts.BUSY
        self.metrics.inc("gridbot_messages_handled_total", kind=msg.kind)
        return reply
