"""The outbox and its worker on both backends, sending to the fake WeChat API with a settable clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.workers.outbox import Backoff, ChannelSender, OutboxWorker, Sender, WeChatSender
from storage import outbox
from storage.db import create_engine, session_factory
from storage.models import OutboxMessage
from storage.repo import InboundLock, lock_inbound, record_inbound
from storage.state import StateStore
from tests.fake_helpers import Clock, FakeServer, eventually, make_api, start_fake

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def wx(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> FakeServer:
    return await start_fake(aiohttp_server)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def sessions(engine: AsyncEngine) -> Sessions:
    return session_factory(engine)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sender(http: aiohttp.ClientSession, wx: FakeServer, state: StateStore, clock: Clock) -> Sender:
    return ChannelSender({"wechat": WeChatSender(make_api(http, wx, state, clock=clock))})


def worker(sessions: Sessions, sender: Sender, clock: Clock, **options: Any) -> OutboxWorker:
    options.setdefault("jitter", lambda: 0.5)
    return OutboxWorker(sessions, sender, clock=clock, **options)


async def put(sessions: Sessions, clock: Clock, key: str, to: str = "oResident1", **options: Any) -> None:
    options.setdefault("text", f"通知 {key}")
    options.setdefault("channel", "wechat")
    async with sessions() as session, session.begin():
        assert await outbox.enqueue(session, send_key=key, recipient=to, now=clock.dt(), **options)


async def row(sessions: Sessions, key: str) -> OutboxMessage:
    async with sessions() as session:
        return (await session.scalars(select(OutboxMessage).where(OutboxMessage.send_key == key))).one()


# --- the repository ------------------------------------------------------------------------------


async def test_enqueue_is_idempotent_on_send_key_and_part_of_the_callers_transaction(
    sessions: Sessions, clock: Clock
) -> None:
    async with sessions() as session, session.begin():
        common = {"channel": "wechat", "recipient": "oLeader001", "now": clock.dt()}
        assert await outbox.enqueue(session, send_key="order:1:assigned", text="第一次", **common)
        assert not await outbox.enqueue(session, send_key="order:1:assigned", text="第二次", **common)
        assert await outbox.enqueue(session, send_key="order:1:urged", text="催办", **common)
    async with sessions() as session, session.begin():
        assert not await outbox.enqueue(session, send_key="order:1:assigned", text="第三次", **common)
        await outbox.enqueue(session, send_key="order:2:assigned", text="回滚", **common)
        await session.rollback()
    async with sessions() as session:
        rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    assert [(r.send_key, r.text, r.status, r.attempts) for r in rows] == [
        ("order:1:assigned", "第一次", "pending", 0),
        ("order:1:urged", "催办", "pending", 0),
    ]


async def test_claim_takes_due_rows_oldest_first_and_hides_them_for_the_lease(
    sessions: Sessions, clock: Clock
) -> None:
    await put(sessions, clock, "now")
    clock.advance(-10)
    await put(sessions, clock, "earlier")
    clock.advance(70)
    await put(sessions, clock, "later")
    clock.advance(-60)
    claimed = []
    async with sessions() as session, session.begin():
        while (message := await outbox.claim_next(session, clock.dt(), 30)) is not None:
            claimed.append((message.send_key, message.attempts, message.next_attempt_at))
    assert claimed == [
        ("earlier", 1, clock.dt() + timedelta(seconds=30)),
        ("now", 1, clock.dt() + timedelta(seconds=30)),
    ]
    clock.advance(30)
    async with sessions() as session, session.begin():
        again = await outbox.claim_next(session, clock.dt(), 30)
    assert again is not None and (again.send_key, again.attempts) == ("now", 2)  # a tie: the older id


async def test_a_worker_whose_lease_lapsed_cannot_overwrite_a_newer_claim(
    sessions: Sessions, clock: Clock
) -> None:
    await put(sessions, clock, "k")
    async with sessions() as session, session.begin():
        stale = await outbox.claim_next(session, clock.dt(), 30)
    clock.advance(31)
    async with sessions() as session, session.begin():
        fresh = await outbox.claim_next(session, clock.dt(), 30)
        assert stale is not None and fresh is not None and fresh.attempts == 2
        assert await outbox.mark_sent(session, fresh.id, clock.dt())
    async with sessions() as session, session.begin():
        later = clock.dt() + timedelta(minutes=5)
        assert not await outbox.mark_retry(session, stale.id, attempts=1, error="late", next_at=later)
        assert not await outbox.mark_failed(session, stale.id, attempts=1, error="late")
        assert not await outbox.mark_deferred(session, stale.id, attempts=1, error="late")
    assert (await row(sessions, "k")).status == "sent"


# --- the worker ----------------------------------------------------------------------------------


async def test_worker_sends_a_pending_message_once(
    sessions: Sessions, sender: Sender, clock: Clock, wx: FakeServer
) -> None:
    await put(sessions, clock, "order:7:accepted", to="oResident1", text="网格员林文已接单 #7")
    assert await worker(sessions, sender, clock).run_once() == 1
    assert [(m["touser"], m["content"]) for m in wx.fake.messages] == [("oResident1", "网格员林文已接单 #7")]
    sent = await row(sessions, "order:7:accepted")
    assert (sent.status, sent.attempts, sent.sent_at, sent.last_error) == ("sent", 1, clock.dt(), None)
    clock.advance(86400)
    assert await worker(sessions, sender, clock).run_once() == 0
    assert len(wx.fake.messages) == 1


async def test_busy_is_retried_with_capped_backoff_then_sent(
    sessions: Sessions, sender: Sender, clock: Clock, wx: FakeServer
) -> None:
    await put(sessions, clock, "k")
    wx.fake.fail_next("oResident1", -1, times=2)
    w = worker(sessions, sender, clock)  # jitter 0.5: a delay is 3/4 of base · 2^(attempts − 1)
    start = clock.dt()
    assert await w.run_once() == 1
    first = await row(sessions, "k")
    assert (first.status, first.attempts) == ("pending", 1) and "-1" in (first.last_error or "")
    assert first.next_attempt_at == start + timedelta(seconds=3.75)
    clock.advance(3.7)
    assert await w.run_once() == 0
    clock.advance(0.05)
    assert await w.run_once() == 1
    second = await row(sessions, "k")
    assert second.next_attempt_at == clock.dt() + timedelta(seconds=7.5)
    clock.advance(7.5)
    assert await w.run_once() == 1
    done = await row(sessions, "k")
    assert (done.status, done.attempts, done.last_error) == ("sent", 3, None)
    assert wx.fake.send_requests == 3 and len(wx.fake.messages) == 1


def test_backoff_is_capped_exponential_with_jitter() -> None:
    backoff = Backoff(base=5, cap=600)
    assert [backoff.delay(n, 0.0) for n in (1, 2, 3)] == [2.5, 5.0, 10.0]
    assert [backoff.delay(n, 0.999) for n in (1, 2)] == pytest.approx([4.9975, 9.995])
    assert 300 <= backoff.delay(8, 0.0) <= backoff.delay(50, 0.999) < 600
    assert backoff.delay(10_000, 0.5) == 450


async def test_gives_up_after_max_attempts(
    sessions: Sessions, sender: Sender, clock: Clock, wx: FakeServer
) -> None:
    await put(sessions, clock, "k")
    wx.fake.fail_next(None, -1, times=100)
    w = worker(sessions, sender, clock, max_attempts=3)
    for _ in range(3):
        assert await w.run_once() == 1
        clock.advance(3600)
    assert await w.run_once() == 0
    failed = await row(sessions, "k")
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert wx.fake.send_requests == 3 and wx.fake.messages == []
    async with sessions() as session:
        assert [m.send_key for m in await outbox.undeliverable(session)] == ["k"]


async def test_rejected_message_fails_at_once(
    sessions: Sessions, sender: Sender, clock: Clock, wx: FakeServer
) -> None:
    await put(sessions, clock, "bad-openid", to="oNobody")
    await put(sessions, clock, "wecom-later", channel="wecom")
    await put(sessions, clock, "odd-kind", kind="voice")
    wx.fake.fail_next("oNobody", 40003)
    assert await worker(sessions, sender, clock).run_once() == 3
    for key, reason in [("bad-openid", "40003"), ("wecom-later", "no sender"), ("odd-kind", "voice")]:
        failed = await row(sessions, key)
        assert (failed.status, failed.attempts) == ("failed", 1) and reason in (failed.last_error or "")


async def test_out_of_window_is_deferred_and_taken_once_for_the_next_reply(
    sessions: Sessions, sender: Sender, clock: Clock, wx: FakeServer
) -> None:
    await put(sessions, clock, "a1", to="oA", text="工单 #1 已受理")
    clock.advance(1)
    await put(sessions, clock, "a2", to="oA", text="工单 #1 已办结，请评价")
    await put(sessions, clock, "b1", to="oB")
    wx.fake.fail_next("oA", 45015)
    wx.fake.fail_next("oA", 45047)
    assert await worker(sessions, sender, clock).run_once() == 3
    assert [m["touser"] for m in wx.fake.messages] == ["oB"]
    async with sessions() as session:
        assert [m.send_key for m in await outbox.undeliverable(session)] == ["a1", "a2"]
    async with sessions() as session, session.begin():
        assert len(await outbox.take_deferred(session, "wechat", "oA")) == 2
        await session.rollback()  # the reply was not stored: the notices stay for the next one
    async with sessions() as session, session.begin():
        taken = await outbox.take_deferred(session, "wechat", "oA", clock.dt(), limit=1)
        taken += await outbox.take_deferred(session, "wechat", "oA", clock.dt())
        assert await outbox.take_deferred(session, "wechat", "oB") == []
    assert [m.text for m in taken] == ["工单 #1 已受理", "工单 #1 已办结，请评价"]
    assert {m.status for m in taken} == {outbox.DELIVERED_IN_REPLY}
    async with sessions() as session, session.begin():
        assert await outbox.take_deferred(session, "wechat", "oA") == []
        assert await outbox.undeliverable(session) == []
    clock.advance(86400)
    assert await worker(sessions, sender, clock).run_once() == 0
    assert len(wx.fake.messages) == 1


async def test_the_inbound_lock_says_whether_the_sender_has_notices_or_photos_waiting(
    sessions: Sessions, sender: Sender, clock: Clock, wx: FakeServer
) -> None:
    async def stored(kind: str, key: str) -> int:
        async with sessions() as session:
            values = {"text": "", "payload": {}, "sent_at": clock.dt(), "received_at": clock.dt()}
            record = await record_inbound(
                session, channel="wechat", dedupe_key=key, sender="oA", kind=kind, **values
            )
            return record.id

    async def lock(inbound_id: int, images_since: timedelta = timedelta(minutes=10)) -> InboundLock:
        async with sessions() as session, session.begin():
            return await lock_inbound(session, inbound_id, "wechat", "oA", clock.dt() - images_since)

    first = await stored("text", "m1")
    assert await lock(first) == InboundLock(reply=None, handled=False, deferred=False, loose_images=False)
    await put(sessions, clock, "n1", to="oA")
    await put(sessions, clock, "n2", to="oB")
    wx.fake.fail_next("oA", 45015)
    assert await worker(sessions, sender, clock).run_once() == 2
    await stored("image", "m2")
    clock.advance(60)
    second = await stored("text", "m3")
    assert await lock(second) == InboundLock(reply=None, handled=False, deferred=True, loose_images=True)
    assert (await lock(second, images_since=timedelta(seconds=30))).loose_images is False
    async with sessions() as session, session.begin():
        assert len(await outbox.take_deferred(session, "wechat", "oA")) == 1
    assert (await lock(second)).deferred is False


class Recording:
    """A channel's sender that takes everything."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: OutboxMessage) -> None:
        self.sent.append(message.text)


async def test_quota_pauses_that_channel_and_keeps_the_message(
    sessions: Sessions,
    http: aiohttp.ClientSession,
    state: StateStore,
    clock: Clock,
    wx: FakeServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wecom = Recording()
    sender = ChannelSender({"wechat": WeChatSender(make_api(http, wx, state, clock=clock)), "wecom": wecom})
    await put(sessions, clock, "k1")
    await put(sessions, clock, "k2")
    await put(sessions, clock, "c1", channel="wecom")
    wx.fake.fail_next(None, 45009)
    w = worker(sessions, sender, clock)
    assert await w.run_once() == 2  # k1 met the quota; k2 waits; the other channel's c1 still went
    assert wecom.sent == ["通知 c1"]
    assert any(r.levelno == logging.ERROR and "wechat quota" in r.getMessage() for r in caplog.records)
    first, second = await row(sessions, "k1"), await row(sessions, "k2")
    assert (first.status, first.attempts) == ("pending", 0)  # the attempt is given back
    assert first.next_attempt_at == clock.dt() + timedelta(hours=1)
    assert (second.status, second.attempts) == ("pending", 0)
    await put(sessions, clock, "c2", channel="wecom")
    clock.advance(3599)
    assert await w.run_once() == 1
    assert wecom.sent == ["通知 c1", "通知 c2"]
    assert wx.fake.messages == []
    clock.advance(1)
    assert await w.run_once() == 2
    assert sorted(m["content"] for m in wx.fake.messages) == ["通知 k1", "通知 k2"]


# --- crashes and concurrency ---------------------------------------------------------------------


class Dies:
    """Delivers (or not) and then never returns: the process dies with the request's outcome unrecorded."""

    def __init__(self, inner: Sender, *, after_delivery: bool) -> None:
        self.inner = inner
        self.after_delivery = after_delivery
        self.reached = asyncio.Event()

    async def send(self, message: OutboxMessage) -> None:
        if self.after_delivery:
            await self.inner.send(message)
        self.reached.set()
        await asyncio.Event().wait()


@pytest.mark.parametrize("after_delivery", [True, False])
async def test_a_crash_mid_send_resends_once_after_the_lease(
    after_delivery: bool,
    sessions: Sessions,
    sender: Sender,
    clock: Clock,
    wx: FakeServer,
    database_url: str,
) -> None:
    await put(sessions, clock, "k", text="请于今日 18 点前处理")
    dying = Dies(sender, after_delivery=after_delivery)
    first = asyncio.create_task(worker(sessions, dying, clock, lease=30).run_once())
    await asyncio.wait_for(dying.reached.wait(), 5)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    delivered_before = len(wx.fake.messages)
    assert delivered_before == (1 if after_delivery else 0)
    claimed = await row(sessions, "k")
    assert (claimed.status, claimed.attempts) == ("pending", 1)

    restarted_engine = create_engine(database_url)  # a new process: its own engine and worker
    try:
        restarted = worker(session_factory(restarted_engine), sender, clock, lease=30)
        assert await restarted.run_once() == 0  # the lease still holds
        clock.advance(29.9)
        assert await restarted.run_once() == 0
        clock.advance(0.1)
        assert await restarted.run_once() == 1
        clock.advance(86400)
        assert await restarted.run_once() == 0
    finally:
        await restarted_engine.dispose()
    assert [m["content"] for m in wx.fake.messages] == ["请于今日 18 点前处理"] * (delivered_before + 1)
    done = await row(sessions, "k")
    assert (done.status, done.attempts) == ("sent", 2)


async def test_a_recorded_send_is_never_sent_again(
    sessions: Sessions, sender: Sender, clock: Clock, wx: FakeServer, database_url: str
) -> None:
    await put(sessions, clock, "k")
    assert await worker(sessions, sender, clock).run_once() == 1
    for _ in range(3):  # restarts, days apart
        clock.advance(86400)
        engine = create_engine(database_url)
        try:
            assert await worker(session_factory(engine), sender, clock).run_once() == 0
        finally:
            await engine.dispose()
    assert len(wx.fake.messages) == 1 and wx.fake.send_requests == 1


class Slow:
    """Yields to the other worker around every send, so two workers interleave."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner
        self.sent: list[str] = []

    async def send(self, message: OutboxMessage) -> None:
        await asyncio.sleep(0.002)
        await self.inner.send(message)
        self.sent.append(message.send_key)


async def test_two_workers_never_send_the_same_message_twice(
    backend: str,
    sessions: Sessions,
    http: aiohttp.ClientSession,
    wx: FakeServer,
    state: StateStore,
    clock: Clock,
    database_url: str,
) -> None:
    keys = [f"k{i:02d}" for i in range(40)]
    for key in keys:
        await put(sessions, clock, key, to=f"o{key}")
    other_engine = create_engine(database_url)
    try:
        one = Slow(WeChatSender(make_api(http, wx, state)))
        two = Slow(WeChatSender(make_api(http, wx, state)))
        counts = await asyncio.gather(
            worker(sessions, one, clock).run_once(),
            worker(session_factory(other_engine), two, clock).run_once(),
        )
    finally:
        await other_engine.dispose()
    assert sum(counts) == 40
    assert sorted(one.sent + two.sent) == keys
    assert sorted(m["content"] for m in wx.fake.messages) == [f"通知 {key}" for key in keys]
    assert wx.fake.token_fetches == 1  # and the two clients shared one token
    async with sessions() as session:
        rows = (await session.scalars(select(OutboxMessage))).all()
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}
    if backend == "server":
        assert min(counts) > 0, counts


class Flaky:
    """Raises a plain bug the first time, then delivers."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner
        self.calls = 0

    async def send(self, message: OutboxMessage) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("a bug in a sender")
        await self.inner.send(message)


class BrokenOnce:
    """A session factory whose first use fails, like a database that is briefly down."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self.broken = True

    def __call__(self) -> AsyncSession:
        if self.broken:
            self.broken = False
            raise ConnectionError("database unavailable")
        return self.sessions()


async def test_run_loop_wakes_on_demand_survives_errors_and_stops(
    sessions: Sessions, sender: Sender, clock: Clock, wx: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = Flaky(sender)
    broken = BrokenOnce(sessions)
    w = worker(broken, flaky, clock, poll_interval=60)  # type: ignore[arg-type]
    loop = asyncio.create_task(w.run())
    await eventually(lambda: not broken.broken)  # the first pass failed on the database and was logged
    assert any("outbox pass failed" in r.getMessage() for r in caplog.records)
    await put(sessions, clock, "k")
    w.wake()
    await eventually(lambda: flaky.calls == 1)  # the sender raised; the message waits for its backoff
    await eventually(lambda: any("unexpected error" in r.getMessage() for r in caplog.records))
    assert not loop.done()
    clock.advance(5)
    w.wake()
    await eventually(lambda: len(wx.fake.messages) == 1)
    w.stop()  # finishes the message in flight, its outcome recorded, before `run()` returns
    await asyncio.wait_for(loop, 1)
    assert (await row(sessions, "k")).status == "sent"


class Hangs:
    async def send(self, message: OutboxMessage) -> None:
        await asyncio.Event().wait()


async def test_a_send_is_cut_off_before_the_lease_lapses(sessions: Sessions, clock: Clock) -> None:
    await put(sessions, clock, "k")
    assert await worker(sessions, Hangs(), clock, lease=0.05).run_once() == 1
    waiting = await row(sessions, "k")
    assert (waiting.status, waiting.attempts, waiting.last_error) == ("pending", 1, "send timed out")
    assert waiting.next_attempt_at == clock.dt() + timedelta(seconds=3.75)  # the retry, not the lease


async def test_template_messages_go_through_the_worker(
    sessions: Sessions, sender: Sender, clock: Clock, wx: FakeServer
) -> None:
    data = {"first": {"value": "工单 #9 已逾期"}}
    await put(sessions, clock, "t1", kind="template", payload={"template_id": "TPL", "data": data})
    await put(sessions, clock, "t2", kind="template", payload={"data": data})
    assert await worker(sessions, sender, clock).run_once() == 2
    assert [(m["api"], m["content"]) for m in wx.fake.messages] == [("template", "first: 工单 #9 已逾期")]
    assert (await row(sessions, "t1")).status == "sent"
    assert (await row(sessions, "t2")).status == "failed"
