"""Exactly-once handling of inbound messages.

WeChat redelivers a message (up to 3 deliveries) when the reply is slow. Each message is stored first,
then one worker — whoever takes the lease — handles it; copies that arrive meanwhile wait for its reply
and answer with the same words. After a restart the stored row and its reply are still there.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.dispatcher import Dispatcher
from bot.metrics import Metrics
from handlers import texts
from handlers.incoming import Incoming
from storage.repo import find_inbound, record_inbound
from storage.state import StateStore

log = logging.getLogger(__name__)

LEASE_TTL = 30.0  # longer than any handler may take; a crashed holder's lease lapses after it
WAIT_FOR_REPLY = 4.0  # WeChat gives up after 5 s
POLL_EVERY = 0.05


class Inbox:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        state: StateStore,
        dispatcher: Dispatcher,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.state = state
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.clock = clock
        self.monotonic = monotonic

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
        lease = f"inbound:{msg.channel}:{msg.dedupe_key}"
        owner = uuid.uuid4().hex
        give_up = self.monotonic() + WAIT_FOR_REPLY
        while True:
            if await self.state.acquire(lease, owner, LEASE_TTL):
                try:
                    return await self._handle_once(msg, record.id)
                finally:
                    await self.state.release(lease, owner)
            await asyncio.sleep(POLL_EVERY)
            async with self.sessions() as session:
                current = await find_inbound(session, msg.channel, msg.dedupe_key)
            if current is not None and current.handled:
                return current.reply or None
            if self.monotonic() > give_up:
                return None  # the platform retries; by then the first copy has stored its reply

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
