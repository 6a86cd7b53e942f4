"""Webhook benchmark: the real app over loopback, signed text pushes from concurrent senders.

    python bench/webhook.py [--messages N] [--concurrency C [--think S1,S2,…] | --rate R1,R2,…]
                            [--workers W]
                            [--backends embedded,server] [--modes plain,safe] [--warmup W]
                            [--in-process] [--profile DIR [--profiler pyinstrument|cprofile]] [--stalls MS]

For each backend × mode it starts `create_app` (by default in a child process, so the client's work
does not share the server's event loop), sends W warm-up pushes and then N measured ones, each a
distinct MsgId, from C concurrent aiohttp client tasks, and checks every reply: HTTP 200, the envelope
signature and AES in safe mode, and the acknowledgement "已受理，工单号 #n" addressed to the sender
with every order number given once. It then checks the database holds every message exactly once,
handled, with one work order each. One line per run, then a table. Each push names a place of the
demo org, so each runs the full intake (classify, place, grid, work order, staff notice queued).

Closed loop (default): C senders each send the next push as soon as the last reply came back, so the
server is saturated and latency is about C over the throughput. With --think S each sender pauses
(exponentially, S seconds on average) before its next push, as a person reads the reply and types
again: C people in conversation with the bot at once. Open loop (--rate): pushes arrive at
R per second whatever the server does, as residents' messages do; latency counts from each push's
scheduled moment. Each run also prints CPU per message by process (server, PostgreSQL, Redis, this
bench, and the rest of the host) and the throughput that total allows on this host's cores.

embedded = SQLite file in a temp dir + in-process state.
server   = a fresh PostgreSQL database on 127.0.0.1:5432 (dropped at the end) + Redis on 127.0.0.1:6379
           under a prefix of the run's own (deleted at the end); skipped with the reason if unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import io
import itertools
import json
import logging
import math
import os
import platform
import pstats
import random
import re
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from _common import (
    REDIS_URL,
    ROOT,
    host_cpu_ticks,
    percentile,
    process_cpu_seconds,
    scratch_postgres,
    scratch_redis_prefix,
    servers_missing,
    services_cpu_seconds,
    wait_line,
)
from _stalls import StallWatch
from aiohttp import web
from sqlalchemy import func, select
from yarl import URL

from bot.app import create_app, freeze_startup_heap
from bot.config import DEMO_ORG, Settings, StorageSettings, demo_settings
from bot.demo.fake_wechat import create_fake_wechat_app
from bot.edge.dispatcher import RateLimit
from storage.db import create_engine
from storage.models import InboundMessage, OutboxMessage, WorkOrder
from storage.state import RedisState, StateStore
from tests.wechat_sim import WeChatPlatform, text_xml

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wxbench000000000"
APP_SECRET = "bench-app-secret"
ACCOUNT = "gh_gridbot"
MIN_SENDERS = 300
REQUEST_TIMEOUT = 10.0  # WeChat itself gives up after 5 s
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
SCRIPT = Path(__file__).resolve()
# Ordinary (not urgent) reports that each name a place of the demo org and a building of their own, so
# each opens one work order (the same problem in the same building would join the open order instead).
COMPLAINTS = (
    "筱塘新村{b}号楼楼道灯坏了好几天",
    "东圳新苑{b}栋东门垃圾桶满了没人清运",
    "荔园新村{b}栋电梯又坏了，老人上不去",
    "万辉国际城{b}栋楼上每天半夜打麻将太吵",
    "有车停在凤凰山庄{b}栋消防通道上",
    "建设新村{b}号楼家里停水了也没通知",
    "龙桥花园{b}号楼门口路面塌了个坑",
    "海峡明珠{b}栋地下车库漏水",
    "木兰花园{b}号楼邻居在楼顶加盖了一层",
    "荔园菜市场{b}号门口占道经营",
)
ACCEPTED = re.compile(r"已受理，工单号 #(\d+)（")


# --- the server ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    backend: str  # embedded | server
    mode: str  # plain | safe
    database_url: str
    redis_url: str = ""
    redis_prefix: str = ""
    profile: str = ""  # profile the measured phase into this path (without extension)
    profiler: str = "cprofile"  # cprofile | pyinstrument
    log_level: str = "ERROR"  # the app's log output; WARNING shows e.g. outbox retries at shutdown
    api_base: str = ""  # the fake WeChat API in the bench process (not the demo's in-app one)
    port: int = 0  # 0: any free port; else join the workers already listening there (SO_REUSEPORT)
    reuse_port: bool = False
    stalls_ms: float = 0.0  # > 0: report the server loop's stalls longer than this in the measured phase


def app_settings(spec: ServerSpec) -> Settings:
    """Production-like: not the demo, so notices go to the fake WeChat API the bench process serves."""
    base = demo_settings()
    wechat = replace(base.wechat, app_id=APP_ID, app_secret=APP_SECRET, api_base=spec.api_base)
    if spec.mode == "safe":
        wechat = replace(wechat, encoding_aes_key=AES_KEY)
    return replace(
        base,
        demo=False,
        wechat=wechat,
        storage=StorageSettings(database_url=spec.database_url),
        org=replace(base.org, file=str(DEMO_ORG)),
    )


async def start_app(spec: ServerSpec) -> tuple[web.AppRunner, StateStore | None, int]:
    """The real app on an ephemeral loopback port.

    The socket is bound first so the settings carry the real port: the demo's outbox worker sends
    its notices to the fake WeChat API the app itself serves at that address.
    """
    state: StateStore | None = None
    if spec.backend == "server":
        state = RedisState.from_url(spec.redis_url, prefix=spec.redis_prefix)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if spec.reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", spec.port))
    port = int(sock.getsockname()[1])
    settings = app_settings(spec)
    settings = replace(settings, server=replace(settings.server, host="127.0.0.1", port=port))
    runner = web.AppRunner(freeze_startup_heap(create_app(settings, state=state)), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner, state, port


async def stop_app(runner: web.AppRunner, state: StateStore | None) -> None:
    await runner.cleanup()
    if state is not None:
        await state.close()


class PhaseProfiler:
    """The measured phase under cProfile (stdlib; exact counts, but heavy and muddled by coroutines)
    or pyinstrument (sampling, low overhead, readable call tree; used only if installed)."""

    def __init__(self, kind: str, path: str) -> None:
        self.kind = kind
        self.path = path
        self._cprofile: cProfile.Profile | None = None
        self._sampler: Any = None

    def start(self) -> None:
        if self.kind == "pyinstrument":
            from pyinstrument import Profiler  # optional: `pip install pyinstrument`

            self._sampler = Profiler(interval=0.001, async_mode="disabled")
            self._sampler.start()
        else:
            self._cprofile = cProfile.Profile()
            self._cprofile.enable()

    def stop_and_save(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
            tree = self._sampler.output_text(unicode=True, color=False)
            Path(self.path + ".txt").write_text(tree, encoding="utf-8")
            flat = self._sampler.output_text(unicode=True, color=False, flat=True, show_all=True)
            Path(self.path + "-flat.txt").write_text(flat, encoding="utf-8")
        if self._cprofile is not None:
            self._cprofile.disable()
            self._cprofile.dump_stats(self.path + ".prof")


class Measuring:
    """What watches the server during the measured phase: the profiler and the stall watch, if asked."""

    def __init__(self, spec: ServerSpec) -> None:
        self.profiler = PhaseProfiler(spec.profiler, spec.profile) if spec.profile else None
        self.stalls = StallWatch(spec.stalls_ms) if spec.stalls_ms else None

    def start(self) -> None:
        if self.profiler is not None:
            self.profiler.start()
        if self.stalls is not None:
            self.stalls.start()

    async def stop(self) -> list[str]:
        """Stop watching; the stall report's lines (none without a stall watch)."""
        if self.profiler is not None:
            self.profiler.stop_and_save()
        if self.stalls is None:
            return []
        await self.stalls.stop()
        return self.stalls.report()


async def child_main(spec: ServerSpec) -> None:
    """`--serve`: print `READY <port>`; `measure` on stdin starts the profiler and stall watch; at EOF
    print the stall report as one `REPORT <json>` line and stop the server."""
    configure_logging(spec.log_level)
    runner, state, port = await start_app(spec)
    measuring = Measuring(spec)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(f"READY {port}", flush=True)
    try:
        while line := await reader.readline():  # ends at EOF: the parent closed our stdin
            if line.strip() == b"measure":
                measuring.start()
    finally:
        print(f"REPORT {json.dumps(await measuring.stop(), ensure_ascii=False)}", flush=True)
        await stop_app(runner, state)


class Server:
    """The app under test, in a child process (default) or in this process's event loop."""

    def __init__(self, spec: ServerSpec, *, in_process: bool) -> None:
        self.spec = spec
        self.in_process = in_process
        self.port = 0
        self.pid = os.getpid()
        self._child: asyncio.subprocess.Process | None = None
        self._runner: web.AppRunner | None = None
        self._state: StateStore | None = None
        self._measuring = Measuring(spec)
        self.report: list[str] = []  # the stall watch's, after `stop()`

    async def start(self) -> None:
        if self.in_process:
            self._runner, self._state, self.port = await start_app(self.spec)
            return
        self._child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            "--serve",
            json.dumps(asdict(self.spec)),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        self.pid = self._child.pid
        assert self._child.stdout is not None
        line = await wait_line(self._child.stdout, START_TIMEOUT)
        if not line.startswith("READY "):
            await self._kill()
            raise RuntimeError(f"server did not start (said {line!r}; see its stderr above)")
        self.port = int(line.split()[1])

    async def start_measuring(self) -> None:
        if self.in_process:
            self._measuring.start()
        elif self._child is not None and self._child.stdin is not None:
            self._child.stdin.write(b"measure\n")
            await self._child.stdin.drain()

    async def stop(self) -> None:
        if self.in_process:
            self.report = await self._measuring.stop()
            if self._runner is not None:
                await stop_app(self._runner, self._state)
            return
        if self._child is None:
            return
        if self._child.stdin is not None:
            self._child.stdin.close()
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                assert self._child.stdout is not None
                while line := (await self._child.stdout.readline()).decode():
                    if line.startswith("REPORT "):
                        self.report = json.loads(line.removeprefix("REPORT "))
                await self._child.wait()
        except TimeoutError:
            await self._kill()

    async def _kill(self) -> None:
        if self._child is not None and self._child.returncode is None:
            self._child.send_signal(signal.SIGKILL)
            await self._child.wait()


# --- the platform side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Push:
    sender: str
    url: URL
    body: bytes
    query: dict[str, str]


@dataclass
class Outcome:
    status: int
    text: str
    latency: float


def sender_count(messages: int) -> int:
    """Enough senders that none comes near the per-user rate limit (round-robin: ceil(n / senders) each)."""
    per_sender = max(1, RateLimit().limit // 2)
    return max(MIN_SENDERS, math.ceil(messages / per_sender))


def build_pushes(wechat: WeChatPlatform, base: str, messages: int, tag: str, first: int = 0) -> list[Push]:
    """Signed (and in safe mode encrypted) pushes, prepared before timing so the client stays light."""
    senders = sender_count(messages)
    per_sender = math.ceil(messages / senders)
    if per_sender >= RateLimit().limit:
        raise SystemExit(f"{per_sender} messages per sender would hit the rate limit")
    pushes = []
    for i in range(messages):
        sender = f"oBench{tag}{i % senders:05d}"
        xml = text_xml(
            sender, f"{COMPLAINTS[i % len(COMPLAINTS)].format(b=first + i + 1)}（{tag}{i}）", account=ACCOUNT
        )
        query, body = wechat.signed(xml)
        url = URL(f"{base}/wechat?{urlencode(query)}", encoded=True)
        pushes.append(Push(sender, url, body.encode(), query))
    return pushes


async def post(session: aiohttp.ClientSession, push: Push, since: float) -> Outcome | str:
    """Send one push; its latency counts from `since` (a `time.perf_counter()` value)."""
    try:
        async with session.post(push.url, data=push.body, headers={"Content-Type": "text/xml"}) as response:
            body = await response.text()
        return Outcome(response.status, body, time.perf_counter() - since)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"


async def fire(
    session: aiohttp.ClientSession, pushes: list[Push], concurrency: int, think: float = 0.0, seed: int = 1
) -> tuple[list[Outcome | str], float]:
    """Send every push from `concurrency` tasks sharing one work list, each pausing `think` seconds on
    average (exponentially; the first pause spread evenly) before each push; (outcomes, wall seconds)."""
    outcomes: list[Outcome | str] = ["not sent"] * len(pushes)
    indices: Iterator[int] = iter(range(len(pushes)))  # shared: each index is taken by one task
    pauses = random.Random(seed)

    async def sender() -> None:
        if think:
            await asyncio.sleep(pauses.uniform(0, think))
        for i in indices:
            outcomes[i] = await post(session, pushes[i], time.perf_counter())
            if think:
                await asyncio.sleep(pauses.expovariate(1 / think))

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(sender())
    return outcomes, time.perf_counter() - started


async def fire_at_rate(
    session: aiohttp.ClientSession, pushes: list[Push], rate: float, seed: int = 1
) -> tuple[list[Outcome | str], float]:
    """Open loop: each push starts at its own moment of a Poisson process of `rate` per second, whatever
    the server is doing. Latency counts from that scheduled moment, so a client that falls behind
    cannot hide the server's queue (no coordinated omission)."""
    outcomes: list[Outcome | str] = ["not sent"] * len(pushes)
    arrivals = random.Random(seed)

    async def send(i: int, due: float) -> None:
        outcomes[i] = await post(session, pushes[i], due)

    started = due = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for i in range(len(pushes)):
            due += arrivals.expovariate(rate)
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            group.create_task(send(i, due))
    return outcomes, time.perf_counter() - started


def check(wechat: WeChatPlatform, push: Push, outcome: Outcome | str) -> str | None:
    """None if the reply is what the platform should get back, else what is wrong."""
    if isinstance(outcome, str):
        return outcome
    if outcome.status != 200:
        return f"HTTP {outcome.status}: {outcome.text[:80]}"
    try:
        fields = wechat.open_reply(push.query, outcome.text)
    except Exception as exc:  # any parse / decrypt / signature failure is a wrong reply
        return f"unreadable reply ({type(exc).__name__}: {exc})"
    if fields is None:
        return f"no reply text (body {outcome.text[:40]!r})"
    if fields.get("MsgType") != "text" or fields.get("ToUserName") != push.sender:
        return f"reply addressed wrongly: {fields.get('MsgType')} to {fields.get('ToUserName')}"
    if not ACCEPTED.match(str(fields.get("Content"))):
        return f"unexpected reply: {str(fields.get('Content'))[:60]}"
    return None


def order_number(outcome: Outcome | str, wechat: WeChatPlatform, push: Push) -> int | None:
    if isinstance(outcome, str) or outcome.status != 200:
        return None
    fields = wechat.open_reply(push.query, outcome.text) or {}
    match = ACCEPTED.match(str(fields.get("Content")))
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Stored:
    inbound: int
    handled: int
    orders: int
    outbox: dict[str, int]  # outbox rows by status when the server stopped


async def stored_counts(database_url: str) -> Stored:
    """What the run left in its database."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            total = await conn.scalar(select(func.count()).select_from(InboundMessage))
            handled = await conn.scalar(
                select(func.count()).select_from(InboundMessage).where(InboundMessage.handled_at.is_not(None))
            )
            orders = await conn.scalar(select(func.count()).select_from(WorkOrder))
            outbox = (
                await conn.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
            ).all()
    finally:
        await engine.dispose()
    return Stored(int(total or 0), int(handled or 0), int(orders or 0), {s: int(n) for s, n in outbox})


# --- one run -------------------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    mode: str
    messages: int
    concurrency: int
    rate: float
    p50: float
    p99: float
    max: float
    errors: int
    server_cpu: float | None  # server process CPU seconds per wall second (1.0 = one core saturated)
    host_cpu: float | None  # busy fraction of all cores
    error_samples: list[str] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)
    background: float | None = None  # host busy fraction just before the run (others' load)
    offered: float | None = None  # open loop: the arrival rate asked for; None: closed loop
    think: float = 0.0  # closed loop: each sender's mean pause between a reply and its next push
    cpu_split: dict[str, float] = field(default_factory=dict)  # CPU ms per message by process
    stalls: list[str] = field(default_factory=list)  # the server loops' stall reports (--stalls)

    @property
    def host_ms_per_msg(self) -> float | None:
        """CPU time of the whole host per message (every core, kernel included)."""
        if self.host_cpu is None:
            return None
        return self.host_cpu * (os.cpu_count() or 1) / self.rate * 1000

    @property
    def ceiling(self) -> float | None:
        """About the most messages per second this host can take: all its cores over the CPU the whole
        host spends per message (meaningful when the run saturates the host)."""
        total = self.host_ms_per_msg
        return (os.cpu_count() or 1) * 1000 / total if total else None

    @property
    def cpu_ms_per_msg(self) -> str:
        """Server process CPU per message: with one worker, latency at concurrency C is about C × this."""
        return "n/a" if self.server_cpu is None else f"{self.server_cpu / self.rate * 1000:.1f}"

    def line(self) -> str:
        cpu = f"{self.server_cpu * 100:.0f}%" if self.server_cpu is not None else "n/a"
        host = f"{self.host_cpu * 100:.0f}%" if self.host_cpu is not None else "n/a"
        return (
            f"backend={self.backend} mode={self.mode} messages={self.messages} "
            f"concurrency={self.concurrency} msg/s={self.rate:.0f} p50={self.p50:.1f}ms "
            f"p99={self.p99:.1f}ms max={self.max:.1f}ms errors={self.errors} "
            f"server_cpu={cpu} ({self.cpu_ms_per_msg} ms/msg) host_cpu={host} "
            f"busy_before={'n/a' if self.background is None else f'{self.background * 100:.0f}%'} "
            f"outbox_at_stop={','.join(f'{k}:{v}' for k, v in sorted(self.outbox.items())) or 'empty'}"
            + (f" offered={self.offered:g}/s" if self.offered else "")
            + (f" think={self.think:g}s" if self.think else "")
            + self.split_text()
        )

    def split_text(self) -> str:
        if not self.cpu_split:
            return ""
        parts = " ".join(f"{name}={ms:.2f}" for name, ms in self.cpu_split.items())
        ceiling, host = self.ceiling, self.host_ms_per_msg
        if host is not None:  # the kernel's loopback networking, exited processes, anything else
            parts += f" other={max(0.0, host - sum(self.cpu_split.values())):.2f}"
        return f"\n  cpu ms/msg: {parts} host={'n/a' if host is None else f'{host:.2f}'}" + (
            # Only a saturated run shows the cost at full load (a light load costs more per message).
            f" → this host tops out near {ceiling:.0f} msg/s; closed loop at {self.concurrency} the "
            f"mean latency can't beat {self.concurrency / ceiling * 1000:.0f} ms"
            if ceiling and not self.offered and not self.think
            else ""
        )


async def background_load(seconds: float = 1.0) -> float | None:
    """How busy all cores are before the run starts (other processes); None if unknown."""
    before = host_cpu_ticks()
    await asyncio.sleep(seconds)
    after = host_cpu_ticks()
    if not before or not after or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


@dataclass(frozen=True)
class Load:
    """Open loop at `rate` pushes a second, or (rate None) the closed loop with `think` seconds' pauses."""

    rate: float | None = None
    think: float = 0.0


async def run_once(spec: ServerSpec, args: argparse.Namespace, load: Load) -> Result:
    idle_busy = await background_load()
    fake = web.AppRunner(create_fake_wechat_app(app_id=APP_ID, app_secret=APP_SECRET), access_log=None)
    await fake.setup()
    fake_site = web.TCPSite(fake, "127.0.0.1", 0)
    await fake_site.start()
    fake_port = fake_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    workers = args.workers if spec.backend == "server" else 1  # in-process state is one process
    spec = replace(spec, api_base=f"http://127.0.0.1:{fake_port}", reuse_port=workers > 1)
    server = Server(spec, in_process=args.in_process)
    await server.start()
    # Only the first worker is profiled (one profile file); every worker's loop is watched for stalls.
    others = [
        Server(replace(spec, port=server.port, profile=""), in_process=False) for _ in range(workers - 1)
    ]
    for other in others:
        await other.start()
    pids = [server.pid, *(other.pid for other in others)]
    try:
        base = f"http://127.0.0.1:{server.port}"
        wechat = WeChatPlatform(None, token=demo_settings().wechat.token, aes_key=AES_KEY, app_id=APP_ID)
        wechat.mode = spec.mode
        connector = aiohttp.TCPConnector(limit=0 if load.rate else args.concurrency)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            warm = build_pushes(wechat, base, args.warmup, "W")
            warm_outcomes, _ = await fire(session, warm, args.concurrency)
            warm_errors = sum(
                check(wechat, p, o) is not None for p, o in zip(warm, warm_outcomes, strict=True)
            )
            pushes = build_pushes(wechat, base, args.messages, "M", first=args.warmup)
            for each in (server, *others):
                await each.start_measuring()
            cpu_before, host_before = sum(process_cpu_seconds(pid) or 0.0 for pid in pids), host_cpu_ticks()
            services_before, bench_before = services_cpu_seconds(), time.process_time()
            if load.rate:
                outcomes, wall = await fire_at_rate(session, pushes, load.rate)
            else:
                outcomes, wall = await fire(session, pushes, args.concurrency, load.think)
            bench_cpu, services_after = time.process_time() - bench_before, services_cpu_seconds()
            cpu_after, host_after = sum(process_cpu_seconds(pid) or 0.0 for pid in pids), host_cpu_ticks()
    finally:
        for other in others:
            await other.stop()
        await server.stop()
        await fake.cleanup()
    stalls = [
        f"{'server' if not others else f'worker {k}'} {line}" if not line.startswith(" ") else line
        for k, each in enumerate((server, *others), 1)
        for line in each.report
    ]

    problems = [check(wechat, p, o) for p, o in zip(pushes, outcomes, strict=True)]
    errors = [p for p in problems if p is not None]
    if warm_errors:
        errors.append(f"{warm_errors} warm-up replies were wrong")
    numbers = [order_number(o, wechat, p) for p, o in zip(pushes, outcomes, strict=True)]
    repeated = len([n for n in numbers if n is not None]) - len({n for n in numbers if n is not None})
    if repeated:
        errors.append(f"{repeated} order numbers were given out twice")
    stored = await stored_counts(spec.database_url)
    expected = args.warmup + args.messages
    if (stored.inbound, stored.handled, stored.orders) != (expected, expected, expected):
        errors.append(
            f"database holds {stored.inbound} inbound rows ({stored.handled} handled) and "
            f"{stored.orders} work orders, expected {expected} of each"
        )
    latencies = sorted(o.latency * 1000 for o in outcomes if isinstance(o, Outcome))
    server_cpu = None
    if cpu_before is not None and cpu_after is not None:
        server_cpu = (cpu_after - cpu_before) / wall
    host_cpu = None
    if host_before and host_after and host_after[1] > host_before[1]:
        host_cpu = (host_after[0] - host_before[0]) / (host_after[1] - host_before[1])
    samples = [f"{count} × {text}" for text, count in Counter(errors).most_common(5)]
    split: dict[str, float] = {}
    if server_cpu is not None:
        per_message = 1000 / args.messages
        split["server"] = (cpu_after - cpu_before) * per_message
        if services_before is not None and services_after is not None and spec.backend == "server":
            for name in services_before:
                split[name] = (services_after[name] - services_before[name]) * per_message
        split["bench"] = bench_cpu * per_message  # client and fake WeChat API
    return Result(
        backend=spec.backend,
        mode=spec.mode,
        messages=args.messages,
        concurrency=args.concurrency,
        rate=args.messages / wall,
        p50=percentile(latencies, 50),
        p99=percentile(latencies, 99),
        max=latencies[-1] if latencies else 0.0,
        errors=len(errors),
        server_cpu=server_cpu,
        host_cpu=host_cpu,
        error_samples=samples,
        outbox=stored.outbox,
        stalls=stalls,
        background=idle_busy,
        offered=load.rate,
        think=load.think,
        cpu_split=split,
    )


async def run_backend(backend: str, mode: str, args: argparse.Namespace, load: Load) -> Result:
    profile = profile_path(args, backend, mode)
    options = {
        "profile": profile,
        "profiler": args.profiler,
        "log_level": args.server_log,
        "stalls_ms": args.stalls,
    }
    if backend == "embedded":
        with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'gridbot.db'}"
            return await run_once(ServerSpec(backend, mode, url, **options), args, load)
    async with scratch_postgres() as url, scratch_redis_prefix() as prefix:
        spec = ServerSpec(backend, mode, url, redis_url=REDIS_URL, redis_prefix=prefix, **options)
        return await run_once(spec, args, load)


def profile_path(args: argparse.Namespace, backend: str, mode: str) -> str:
    return str(args.profile / f"webhook-{backend}-{mode}") if args.profile else ""


def print_profile(path: str, limit: int) -> None:
    """The top `limit` functions by own time (pyinstrument: the call tree is in `<path>.txt`)."""
    if Path(path + "-flat.txt").is_file():
        lines = Path(path + "-flat.txt").read_text(encoding="utf-8").splitlines()
        print(f"  profile: top {limit} by own time (call tree: {path}.txt):")
        print("\n".join("    " + line for line in lines[:limit] if line.strip()))
        return
    out = io.StringIO()
    stats = pstats.Stats(path + ".prof", stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(limit)
    text = out.getvalue()
    start = text.find("   ncalls")
    print(f"  profile ({path}.prof), top {limit} by own time:")
    print("\n".join("    " + line for line in text[start:].rstrip().splitlines()))


def print_table(results: list[Result]) -> None:
    head = (
        "backend",
        "mode",
        "msgs",
        "load",
        "msg/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "srv cpu",
        "cpu ms/msg",
        "host ms/msg",
    )
    rows = [
        (
            r.backend,
            r.mode,
            str(r.messages),
            f"{r.offered:g}/s"
            if r.offered
            else f"C={r.concurrency}" + (f" think {r.think:g}s" if r.think else ""),
            f"{r.rate:.0f}",
            f"{r.p50:.1f}",
            f"{r.p99:.1f}",
            f"{r.max:.1f}",
            str(r.errors),
            f"{r.server_cpu * 100:.0f}%" if r.server_cpu is not None else "n/a",
            r.cpu_ms_per_msg,
            "n/a" if r.host_ms_per_msg is None else f"{r.host_ms_per_msg:.1f}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


def positive_floats(text: str) -> list[float]:
    try:
        values = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        values = []
    if not values or any(not math.isfinite(v) or v <= 0 for v in values):
        raise argparse.ArgumentTypeError("give numbers above 0, e.g. 20,50,100")
    return values


def csv_list(allowed: tuple[str, ...]) -> Any:
    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        bad = [item for item in items if item not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}")
        return items

    return parse


def header(args: argparse.Namespace) -> str:
    where = (
        "in this process (same event loop as the client)"
        if args.in_process
        else "in a child process (one aiohttp worker; the client runs in this process)"
    )
    return (
        f"webhook bench: real create_app {where} on 127.0.0.1, AppRunner + TCPSite\n"
        f"  {args.messages} measured + {args.warmup} warm-up text pushes per run, {args.concurrency} concurrent "
        f"client tasks on keep-alive connections, {sender_count(args.messages)} senders "
        f"(≤{math.ceil(args.messages / sender_count(args.messages))} msgs each, limit {RateLimit().limit}/min)\n"
        f"  each push is a resident's report naming a demo-org place: the full intake (classify, place, grid,\n"
        f"  work order, staff notice queued; the app's outbox worker sends the notices to a fake\n"
        f"  WeChat API served by this bench process, as it would to WeChat in production)\n"
        f"  pushes signed/encrypted before timing; replies verified after timing; latency = request sent → "
        f"body read\n"
        f"  python {platform.python_version()}, aiohttp {aiohttp.__version__}, {os.cpu_count()} cores, "
        f"server_cpu = server process CPU / wall (100% = one core"
        f"{'; in-process it includes the client' if args.in_process else ''}), host_cpu = all cores busy"
    )


async def main_async(args: argparse.Namespace) -> int:
    print(header(args), flush=True)
    results: list[Result] = []
    loads = [Load(rate=r) for r in args.rate] if args.rate else [Load(think=t) for t in args.think or [0.0]]
    for backend, mode, load in itertools.product(args.backends, args.modes, loads):
        if backend == "server":
            reason = servers_missing()
            if reason:
                print(f"backend=server mode={mode}: skipped ({reason})", flush=True)
                continue
        result = await run_backend(backend, mode, args, load)
        results.append(result)
        print(result.line(), flush=True)
        for stall in result.stalls:
            print(f"  {stall}")
        for sample in result.error_samples:
            print(f"  error: {sample}")
        if result.background is not None and result.background > 0.1:
            print(
                f"  note: the host was {result.background * 100:.0f}% busy before this run; numbers are noisy"
            )
        if args.profile:
            print_profile(profile_path(args, backend, mode), args.profile_top)
    if results:
        print()
        print_table(results)
    return 1 if any(r.errors for r in results) else 0


def configure_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level), format="server %(levelname)s %(name)s: %(message)s")


def default_profiler() -> str:
    return "pyinstrument" if importlib.util.find_spec("pyinstrument") else "cprofile"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--rate",
        type=positive_floats,
        help="open loop instead: messages arrive at these rates per second (Poisson), e.g. 20,50,100",
    )
    parser.add_argument(
        "--think",
        type=positive_floats,
        help="closed loop: each sender pauses this many seconds on average before its next push, e.g. 0.5,1",
    )
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--backends", type=csv_list(("embedded", "server")), default=["embedded", "server"])
    parser.add_argument("--modes", type=csv_list(("plain", "safe")), default=["plain", "safe"])
    parser.add_argument("--in-process", action="store_true", help="run the app in this process's loop")
    parser.add_argument("--profile", type=Path, help="profile each measured phase, writing files here")
    parser.add_argument("--profiler", choices=("pyinstrument", "cprofile"), default=default_profiler())
    parser.add_argument("--profile-top", type=int, default=40, help="profile lines to print")
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes sharing the port (server backend only)"
    )
    parser.add_argument(
        "--stalls",
        type=float,
        default=0.0,
        metavar="MS",
        help="report where the server's event loop stalled longer than MS in the measured phase",
    )
    parser.add_argument("--server-log", choices=("DEBUG", "INFO", "WARNING", "ERROR"), default="ERROR")
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # internal: the child process
    args = parser.parse_args()
    if args.serve:
        asyncio.run(child_main(ServerSpec(**json.loads(args.serve))))
        return
    if args.messages < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--messages and --concurrency must be ≥ 1, --warmup ≥ 0")
    if args.rate and args.think:
        parser.error("--think is for the closed loop; --rate is the open loop: give one")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.in_process:
        configure_logging(args.server_log)
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
