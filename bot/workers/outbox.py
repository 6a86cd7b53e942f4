"""The outbox worker: claims due messages one at a time, sends them, records the outcome.

Exactly one request is in flight per worker, and a claimed row stays invisible to other workers for the
lease, so the only message that can be sent twice is one whose worker died after WeChat accepted it and
before `mark_sent` committed; it goes out again once the lease lapses. A send is cut off at 80 % of the
lease so that its outcome is recorded while the claim is still ours; keep `lease` well above the HTTP
timeout (a send may need a token fetch, a refresh and a retry).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.metrics import Metrics
from bot.tencent.wechat_api import OutOfWindow, QuotaExceeded, SendRejected, WeChatAPI, WeChatAPIError
from bot.workers.passes import PassLoop
from storage import outbox
from storage.models import OutboxMessage

log = logging.getLogger(__name__)

__all__ = ["Backoff", "ChannelSender", "OutboxWorker", "Sender", "WeChatSender"]

MAX_ERROR_PAUSE = 30.0
SEND_SHARE_OF_LEASE = 0.8


class Sender(Protocol):
    async def send(self, message: OutboxMessage) -> None:
        """Deliver one message or raise a `WeChatAPIError` saying why not."""


class WeChatSender:
    """Official-account delivery: `text` as a customer-service message, `template` from the payload.

    When a text notice is refused because the person has not written for 48 hours (45015/45047) and
    `templates` names a template for its notice kind (`payload["notice"]`), it goes as that template
    message instead; otherwise `OutOfWindow` propagates and the worker keeps it for their next message.
    """

    def __init__(self, api: WeChatAPI, templates: Mapping[str, str] | None = None) -> None:
        self.api = api
        self.templates = dict(templates or {})

    async def send(self, message: OutboxMessage) -> None:
        if message.kind == "text":
            try:
                await self.api.send_text(message.recipient, message.text)
            except OutOfWindow:
                template_id = self.templates.get(str(message.payload.get("notice", "")))
                if not template_id:
                    raise
                await self.api.send_template(message.recipient, template_id, template_data(message))
        elif message.kind == "template":
            payload = message.payload
            if not isinstance(payload.get("template_id"), str) or not isinstance(payload.get("data"), dict):
                raise SendRejected(None, "a template message needs template_id and data in its payload")
            await self.api.send_template(
                message.recipient, payload["template_id"], payload["data"], payload.get("url")
            )
        else:
            raise SendRejected(None, f"kind {message.kind!r} cannot be sent on wechat")


def template_data(message: OutboxMessage) -> dict[str, dict[str, str]]:
    """The notice in a template's usual fields: first (headline), keyword1 (order), keyword2 (details), remark."""
    first, _, rest = message.text.partition("\n")
    return {
        "first": {"value": first[:100]},
        "keyword1": {"value": f"#{message.order_id}" if message.order_id else "—"},
        "keyword2": {"value": (rest or first)[:200]},
        "remark": {"value": "回复“查询”查看详情。"},
    }


class ChannelSender:
    """Routes each message to the sender of its channel (`wechat`, later `wecom`)."""

    def __init__(self, senders: Mapping[str, Sender]) -> None:
        self.senders = dict(senders)

    async def send(self, message: OutboxMessage) -> None:
        sender = self.senders.get(message.channel)
        if sender is None:
            raise SendRejected(None, f"no sender for channel {message.channel!r}")
        await sender.send(message)


@dataclass(frozen=True)
class Backoff:
    """Capped exponential delays with equal jitter, in seconds."""

    base: float = 5.0
    cap: float = 600.0
    quota_pause: float = 3600.0  # after 45009 the worker sends nothing on that channel for this long

    def delay(self, attempts: int, jitter: float) -> float:
        """Delay after the `attempts`-th failed attempt; `jitter` in [0, 1) spreads it over [d/2, d)."""
        full = min(self.base * 2 ** min(max(attempts - 1, 0), 30), self.cap)
        return full / 2 + full / 2 * jitter


class OutboxWorker(PassLoop):
    """Sends what the outbox holds. `run()` until `stop()`; `wake()` after an enqueue to skip the poll wait."""

    name = "outbox"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sender: Sender,
        *,
        clock: Callable[[], float],
        poll_interval: float = 0.5,
        lease: float = 30.0,
        max_attempts: int = 8,
        backoff: Backoff = Backoff(),
        jitter: Callable[[], float] = random.random,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.sender = sender
        self.clock = clock
        self.poll_interval = poll_interval
        self.lease = lease
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.jitter = jitter
        self.metrics = metrics
        self.paused_until: dict[str, float] = {}  # channel → end of its quota stop, on `clock`

    def rest(self, errors: int) -> float:
        """The poll interval; doubling with each failed pass in a row, up to MAX_ERROR_PAUSE."""
        return min(self.poll_interval * 2 ** min(errors, 10), max(MAX_ERROR_PAUSE, self.poll_interval))

    async def run_once(self) -> int:
        """Send every due message, one at a time; return how many were attempted."""
        processed = 0
        while not self._stopping:
            message = await self._claim()
            if message is None:
                break
            processed += 1
            await self._deliver(message)
        return processed

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def paused_channels(self) -> frozenset[str]:
        now = self.clock()
        return frozenset(channel for channel, until in self.paused_until.items() if now < until)

    async def _claim(self) -> OutboxMessage | None:
        async with self.sessions() as session, session.begin():
            return await outbox.claim_next(session, self._now(), self.lease, skip=self.paused_channels())

    async def _deliver(self, message: OutboxMessage) -> None:
        try:
            # Record the outcome before the lease lapses, or another worker would send it too.
            async with asyncio.timeout(self.lease * SEND_SHARE_OF_LEASE):
                await self.sender.send(message)
        except TimeoutError:
            log.warning("outbox message %s: send took too long, will retry", message.id)
            await self._record(message, "retry", "send timed out")
        except OutOfWindow as exc:
            await self._record(message, "deferred", str(exc))
        except QuotaExceeded as exc:
            # The other channel has its own quota: its messages keep going.
            self.paused_until[message.channel] = self.clock() + self.backoff.quota_pause
            log.error(
                "outbox: %s quota spent (errcode %s); sending on it paused for %.0f s",
                message.channel,
                exc.errcode,
                self.backoff.quota_pause,
            )
            await self._record(message, "quota", str(exc))
        except SendRejected as exc:
            log.warning("outbox message %s rejected: %s", message.id, exc)
            await self._record(message, "failed", str(exc))
        except WeChatAPIError as exc:  # Retryable or TokenError
            log.warning("outbox message %s attempt %d: %s", message.id, message.attempts, exc)
            await self._record(message, "retry", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug in a sender must not lose the message: retry with backoff
            log.exception("outbox message %s: unexpected error while sending", message.id)
            await self._record(message, "retry", f"{type(exc).__name__}: {exc}")
        else:
            await self._record(message, "sent", "")

    async def _record(self, message: OutboxMessage, result: str, error: str) -> None:
        now = self._now()
        attempts = message.attempts
        if result == "retry" and attempts >= self.max_attempts:
            result = "failed"
            log.warning("outbox message %s failed after %d attempts: %s", message.id, attempts, error)
        async with self.sessions() as session, session.begin():
            if result == "sent":
                recorded = await outbox.mark_sent(session, message.id, now)
            elif result == "deferred":
                recorded = await outbox.mark_deferred(session, message.id, attempts=attempts, error=error)
            elif result == "failed":
                recorded = await outbox.mark_failed(session, message.id, attempts=attempts, error=error)
            else:
                quota = result == "quota"
                wait = self.backoff.quota_pause if quota else self.backoff.delay(attempts, self.jitter())
                recorded = await outbox.mark_retry(
                    session,
                    message.id,
                    attempts=attempts,
                    error=error,
                    next_at=now + timedelta(seconds=wait),
                    count=not quota,
                )
        if not recorded:
            log.warning("outbox message %s: a newer claim owns it, %s not recorded", message.id, result)
        if self.metrics is not None:
            self.metrics.inc("gridbot_outbox_total", result=result)
