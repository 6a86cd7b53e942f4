"""The overview's rates cache: a poll never waits for a month's computation once it has a value, one
computation per key runs at a time, and a new value replaces the old as soon as it is ready."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.dashboard.overview import RatesCache
from handlers.rates import DEFAULT_WEIGHTS

KEY = ("xiaotang", "2026-12", DEFAULT_WEIGHTS)


async def test_first_value_is_waited_for_then_stale_values_are_served_while_refreshing() -> None:
    cache = RatesCache()
    calls: list[int] = []
    release = asyncio.Event()

    async def compute() -> Any:
        calls.append(len(calls))
        if len(calls) > 1:
            await release.wait()
        return [f"rows {len(calls)}"]

    assert await cache.rows(KEY, 60, compute) == ["rows 1"]  # nothing cached: waited for
    assert await cache.rows(KEY, 60, compute) == ["rows 1"] and calls == [0]  # fresh: not computed again
    assert await cache.rows(KEY, 0, compute) == ["rows 1"]  # stale: served at once, refreshed behind
    await asyncio.sleep(0)  # the refresh starts
    assert await cache.rows(KEY, 0, compute) == ["rows 1"] and len(calls) == 2  # one refresh at a time
    release.set()
    await asyncio.gather(*cache.tasks.values())
    assert await cache.rows(KEY, 60, compute) == ["rows 2"]
    await cache.close()


async def test_a_slow_first_computation_leaves_the_poll_without_rates_not_waiting() -> None:
    cache = RatesCache()
    never = asyncio.Event()

    async def compute() -> Any:
        await never.wait()
        return ["late"]

    assert await asyncio.wait_for(cache.rows(KEY, 60, compute), 2) is None
    assert KEY in cache.tasks
    await cache.close()
    assert cache.tasks == {} or all(t.cancelled() for t in cache.tasks.values())
