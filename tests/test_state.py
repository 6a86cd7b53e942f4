"""The state store contract, run over MemoryState (fake clock) and RedisState (real Redis, short TTLs)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from storage.state import LockBusy, MemoryState, RedisState, StateStore, open_state

Advance = Callable[[float], Awaitable[None]]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryState(clock=clock)
        return
    redis_url: str = request.getfixturevalue("redis_url")
    prefix = f"gridbot-test-{uuid.uuid4().hex}:"
    redis_store = RedisState.from_url(redis_url, prefix=prefix)
    try:
        yield redis_store
    finally:
        keys = [k async for k in redis_store.client.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis_store.client.delete(*keys)
        await redis_store.close()


@pytest.fixture
def advance(store: StateStore, clock: FakeClock) -> Advance:
    """Let `seconds` pass: the fake clock for memory, a real sleep for Redis (its TTLs run on the server)."""

    async def _advance(seconds: float) -> None:
        if isinstance(store, MemoryState):
            clock.now += seconds
        else:
            await asyncio.sleep(seconds)

    return _advance


class TestStateStore:
    async def test_admit_counts_a_hit_and_reads_the_pending_question(self, store: StateStore) -> None:
        assert await store.admit("oU", 2, 60) == (True, None)
        await store.set_pending("oU", {"ask": "place", "text": "路灯坏了"}, 60)
        assert await store.admit("oU", 2, 60) == (True, {"ask": "place", "text": "路灯坏了"})
        assert await store.admit("oU", 2, 60) == (False, {"ask": "place", "text": "路灯坏了"})
        assert await store.allow("oU", 2, 60) is False  # admit's hits count towards the same limit
        assert await store.admit("oOther", 2, 60) == (True, None)

    async def test_add_once_first_second_and_after_expiry(self, store: StateStore, advance: Advance) -> None:
        assert await store.add_once("msg:1", 0.2) is True
        assert await store.add_once("msg:1", 0.2) is False
        assert await store.add_once("msg:2", 0.2) is True  # keys are independent
        await advance(0.3)
        assert await store.add_once("msg:1", 0.2) is True

    async def test_add_once_concurrent_exactly_one_wins(self, store: StateStore) -> None:
        results = await asyncio.gather(*(store.add_once("msg:race", 10) for _ in range(20)))
        assert results.count(True) == 1
        assert results.count(False) == 19

    async def test_add_once_rejects_non_positive_ttl(self, store: StateStore) -> None:
        with pytest.raises(ValueError):
            await store.add_once("msg:bad", 0)

    async def test_lease_only_owner_releases(self, store: StateStore) -> None:
        assert await store.acquire("order:7", "worker-a", 10) is True
        assert await store.acquire("order:7", "worker-b", 10) is False
        await store.release("order:7", "worker-b")  # not the owner: no effect
        assert await store.acquire("order:7", "worker-b", 10) is False
        await store.release("order:7", "worker-a")
        assert await store.acquire("order:7", "worker-b", 10) is True
        await store.release("order:never-taken", "worker-a")  # releasing a free lease is a no-op

    async def test_lease_expires_and_stale_owner_cannot_release(
        self, store: StateStore, advance: Advance
    ) -> None:
        assert await store.acquire("order:8", "worker-a", 0.2) is True
        await advance(0.3)
        assert await store.acquire("order:8", "worker-b", 10) is True
        await store.release("order:8", "worker-a")  # a's lease expired; b's must survive
        assert await store.acquire("order:8", "worker-c", 10) is False

    async def test_lease_reacquire_by_owner_extends(self, store: StateStore, advance: Advance) -> None:
        assert await store.acquire("order:9", "worker-a", 0.3) is True
        await advance(0.2)
        assert await store.acquire("order:9", "worker-a", 0.3) is True
        await advance(0.2)  # past the first deadline, inside the renewed one
        assert await store.acquire("order:9", "worker-b", 0.3) is False
        await advance(0.2)
        assert await store.acquire("order:9", "worker-b", 0.3) is True

    async def test_record_roundtrip_replace_delete_and_expiry(
        self, store: StateStore, advance: Advance
    ) -> None:
        assert await store.get_record("session:a") is None
        await store.put_record("session:a", {"openid": "oAdmin", "csrf": "x1", "名": "黄敏"}, 0.3)
        assert await store.get_record("session:a") == {"openid": "oAdmin", "csrf": "x1", "名": "黄敏"}
        assert await store.get_record("session:b") is None
        await store.put_record("session:a", {"openid": "oOther"}, 0.3)  # replaces
        assert await store.get_record("session:a") == {"openid": "oOther"}
        await store.delete_record("session:a")
        assert await store.get_record("session:a") is None
        await store.delete_record("session:never")  # no record: nothing happens
        await store.put_record("session:c", {"n": 1}, 0.2)
        await advance(0.3)
        assert await store.get_record("session:c") is None
        with pytest.raises(ValueError):
            await store.put_record("session:d", {"n": 1}, 0)

    async def test_records_do_not_collide_with_pending_questions(self, store: StateStore) -> None:
        await store.put_record("u1", {"kind": "record"}, 10)
        await store.set_pending("u1", {"kind": "pending"}, 10)
        assert await store.get_record("u1") == {"kind": "record"}
        record = {"list": [1]}
        await store.put_record("u2", record, 10)
        record["list"].append(2)  # the store keeps a copy
        assert await store.get_record("u2") == {"list": [1]}

    async def test_pending_roundtrip_with_chinese_text(self, store: StateStore) -> None:
        question = {"ask": "请问具体在几号楼？", "order": 42, "options": ["是", "否"], "meta": {"x": None}}
        assert await store.get_pending("wx-user") is None
        await store.set_pending("wx-user", question, 10)
        assert await store.get_pending("wx-user") == question
        assert await store.get_pending("other-user") is None
        await store.set_pending("wx-user", {"ask": "满意吗？"}, 10)  # replaces the earlier question
        assert await store.get_pending("wx-user") == {"ask": "满意吗？"}
        await store.clear_pending("wx-user")
        assert await store.get_pending("wx-user") is None
        await store.clear_pending("wx-user")  # clearing twice is fine

    async def test_pending_is_a_copy(self, store: StateStore) -> None:
        question = {"ask": "几号楼？", "tries": 1}
        await store.set_pending("u", question, 10)
        question["tries"] = 99
        got = await store.get_pending("u")
        assert got == {"ask": "几号楼？", "tries": 1}
        assert got is not None
        got["tries"] = 5
        assert await store.get_pending("u") == {"ask": "几号楼？", "tries": 1}

    async def test_pending_rejects_non_json(self, store: StateStore) -> None:
        with pytest.raises(TypeError):
            await store.set_pending("u", {"when": object()}, 10)
        assert await store.get_pending("u") is None

    async def test_pending_expires(self, store: StateStore, advance: Advance) -> None:
        await store.set_pending("wx-user", {"ask": "几号楼？"}, 0.2)
        assert await store.get_pending("wx-user") == {"ask": "几号楼？"}
        await advance(0.3)
        assert await store.get_pending("wx-user") is None

    async def test_rate_limit_allows_limit_then_refuses_then_recovers(
        self, store: StateStore, advance: Advance
    ) -> None:
        assert [await store.allow("u1", 3, 0.2) for _ in range(5)] == [True, True, True, False, False]
        assert await store.allow("u2", 3, 0.2) is True  # per user
        await advance(0.3)
        assert [await store.allow("u1", 3, 0.2) for _ in range(4)] == [True, True, True, False]

    async def test_rate_limit_is_sliding(self, store: StateStore, advance: Advance) -> None:
        assert await store.allow("u", 2, 0.4) is True
        await advance(0.25)
        assert await store.allow("u", 2, 0.4) is True
        assert await store.allow("u", 2, 0.4) is False
        await advance(0.25)  # the first hit left the window, the second still counts
        assert await store.allow("u", 2, 0.4) is True
        assert await store.allow("u", 2, 0.4) is False

    async def test_rate_limit_concurrent_hits(self, store: StateStore) -> None:
        results = await asyncio.gather(*(store.allow("burst", 5, 10) for _ in range(20)))
        assert results.count(True) == 5

    async def test_rate_limit_rejects_bad_arguments(self, store: StateStore) -> None:
        with pytest.raises(ValueError):
            await store.allow("u", 0, 1)
        with pytest.raises(ValueError):
            await store.allow("u", 1, 0)

    async def test_token_set_get_delete(self, store: StateStore) -> None:
        assert await store.get_token("wx-app") is None
        await store.set_token("wx-app", "TOKEN-1", 7200)
        assert await store.get_token("wx-app") == "TOKEN-1"
        assert await store.get_token("wecom-app") is None
        await store.set_token("wx-app", "TOKEN-2", 7200)
        assert await store.get_token("wx-app") == "TOKEN-2"
        await store.delete_token("wx-app")
        assert await store.get_token("wx-app") is None
        await store.delete_token("wx-app")  # deleting a missing token is fine

    async def test_token_expires(self, store: StateStore, advance: Advance) -> None:
        await store.set_token("wx-app", "TOKEN", 0.2)
        assert await store.get_token("wx-app") == "TOKEN"
        await advance(0.3)
        assert await store.get_token("wx-app") is None

    async def test_kinds_do_not_collide(self, store: StateStore) -> None:
        assert await store.add_once("x", 10) is True
        assert await store.acquire("x", "owner", 10) is True
        await store.set_token("x", "T", 10)
        await store.set_pending("x", {"a": 1}, 10)
        assert await store.allow("x", 1, 10) is True
        assert await store.get_token("x") == "T"
        assert await store.get_pending("x") == {"a": 1}

    async def test_hold_runs_one_holder_of_a_key_at_a_time(self, store: StateStore) -> None:
        inside: list[str] = []
        overlaps = 0

        async def work(name: str, key: str) -> None:
            nonlocal overlaps
            async with store.hold(key):
                overlaps += any(k == key for k in inside)
                inside.append(key)
                await asyncio.sleep(0.02)
                inside.remove(key)

        await asyncio.gather(*(work(f"w{i}", "person:a") for i in range(5)), work("other", "person:b"))
        assert overlaps == 0 and inside == []

    async def test_hold_lets_different_keys_run_together(self, store: StateStore) -> None:
        started = time.monotonic()

        async def work(key: str) -> None:
            async with store.hold(key):
                await asyncio.sleep(0.1)

        await asyncio.gather(*(work(f"person:{i}") for i in range(5)))
        assert time.monotonic() - started < 0.4  # not five times 0.1 s

    async def test_hold_gives_up_after_its_wait(self, store: StateStore) -> None:
        async with store.hold("person:slow"):
            with pytest.raises(LockBusy):
                async with store.hold("person:slow", wait=0.05):
                    pass
        async with store.hold("person:slow", wait=0.05):  # free again once released
            pass

    async def test_hold_leaves_nothing_behind(self, store: StateStore) -> None:
        for i in range(200):
            async with store.hold(f"person:{i}"):
                pass
        if isinstance(store, MemoryState):
            assert store.locks_held == 0 and len(store) == 0
        else:
            assert isinstance(store, RedisState)
            assert [k async for k in store.client.scan_iter(match=f"{store.prefix}lock:*")] == []

    async def test_ping(self, store: StateStore) -> None:
        assert await store.ping() is True


class TestMemoryState:
    async def test_expired_entries_are_purged_without_being_touched(self, clock: FakeClock) -> None:
        store = MemoryState(clock=clock, purge_every=8)
        for i in range(50):
            await store.add_once(f"msg:{i}", 1)
            await store.set_pending(f"user-{i}", {"ask": "?"}, 1)
            await store.allow(f"user-{i}", 3, 1)
        assert len(store) == 150
        clock.now += 2
        # new traffic only (one key rewritten); none of the 150 old keys is read again
        for i in range(150):
            await store.set_token("app", f"T{i}", 100)
        assert len(store) == 1
        assert await store.get_token("app") == "T149"

    async def test_memory_stays_bounded_with_many_one_off_users(self, clock: FakeClock) -> None:
        store = MemoryState(clock=clock, purge_every=16)
        peak = 0
        for i in range(2000):
            await store.allow(f"user-{i}", 5, 1)
            clock.now += 0.1  # about 10 users are live at any moment
            peak = max(peak, len(store))
        assert peak <= 64

    async def test_purge_and_touch(self, clock: FakeClock) -> None:
        store = MemoryState(clock=clock)
        await store.set_token("a", "T", 1)
        await store.set_token("b", "T", 5)
        await store.acquire("lease", "w", 1)
        clock.now += 2
        assert len(store) == 3
        assert await store.get_token("a") is None  # touching an expired entry drops it
        assert len(store) == 2
        assert store.purge() == 1
        assert len(store) == 1
        assert await store.get_token("b") == "T"

    async def test_refused_hits_do_not_extend_the_window(self, clock: FakeClock) -> None:
        store = MemoryState(clock=clock)
        assert await store.allow("u", 1, 10) is True
        clock.now += 9
        assert await store.allow("u", 1, 10) is False
        clock.now += 1
        assert await store.allow("u", 1, 10) is True


class TestRedisState:
    async def test_ping_false_on_closed_port_without_raising(self) -> None:
        store = RedisState.from_url("redis://127.0.0.1:1/0")
        started = time.perf_counter()
        assert await store.ping() is False
        assert time.perf_counter() - started < 2
        await store.close()

    async def test_keys_live_under_the_prefix_with_ms_ttls(self, redis_url: str) -> None:
        prefix = f"gridbot-test-{uuid.uuid4().hex}:"
        store = RedisState.from_url(redis_url, prefix=prefix)
        try:
            await store.add_once("m1", 0.5)
            await store.acquire("o1", "w", 10)
            await store.set_pending("u1", {"ask": "几号楼？"}, 10)
            await store.allow("u1", 3, 10)
            await store.set_token("app", "T", 10)
            keys = sorted([k async for k in store.client.scan_iter(match=f"{prefix}*")])
            assert keys == [
                f"{prefix}{kind}" for kind in ("lease:o1", "once:m1", "pending:u1", "rate:u1", "token:app")
            ]
            assert 0 < await store.client.pttl(f"{prefix}once:m1") <= 500
            # stored as readable UTF-8 JSON, not \\u escapes
            assert await store.client.get(f"{prefix}pending:u1") == '{"ask":"几号楼？"}'
        finally:
            keys = [k async for k in store.client.scan_iter(match=f"{prefix}*")]
            if keys:
                await store.client.delete(*keys)
            await store.close()

    async def test_a_dropped_connection_is_tried_again(self, redis_url: str) -> None:
        """Redis restarting (or a busy host) drops the first connection: the command still goes through."""
        target = aioredis.from_url(redis_url).connection_pool.connection_kwargs
        dropped = 0
        links: list[asyncio.StreamWriter] = []

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal dropped
            if not dropped:
                dropped += 1
                writer.close()
                return
            up_reader, up_writer = await asyncio.open_connection(target["host"], target["port"])
            links.extend((writer, up_writer))
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
        port = proxy.sockets[0].getsockname()[1]
        store = RedisState.from_url(
            f"redis://127.0.0.1:{port}/{target.get('db', 0)}", prefix=f"t-{uuid.uuid4().hex}:"
        )
        try:
            await store.set_token("app", "T", 10)
            assert await store.get_token("app") == "T"
            assert dropped == 1
            await store.delete_token("app")
        finally:
            await store.close()
            for writer in links:
                writer.close()
            proxy.close()
            await proxy.wait_closed()

    async def test_injected_client_is_not_closed(self, redis_url: str) -> None:
        client = aioredis.from_url(redis_url)  # bytes responses: the store must decode them
        prefix = f"gridbot-test-{uuid.uuid4().hex}:"
        store = RedisState(client, prefix=prefix)
        try:
            await store.set_token("app", "T", 10)
            assert await store.get_token("app") == "T"
            await store.set_pending("u", {"ask": "满意吗？"}, 10)
            assert await store.get_pending("u") == {"ask": "满意吗？"}
            await store.close()
            assert await client.ping() is True
        finally:
            await client.delete(f"{prefix}token:app", f"{prefix}pending:u")
            await client.aclose()


async def test_open_state_picks_the_backend() -> None:
    assert isinstance(open_state(""), MemoryState)
    store = open_state("redis://127.0.0.1:1/0", prefix="p:")  # connects lazily: no server needed
    assert isinstance(store, RedisState)
    assert store.prefix == "p:"
    await store.close()
