"""Where an event loop stops answering: a task beats every 2 ms, a thread checks the beat every 5 ms,
and when the beat is older than the threshold it records what the loop's thread is running then.

A stall is one callback that held the loop (a full garbage collection, a blocking call, a long
computation); every request in flight waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
import traceback
from collections import Counter

BEAT = 0.002
CHECK = 0.005
FRAMES = 8  # innermost frames kept to tell stalls apart


class StallWatch:
    def __init__(self, threshold_ms: float) -> None:
        self.threshold = threshold_ms / 1000
        self.stalls: Counter[str] = Counter()
        self.longest = 0.0
        self._beat = time.perf_counter()
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._watch, name="stall-watch", daemon=True)

    def start(self) -> None:
        """Call from the loop's thread."""
        self._loop_thread = threading.get_ident()
        self._beat = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._beats())
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def report(self, limit: int = 10) -> list[str]:
        head = f"loop stalls over {self.threshold * 1000:.0f} ms: {sum(self.stalls.values())}" + (
            f", longest {self.longest * 1000:.0f} ms" if self.stalls else ""
        )
        return [head, *(f"  {count} × {where}" for where, count in self.stalls.most_common(limit))]

    async def _beats(self) -> None:
        while True:
            self._beat = time.perf_counter()
            await asyncio.sleep(BEAT)

    def _watch(self) -> None:
        recorded = None  # one record per stall: the beat it outlived
        while not self._stop.wait(CHECK):
            beat = self._beat
            late = time.perf_counter() - beat
            if late > self.threshold and beat != recorded:
                recorded = beat
                frame = sys._current_frames().get(self._loop_thread)
                stack = traceback.extract_stack(frame)[-FRAMES:] if frame is not None else []
                where = " ← ".join(
                    f"{f.name} ({f.filename.rsplit('/', 1)[-1]}:{f.lineno})" for f in reversed(stack)
                )
                self.stalls[where or "?"] += 1
            if beat == recorded:
                self.longest = max(self.longest, late)
