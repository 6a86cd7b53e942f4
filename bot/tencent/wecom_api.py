"""Our small async client for the WeCom (企业微信) self-built app, and the outbox sender that uses it.

Staff who have a `wecom_userid` get their notices as app messages (`/cgi-bin/message/send`). It mirrors
`bot.tencent.wechat_api`: one token per corp id + agent, cached in the state store and fetched by one process at
a time under a lease; a stale token (40001 / 40014 / 42001) is refreshed once and the call retried once;
errors map onto the same exception classes, so the outbox worker treats both channels alike.

Every text goes out with `enable_duplicate_check`: WeCom drops a message identical to one sent to the same
member within `duplicate_check_interval`, which closes the outbox's resend window (a worker that died after
WeCom accepted a message and before recording it sends it again; WeCom does not deliver it twice).

As in `bot.tencent.wechat_api`, the token and the secret travel only in query strings, and never reach a log line
or an exception message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

from bot.tencent.wechat_api import (
    BUSY_ERROR,
    TOKEN_MARGIN,
    Retryable,
    SendRejected,
    TencentTransport,
    TokenError,
    _errcode,
)
from storage.models import OutboxMessage
from storage.state import StateStore

log = logging.getLogger(__name__)

__all__ = ["MAX_TEXT_BYTES", "WeComAPI", "WeComSender", "cap_text"]

MAX_TEXT_BYTES = 2048  # WeCom truncates longer app-message texts; we cut them ourselves, visibly
DUPLICATE_CHECK_INTERVAL = 1800  # seconds; longer than any resend after a lease lapses
CONCURRENCY_ERROR = 45033  # WeCom: too many concurrent calls — try again later
PER_MEMBER_LIMIT = 30  # app messages a minute per member; WeCom silently drops the rest
PER_MEMBER_WINDOW = 60.0


def cap_text(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """`text` cut to `limit` UTF-8 bytes (ending in "…" when cut), never splitting a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[: limit - len("…".encode())].decode("utf-8", errors="ignore") + "…"


class WeComAPI(TencentTransport):
    """App messages for one WeCom self-built app (corp id + agent id)."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        api_base: str,
        corp_id: str,
        secret: str,
        agent_id: int,
        state: StateStore,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(http, api_base, state, clock, timeout)
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._secret = secret
        # Each app of a corp has its own secret and therefore its own token.
        self.token_key = f"wecom:{corp_id}:{agent_id}"
        self.lease_key = f"wecom-token:{corp_id}:{agent_id}"
        self.name = "wecom"
        self.retryable = frozenset({CONCURRENCY_ERROR})

    def __repr__(self) -> str:  # never show the secret
        return f"WeComAPI(corp_id={self.corp_id!r}, agent_id={self.agent_id!r}, api_base={self.api_base!r})"

    async def send_text(self, userids: Sequence[str], text: str) -> list[str]:
        """An app text message to the members `userids`; returns those WeCom reported as invalid.

        Raises `SendRejected` when every recipient is invalid (nothing was delivered)."""
        users = [u for u in userids if u]
        if not users:
            raise SendRejected(None, "no recipient")
        body: dict[str, Any] = {
            "touser": "|".join(users),
            "msgtype": "text",
            "agentid": self.agent_id,
            "text": {"content": cap_text(text)},
            "safe": 0,
            "enable_duplicate_check": 1,
            "duplicate_check_interval": DUPLICATE_CHECK_INTERVAL,
        }
        answer = await self._call("/cgi-bin/message/send", body)
        invalid = [u for u in str(answer.get("invaliduser") or "").split("|") if u]
        if invalid:
            log.warning("wecom /cgi-bin/message/send: %d of %d recipients invalid", len(invalid), len(users))
            if set(users) <= set(invalid):
                raise SendRejected(None, "no valid recipient (invaliduser)")
        return invalid

    async def _fetch_token(self) -> str:
        params = {"corpid": self.corp_id, "corpsecret": self._secret}
        answer = await self._request("GET", "/cgi-bin/gettoken", params=params)
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        code = _errcode(answer)
        if code != 0 or not isinstance(token, str) or not token or not isinstance(expires_in, int):
            log.error("wecom access token fetch failed: errcode %s", code)
            if code in (BUSY_ERROR, CONCURRENCY_ERROR):
                raise Retryable(code, "busy while fetching the WeCom token")
            raise TokenError(code, str(answer.get("errmsg", "no access_token in the answer")))
        ttl = max(expires_in - TOKEN_MARGIN, 60)
        await self.state.set_token(self.token_key, token, ttl)
        self.token_expires_at = self.clock() + ttl
        log.info("wecom access token fetched for %s/%s, cached for %d s", self.corp_id, self.agent_id, ttl)
        return token


class WeComSender:
    """WeCom delivery for the outbox: a `text` row becomes an app message to the member `recipient`.

    WeCom silently drops app messages beyond 30 a minute per member, so we count them first (in the
    state store, across processes) and let the outbox retry later rather than lose one."""

    def __init__(
        self,
        api: WeComAPI,
        *,
        per_member: int = PER_MEMBER_LIMIT,
        window: float = PER_MEMBER_WINDOW,
    ) -> None:
        self.api = api
        self.per_member = per_member
        self.window = window

    async def send(self, message: OutboxMessage) -> None:
        if message.kind != "text":
            raise SendRejected(None, f"kind {message.kind!r} cannot be sent on wecom")
        member = f"wecom-send:{self.api.corp_id}:{self.api.agent_id}:{message.recipient}"
        if not await self.api.state.allow(member, self.per_member, self.window):
            raise Retryable(None, "WeCom per-member limit (30 a minute) reached")
        await self.api.send_text([message.recipient], message.text)
