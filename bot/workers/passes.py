"""A background service that works in passes: `run()` repeats `run_once()` until `stop()`, resting
between passes; `wake()` ends the rest early (after an enqueue, say)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

log = logging.getLogger(__name__)


class PassLoop:
    name = "background"  # in log lines

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Finish the work in hand, then leave `run()`."""
        self._stopping = True
        self._wake.set()

    async def halt(self, within: float = 10.0) -> None:
        """`stop()`, and wait up to `within` s until the pass in hand (if any) is over."""
        self.stop()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), within)

    async def run_once(self) -> int:
        raise NotImplementedError

    def rest(self, errors: int) -> float:
        """Seconds to rest after a pass; `errors` failed passes in a row just before it."""
        raise NotImplementedError

    async def run(self) -> None:
        errors = 0
        while not self._stopping:
            self._wake.clear()
            try:
                await self.run_once()
                errors = 0
            except Exception:  # the database or the state store may be down: keep going, try later
                errors += 1
                log.exception("%s pass failed (%d in a row)", self.name, errors)
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.rest(errors)):
                    await self._wake.wait()

    @contextlib.asynccontextmanager
    async def running(self, stop_within: float) -> AsyncIterator[None]:
        """`run()` in a task while the block lasts; then stop, and wait up to `stop_within` s for the pass
        in hand to finish before cancelling it."""
        task = self._task = asyncio.create_task(self.run(), name=self.name)
        try:
            yield
        finally:
            self.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(task, stop_within)
