"""Short-lived shared state: dedupe keys, leases, pending questions, rate limits, access tokens,
and small records with a lifetime (the dashboard's server-side sessions).

One small protocol (`StateStore`) with two backends: `MemoryState` for a single process (the embedded
default and tests) and `RedisState` for several workers. Everything here expires; nothing here is a
record of truth (that lives in the database).

Rate limits are a *sliding log*: a hit is allowed when fewer than `limit` allowed hits happened in the
last `window` seconds. Refused hits are not recorded, so a user hammering the bot is let through again
as soon as the oldest allowed hit leaves the window.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import math
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["LockBusy", "MemoryState", "RedisState", "StateStore", "open_state"]


class LockBusy(TimeoutError):
    """Someone else held the lock longer than the caller would wait."""


def _check_ttl(ttl: float, name: str = "ttl") -> None:
    if not ttl > 0:  # also rejects NaN
        raise ValueError(f"{name} must be > 0 seconds, got {ttl!r}")


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit!r}")


def _dump(question: dict[str, Any]) -> str:
    return json.dumps(question, ensure_ascii=False, separators=(",", ":"))


class StateStore(abc.ABC):
    """What the bot needs from short-lived shared state. All TTLs and windows are in seconds."""

    @abc.abstractmethod
    async def add_once(self, key: str, ttl: float) -> bool:
        """True if this call created `key` (it did not exist or had expired); False for a repeat."""

    @abc.abstractmethod
    async def acquire(self, key: str, owner: str, ttl: float) -> bool:
        """Take the lease `key` for `owner` for `ttl` seconds.

        True if it was free or already held by `owner` (then its TTL is renewed: call again to extend).
        Use an owner token unique to the holder, e.g. a uuid per worker task.
        """

    @abc.abstractmethod
    async def release(self, key: str, owner: str) -> None:
        """Drop the lease if `owner` holds it; otherwise do nothing."""

    @abc.abstractmethod
    async def get_pending(self, user: str) -> dict[str, Any] | None:
        """The question `user` is expected to answer, or None."""

    @abc.abstractmethod
    async def set_pending(self, user: str, question: dict[str, Any], ttl: float) -> None:
        """Store a JSON-able dict as `user`'s pending question, replacing any earlier one."""

    @abc.abstractmethod
    async def clear_pending(self, user: str) -> None:
        """Forget `user`'s pending question."""

    @abc.abstractmethod
    async def allow(self, user: str, limit: int, window: float) -> bool:
        """True if this hit is allowed: fewer than `limit` allowed hits in the last `window` seconds."""

    async def admit(self, user: str, limit: int, window: float) -> tuple[bool, dict[str, Any] | None]:
        """`allow` and `get_pending` together: what a message needs first (Redis: one round trip)."""
        return await self.allow(user, limit, window), await self.get_pending(user)

    @abc.abstractmethod
    async def put_record(self, key: str, record: dict[str, Any], ttl: float) -> None:
        """Keep a JSON-able dict under `key` for `ttl` seconds, replacing any earlier one."""

    @abc.abstractmethod
    async def get_record(self, key: str) -> dict[str, Any] | None:
        """The record under `key`, or None once it expired or was deleted."""

    @abc.abstractmethod
    async def delete_record(self, key: str) -> None:
        """Forget the record under `key` (nothing happens when there is none)."""

    @abc.abstractmethod
    async def get_token(self, app: str) -> str | None:
        """The cached access token for `app`, or None."""

    @abc.abstractmethod
    async def set_token(self, app: str, token: str, ttl: float) -> None:
        """Cache `app`'s access token for `ttl` seconds."""

    @abc.abstractmethod
    async def delete_token(self, app: str) -> None:
        """Drop `app`'s cached token (after 40001 / 42001 it is stale)."""

    @abc.abstractmethod
    def hold(
        self, key: str, *, ttl: float = 30.0, wait: float = 10.0
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the lock `key` for the block: callers with the same key run one after the other, across
        processes with Redis. Waits up to `wait` seconds (then `LockBusy`); a holder that dies frees it
        after `ttl`. Nothing of the lock remains once it is released."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """Health check: True if the store answers. Never raises."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release what the store opened."""


class MemoryState(StateStore):
    """In-process state for one event loop (not thread-safe; each method runs without awaiting).

    Every entry carries a deadline on `clock`. Expired entries are dropped when touched, and all of
    them are swept once the writes since the last sweep reach what the sweep left (at least
    `purge_every`): memory stays within about twice the live entries, at amortised O(1) per write.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, purge_every: int = 1024) -> None:
        self._clock = clock
        self._purge_every = max(1, purge_every)
        self._writes = 0
        self._next_purge = self._purge_every
        # namespaced key -> (deadline, value); rate entries hold a deque of hit times
        self._data: dict[str, tuple[float, Any]] = {}
        # held locks: key -> (lock, how many hold or wait for it); an entry goes when the last one leaves
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @property
    def locks_held(self) -> int:
        """Keys with a holder or a waiter (0 when nobody is handling anything)."""
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: str, *, ttl: float = 30.0, wait: float = 10.0) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            try:
                async with asyncio.timeout(wait):
                    await lock.acquire()
            except TimeoutError:
                raise LockBusy(key) from None
            try:
                yield
            finally:
                lock.release()
        finally:
            held, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (held, users - 1)

    def __len__(self) -> int:
        """Entries held, including expired ones not yet purged."""
        return len(self._data)

    def purge(self) -> int:
        """Drop every expired entry now; return how many were dropped."""
        now = self._clock()
        dead = [k for k, (deadline, _) in self._data.items() if deadline <= now]
        for k in dead:
            del self._data[k]
        self._writes = 0
        self._next_purge = max(self._purge_every, len(self._data))
        return len(dead)

    def _get(self, key: str) -> Any | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._data[key]
            return None
        return entry[1]

    def _put(self, key: str, value: Any, ttl: float) -> None:
        self._data[key] = (self._clock() + ttl, value)
        self._writes += 1
        if self._writes >= self._next_purge:
            self.purge()

    async def add_once(self, key: str, ttl: float) -> bool:
        _check_ttl(ttl)
        k = f"once:{key}"
        if self._get(k) is not None:
            return False
        self._put(k, True, ttl)
        return True

    async def acquire(self, key: str, owner: str, ttl: float) -> bool:
        _check_ttl(ttl)
        k = f"lease:{key}"
        holder = self._get(k)
        if holder is not None and holder != owner:
            return False
        self._put(k, owner, ttl)
        return True

    async def release(self, key: str, owner: str) -> None:
        k = f"lease:{key}"
        if self._get(k) == owner:
            del self._data[k]

    async def get_pending(self, user: str) -> dict[str, Any] | None:
        raw = self._get(f"pending:{user}")
        return None if raw is None else json.loads(raw)

    async def set_pending(self, user: str, question: dict[str, Any], ttl: float) -> None:
        _check_ttl(ttl)
        # stored as JSON, like Redis: same failures for non-JSON values, and no aliasing of the caller's dict
        self._put(f"pending:{user}", _dump(question), ttl)

    async def clear_pending(self, user: str) -> None:
        self._data.pop(f"pending:{user}", None)

    async def allow(self, user: str, limit: int, window: float) -> bool:
        _check_limit(limit)
        _check_ttl(window, "window")
        k = f"rate:{user}"
        now = self._clock()
        hits: deque[float] | None = self._get(k)
        if hits is None:
            hits = deque()
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= limit:
            return False
        hits.append(now)
        self._put(k, hits, window)  # the entry lives as long as its newest hit counts
        return True

    async def put_record(self, key: str, record: dict[str, Any], ttl: float) -> None:
        _check_ttl(ttl)
        self._put(f"record:{key}", _dump(record), ttl)

    async def get_record(self, key: str) -> dict[str, Any] | None:
        raw = self._get(f"record:{key}")
        return None if raw is None else json.loads(raw)

    async def delete_record(self, key: str) -> None:
        self._data.pop(f"record:{key}", None)

    async def get_token(self, app: str) -> str | None:
        token: str | None = self._get(f"token:{app}")
        return token

    async def set_token(self, app: str, token: str, ttl: float) -> None:
        _check_ttl(ttl)
        self._put(f"token:{app}", token, ttl)

    async def delete_token(self, app: str) -> None:
        self._data.pop(f"token:{app}", None)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()


# KEYS[1] lease key; ARGV[1] owner, ARGV[2] ttl ms. Take the lease if free, renew it if ours.
_ACQUIRE_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS[1] lease key; ARGV[1] owner. Compare-and-delete so a late worker never frees someone else's lease.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1] sorted set of allowed hits (score = server time in ms); ARGV[1] limit, ARGV[2] window ms,
# ARGV[3] unique member. Server time, so workers with skewed clocks share one window.
_RATE_LUA = """
local function allow(key, limit, window, member)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    return 0
  end
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  return 1
end
"""
_ALLOW_LUA = _RATE_LUA + "return allow(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])\n"
# The rate limit and the pending question in one call (a script inside a pipeline would cost an extra
# SCRIPT EXISTS round trip every time).
_ADMIT_LUA = (
    _RATE_LUA
    + """
local allowed = allow(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
local pending = redis.call('GET', KEYS[2])
if pending then
  return {allowed, pending}
end
return {allowed}
"""
)


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


CONNECT_TIMEOUT = 5.0  # seconds for one TCP connect to Redis


class RedisState(StateStore):
    """State shared by every worker through Redis. All keys live under `prefix`; TTLs are sent in ms.

    Works with or without `decode_responses`. `close()` closes the client only if `from_url` made it.
    """

    def __init__(
        self, client: aioredis.Redis, prefix: str = "gridbot:", *, ping_timeout: float = 2.0
    ) -> None:
        self.client = client
        self.prefix = prefix
        self._ping_timeout = ping_timeout
        self._owns_client = False
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._release = client.register_script(_RELEASE_LUA)
        self._allow = client.register_script(_ALLOW_LUA)
        self._admit = client.register_script(_ADMIT_LUA)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "gridbot:", ping_timeout: float = 2.0) -> RedisState:
        """A store over a new client for `url`; `close()` closes that client.

        A command whose connection drops or times out is tried again three times with a short backoff,
        so a busy host or a Redis restart does not lose a resident's message; `ping` stays bounded.
        """
        client = aioredis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        store = cls(client, prefix, ping_timeout=ping_timeout)
        store._owns_client = True
        return store

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    @contextlib.asynccontextmanager
    async def hold(self, key: str, *, ttl: float = 30.0, wait: float = 10.0) -> AsyncIterator[None]:
        # redis-py's lock: SET NX PX with a token of its own, released by a script that checks the token.
        lock = self.client.lock(self._key("lock", key), timeout=ttl, sleep=0.01, blocking_timeout=wait)
        if not await lock.acquire():
            raise LockBusy(key)
        try:
            yield
        finally:
            with contextlib.suppress(LockError):  # it expired meanwhile: nothing left to release
                await lock.release()

    async def add_once(self, key: str, ttl: float) -> bool:
        _check_ttl(ttl)
        return bool(await self.client.set(self._key("once", key), "1", px=_ms(ttl), nx=True))

    async def acquire(self, key: str, owner: str, ttl: float) -> bool:
        _check_ttl(ttl)
        return bool(await self._acquire(keys=[self._key("lease", key)], args=[owner, _ms(ttl)]))

    async def release(self, key: str, owner: str) -> None:
        await self._release(keys=[self._key("lease", key)], args=[owner])

    async def get_pending(self, user: str) -> dict[str, Any] | None:
        raw = _text(await self.client.get(self._key("pending", user)))
        return None if raw is None else json.loads(raw)

    async def set_pending(self, user: str, question: dict[str, Any], ttl: float) -> None:
        _check_ttl(ttl)
        await self.client.set(self._key("pending", user), _dump(question), px=_ms(ttl))

    async def clear_pending(self, user: str) -> None:
        await self.client.delete(self._key("pending", user))

    async def allow(self, user: str, limit: int, window: float) -> bool:
        _check_limit(limit)
        _check_ttl(window, "window")
        args = [limit, _ms(window), uuid.uuid4().hex]
        return bool(await self._allow(keys=[self._key("rate", user)], args=args))

    async def admit(self, user: str, limit: int, window: float) -> tuple[bool, dict[str, Any] | None]:
        _check_limit(limit)
        _check_ttl(window, "window")
        args = [limit, _ms(window), uuid.uuid4().hex]
        reply = await self._admit(keys=[self._key("rate", user), self._key("pending", user)], args=args)
        pending = _text(reply[1]) if len(reply) > 1 else None
        return bool(reply[0]), None if pending is None else json.loads(pending)

    async def put_record(self, key: str, record: dict[str, Any], ttl: float) -> None:
        _check_ttl(ttl)
        await self.client.set(self._key("record", key), _dump(record), px=_ms(ttl))

    async def get_record(self, key: str) -> dict[str, Any] | None:
        raw = _text(await self.client.get(self._key("record", key)))
        return None if raw is None else json.loads(raw)

    async def delete_record(self, key: str) -> None:
        await self.client.delete(self._key("record", key))

    async def get_token(self, app: str) -> str | None:
        return _text(await self.client.get(self._key("token", app)))

    async def set_token(self, app: str, token: str, ttl: float) -> None:
        _check_ttl(ttl)
        await self.client.set(self._key("token", app), token, px=_ms(ttl))

    async def delete_token(self, app: str) -> None:
        await self.client.delete(self._key("token", app))

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self._ping_timeout):
                return bool(await self.client.ping())
        except Exception:  # health check: any failure (refused, timeout, auth, protocol) means "down"
            return False

    async def close(self) -> None:
        if self._owns_client:
            await self.client.aclose()


def open_state(redis_url: str, *, prefix: str = "gridbot:") -> StateStore:
    """MemoryState for an empty URL, else a RedisState on `redis_url`."""
    if not redis_url:
        return MemoryState()
    return RedisState.from_url(redis_url, prefix=prefix)
