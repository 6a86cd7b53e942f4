"""The media worker: keeps every photo and voice message residents send, for good.

WeChat keeps a MediaId's file for 3 days. Each pass queues the new photos and voice messages, then
downloads the due ones one at a time through the async client, checks type and size, stores the bytes
in the media store by their sha256 and records it. A failed download is retried with capped, jittered
backoff; a refused file (too large, wrong type, unknown MediaId) and one still failing after
`max_attempts` or past WeChat's 3 days is marked failed with the reason. Rows are claimed with a lease,
so several processes download each file once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.metrics import Metrics
from bot.tencent.wechat_api import MAX_MEDIA_BYTES, Media, MediaRefused, SendRejected, WeChatAPIError
from bot.workers.outbox import Backoff
from bot.workers.passes import PassLoop
from storage import media_files
from storage.media_store import MediaStore
from storage.models import MediaFile

log = logging.getLogger(__name__)

__all__ = ["MediaSource", "MediaWorker"]

KEPT_BY_WECHAT = timedelta(days=3)
MAX_ERROR_PAUSE = 30.0
MEDIA_BACKOFF = Backoff(base=10.0, cap=1800.0)  # 5–10 s, then doubling up to half an hour


class MediaSource(Protocol):
    async def get_media(self, media_id: str, *, max_bytes: int = MAX_MEDIA_BYTES) -> Media:
        """The file, or a `WeChatAPIError` saying why not."""


class MediaWorker(PassLoop):
    name = "media"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sources: dict[str, MediaSource],
        store: MediaStore,
        *,
        clock: Callable[[], float],
        poll_interval: float = 2.0,
        lease: float = 60.0,
        max_attempts: int = 10,
        max_bytes: int = MAX_MEDIA_BYTES,
        backoff: Backoff = MEDIA_BACKOFF,
        jitter: Callable[[], float] = random.random,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.sources = sources  # channel → where its media ids are downloaded from
        self.store = store
        self.clock = clock
        self.poll_interval = poll_interval
        self.lease = lease
        self.max_attempts = max_attempts
        self.max_bytes = max_bytes
        self.backoff = backoff
        self.jitter = jitter
        self.metrics = metrics
        self._scanned_until: datetime | None = None  # this process has queued everything received before

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def rest(self, errors: int) -> float:
        return min(self.poll_interval * 2 ** min(errors, 10), max(MAX_ERROR_PAUSE, self.poll_interval))

    async def run_once(self) -> int:
        await self.discover()
        processed = 0
        while not self._stopping:
            async with self.sessions() as session, session.begin():
                row = await media_files.claim_next(session, self._now(), self.lease)
            if row is None:
                break
            processed += 1
            await self._keep(row)
        return processed

    async def discover(self) -> int:
        """Queue what arrived since the last look (a minute of overlap for rows committed late)."""
        now = self._now()
        since = now - KEPT_BY_WECHAT
        if self._scanned_until is not None:
            since = max(since, self._scanned_until - timedelta(minutes=1))
        async with self.sessions() as session, session.begin():
            queued = await media_files.discover(session, tuple(self.sources), since, now)
        if queued < 500:
            self._scanned_until = now
        return queued

    async def _keep(self, row: MediaFile) -> None:
        source = self.sources[row.channel]
        try:
            async with asyncio.timeout(self.lease * 0.8):
                media = await source.get_media(row.media_id, max_bytes=self.max_bytes)
            sha256 = await self.store.put(media.data)
        except (MediaRefused, SendRejected) as exc:
            await self._record(row, "failed", str(exc))
        except (WeChatAPIError, TimeoutError, OSError) as exc:
            await self._record(row, "retry", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug must not lose the file: try again later
            log.exception("media %s: unexpected error", row.id)
            await self._record(row, "retry", f"{type(exc).__name__}: {exc}")
        else:
            async with self.sessions() as session, session.begin():
                await media_files.mark_stored(
                    session,
                    row.id,
                    attempts=row.attempts,
                    sha256=sha256,
                    content_type=media.content_type,
                    size=len(media.data),
                    now=self._now(),
                )
            self._count("stored")

    async def _record(self, row: MediaFile, result: str, error: str) -> None:
        now = self._now()
        expired = now - row.created_at > KEPT_BY_WECHAT
        if result == "retry" and (row.attempts >= self.max_attempts or expired):
            result = "failed"
        log.warning("media %s (%s) attempt %d %s: %s", row.id, row.kind, row.attempts, result, error)
        async with self.sessions() as session, session.begin():
            if result == "failed":
                await media_files.mark_failed(session, row.id, attempts=row.attempts, error=error)
            else:
                wait = self.backoff.delay(row.attempts, self.jitter())
                await media_files.mark_retry(
                    session, row.id, attempts=row.attempts, error=error, next_at=now + timedelta(seconds=wait)
                )
        self._count(result)

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.inc("gridbot_media_total", result=result)
