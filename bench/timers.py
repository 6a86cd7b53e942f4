"""Timer accuracy: the real app and its own TimerService on the real clock, with 10-second limits.

    python bench/timers.py [--orders N] [--backends embedded,server] [--apps A] [--max-sleep S] [--steps]

For each backend it starts `create_app` in this process (A instances over one database and state
store on the server backend: every one runs its timer loop) with `[sla]` accept, resolve and rate all
10 s, and `[timers] max_sleep` S (default 300 s, so a step on time is the sleep planned for it, or a
wake-up by the deadline just written, never the cap). N residents report, 0.4 s apart, through signed
pushes; the grid leader answers some orders in chat as their steps come:

    a third: never accepted       accept phase: 5 s, 10 s (reminders), 15 s, 20 s (community, street)
    a third: 接单 after 2 steps    then the resolve phase's four steps
    a third: 接单 after 2, 办结 after 1 resolve step   then the auto-close at the rate deadline

When every step has fired it reads every timer event back and compares the moment it was due
(deadline + offset × 10 s, from the deadlines stored) with the moment it fired (`event.at`, the pass
that took it): max, p50, p95 per step and in all, and checks that each step fired exactly once and none
early. The last line is `timer_lag_max=… p50=… p95=… steps=…` over all backends.

embedded = SQLite file in a temp dir + in-process state.
server   = a fresh PostgreSQL database on 127.0.0.1:5432 (dropped at the end) + Redis on 127.0.0.1:6379
           under a prefix of the run's own (deleted at the end); skipped with the reason if unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from _common import REDIS_URL, ROOT, percentile, scratch_postgres, scratch_redis_prefix, servers_missing
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot import keys
from bot.app import create_app
from bot.config import Settings, StorageSettings, TimerSettings, demo_settings
from bot.demo.fake_wechat import create_fake_wechat_app
from handlers.workflow import PHASES, Phase
from storage.db import create_engine, session_factory
from storage.models import WorkOrder, WorkOrderEvent
from tests.wechat_sim import WeChatPlatform

LIMIT = 10  # seconds: accept, resolve and rate
# Places of the demo org in six grids, with each grid's leader (who answers in chat).
GRIDS = (
    ("筱塘新村", "oLeader-xiaotang-1"),
    ("龙桥花园", "oLeader-xiaotang-2"),
    ("万辉国际城", "oLeader-xiaotang-3"),
    ("东圳新苑", "oLeader-dongzhen-1"),
    ("凤凰山庄", "oLeader-dongzhen-2"),
    ("木兰花园", "oLeader-mulan-1"),
)
APP_ID, APP_SECRET = "wxbench000000000", "bench-secret"
TIMER_KINDS = ("remind", "escalate", "close_unrated")
PHASE = {phase.name: phase for phase in PHASES}


@dataclass(frozen=True)
class Step:
    order: int
    phase: str
    index: int
    due: float  # epoch seconds
    fired: float

    @property
    def late(self) -> float:
        return self.fired - self.due


def settings_for(database_url: str, redis_url: str, prefix: str, api_base: str, max_sleep: int) -> Settings:
    base = demo_settings()
    sla = replace(
        base.sla, accept=LIMIT, resolve=LIMIT, rate=LIMIT, urgent_accept=LIMIT, urgent_resolve=LIMIT
    )
    return replace(
        base,
        demo=False,
        wechat=replace(base.wechat, app_id=APP_ID, app_secret=APP_SECRET, api_base=api_base),
        storage=StorageSettings(database_url=database_url, redis_url=redis_url, redis_prefix=prefix),
        org=replace(base.org, file=str(ROOT / "examples" / "org.demo.toml")),
        sla=sla,
        timers=TimerSettings(max_sleep=max_sleep),
    )


async def timer_events(database_url: str) -> dict[int, list[WorkOrderEvent]]:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.scalars(select(WorkOrderEvent).order_by(WorkOrderEvent.id))
            by_order: dict[int, list[WorkOrderEvent]] = defaultdict(list)
            for event in rows:
                by_order[event.order_id].append(event)
            return by_order
    finally:
        await engine.dispose()


async def run_backend(
    name: str, database_url: str, redis_url: str, prefix: str, args: argparse.Namespace
) -> list[Step]:
    fake = TestServer(create_fake_wechat_app(app_id=APP_ID, app_secret=APP_SECRET))
    await fake.start_server()
    settings = settings_for(database_url, redis_url, prefix, f"http://127.0.0.1:{fake.port}", args.max_sleep)
    clients: list[TestClient] = []
    try:
        for _ in range(args.apps):
            client = TestClient(TestServer(create_app(settings, clock=time.time)))
            await client.start_server()
            clients.append(client)
        platforms = [
            WeChatPlatform(c, token=settings.wechat.token, app_id=APP_ID, clock=time.time) for c in clients
        ]
        numbers: list[int] = []
        leader: dict[int, str] = {}
        for i in range(args.orders):
            wechat = platforms[i % len(platforms)]
            place, grid_leader = GRIDS[i % len(GRIDS)]
            reply = (await wechat.say(f"oBenchResident{i}", f"{place}{i + 1}号楼楼道灯坏了")).content or ""
            found = re.search(r"工单号 #(\d+)", reply)
            if not found:
                raise SystemExit(f"{name}: no order number in the reply: {reply!r}")
            numbers.append(int(found.group(1)))
            leader[numbers[-1]] = grid_leader
            await asyncio.sleep(0.4)
        group = {n: index % 3 for index, n in enumerate(numbers)}  # 0 never, 1 accept, 2 accept+resolve
        expected = {0: 4, 1: 2 + 4, 2: 2 + 1 + 1}
        acted: dict[int, int] = dict.fromkeys(numbers, 0)  # commands sent so far
        deadline = time.monotonic() + 120
        while True:
            events = await timer_events(database_url)
            steps = {n: [e for e in events.get(n, []) if e.kind in TIMER_KINDS] for n in numbers}
            if all(len(steps[n]) >= expected[group[n]] for n in numbers):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: steps still missing after 120 s")
            for n in numbers:
                wechat = platforms[n % len(platforms)]
                if group[n] >= 1 and acted[n] == 0 and len(steps[n]) >= 2:
                    reply = (await wechat.say(leader[n], f"接单 {n}")).content or ""
                    assert "已接单" in reply, reply
                    acted[n] = 1
                elif group[n] == 2 and acted[n] == 1 and len(steps[n]) >= 3:
                    reply = (await wechat.say(leader[n], f"办结 {n} 灯已修好")).content or ""
                    assert "已办结" in reply, reply
                    acted[n] = 2
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # anything firing twice would show now
        lags = [c.server.app[keys.METRICS].render() for c in clients]
    finally:
        for client in clients:
            await client.close()
        await fake.close()
    return await measured(name, database_url, numbers, expected, group, lags)


async def measured(
    name: str,
    database_url: str,
    numbers: list[int],
    expected: dict[int, int],
    group: dict[int, int],
    metrics: list[str],
) -> list[Step]:
    """Every timer step with the moment it was due and the moment it fired; checks each fired once."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            orders = {
                o.id: o for o in await session.scalars(select(WorkOrder).where(WorkOrder.id.in_(numbers)))
            }
    finally:
        await engine.dispose()
    events = await timer_events(database_url)
    out: list[Step] = []
    for n in numbers:
        order, history = orders[n], events[n]
        phase: Phase = PHASE["accept"]
        index = 0
        for event in history:
            if event.kind in ("accept", "claim"):
                phase, index = PHASE["resolve"], 0
            elif event.kind == "resolve":
                phase, index = PHASE["rate"], 0
            if event.kind not in TIMER_KINDS:
                continue
            index += 1
            due_at = getattr(order, phase.deadline)
            moment = phase.step_time(due_at, LIMIT, index).timestamp()
            out.append(Step(n, phase.name, index, moment, event.at.timestamp()))
        taken = sum(1 for e in history if e.kind in TIMER_KINDS)
        if taken != expected[group[n]]:
            raise SystemExit(f"{name}: order #{n} has {taken} timer events, expected {expected[group[n]]}")
    early = [s for s in out if s.late < 0]
    if early:
        raise SystemExit(f"{name}: {len(early)} step(s) fired early, e.g. {early[0]}")
    gauge = [
        line
        for text in metrics
        for line in text.splitlines()
        if line.startswith("gridbot_timer_lag_seconds ")
    ]
    print(f"{name}: {len(out)} steps of {len(numbers)} orders, each once, none early; /metrics {gauge}")
    return out


def stats(values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"{percentile(ordered, 50) * 1000:7.1f} {percentile(ordered, 95) * 1000:7.1f} {ordered[-1] * 1000:7.1f}"
        if ordered
        else "      —       —       —"
    )


def table(name: str, steps: list[Step], verbose: bool) -> None:
    if verbose:
        for s in sorted(steps, key=lambda s: s.due):
            print(
                f"  #{s.order:<3} {s.phase:<7} step {s.index}  due {s.due:.3f}  fired {s.fired:.3f}  +{s.late * 1000:.1f} ms"
            )
    print(f"{'backend':<10} {'phase':<8} {'step':<5} {'n':>4}  {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    kinds = sorted(
        {(s.phase, s.index) for s in steps}, key=lambda k: ([p.name for p in PHASES].index(k[0]), k[1])
    )
    for phase, index in kinds:
        lates = [s.late for s in steps if (s.phase, s.index) == (phase, index)]
        print(f"{name:<10} {phase:<8} {index:<5} {len(lates):>4}  {stats(lates)}")
    print(f"{name:<10} {'all':<8} {'':<5} {len(steps):>4}  {stats([s.late for s in steps])}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=24)
    parser.add_argument("--backends", default="embedded,server")
    parser.add_argument(
        "--apps", type=int, default=2, help="app instances on the server backend (embedded: 1)"
    )
    parser.add_argument("--max-sleep", type=int, default=300)
    parser.add_argument("--steps", action="store_true", help="print every step's due and fired moments")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    everything: list[Step] = []
    for backend in args.backends.split(","):
        if backend == "embedded":
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
                one = argparse.Namespace(**{**vars(args), "apps": 1})
                steps = await run_backend("embedded", url, "", "gridbot:", one)
        elif backend == "server":
            missing = servers_missing()
            if missing:
                print(f"server: skipped ({missing})")
                continue
            async with scratch_postgres(tag="timers") as url, scratch_redis_prefix(tag="timers") as prefix:
                steps = await run_backend(f"server×{args.apps}", url, REDIS_URL, prefix, args)
        else:
            raise SystemExit(f"unknown backend {backend!r}")
        table(backend, steps, args.steps)
        everything += steps
    if everything:
        ordered = sorted(s.late for s in everything)
        print(
            f"timer_lag_max={ordered[-1]:.3f}s p50={percentile(ordered, 50):.3f}s "
            f"p95={percentile(ordered, 95):.3f}s steps={len(ordered)}"
        )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
