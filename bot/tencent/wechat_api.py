"""Our small async client for the few WeChat official-account calls the bot makes.

One access token per app, shared through the state store: a fetch invalidates the previous token (after
a 5-minute overlap), so only one process fetches at a time and everyone else re-reads the cache. A stale
token (40001 / 40014 / 42001) is refreshed once and the call retried once; never more.

The token travels in the query string, so no URL, token or secret ever reaches a log line or an
exception message: errors carry only the errcode and a short reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from storage.state import StateStore

log = logging.getLogger(__name__)

__all__ = [
    "MAX_MEDIA_BYTES",
    "MEDIA_TYPES",
    "NO_MENU",
    "Media",
    "MediaRefused",
    "OutOfWindow",
    "QrCode",
    "QuotaExceeded",
    "Retryable",
    "SendRejected",
    "TokenError",
    "WeChatAPI",
    "WeChatAPIError",
]

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
WINDOW_ERRORS = frozenset({45015, 45047})
QUOTA_ERROR = 45009
BUSY_ERROR = -1
TOKEN_MARGIN = 300  # refresh 5 minutes before WeChat's expiry, inside its overlap
TOKEN_WAIT_STEP = 0.05
NO_MENU = 46003  # menu/get: the account has no menu set through the API
SCENE_MAX = 64  # characters of a permanent code's scene_str


class WeChatAPIError(Exception):
    """A call failed; `errcode` is WeChat's (None for transport failures)."""

    def __init__(self, errcode: int | None, errmsg: str) -> None:
        super().__init__(f"errcode={errcode} {errmsg}" if errcode is not None else errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


class TokenError(WeChatAPIError):
    """The access token could not be obtained, or was refused again right after a refresh."""


class OutOfWindow(WeChatAPIError):
    """45015 / 45047: the person has not written recently enough; keep the notice for their next message."""


class QuotaExceeded(WeChatAPIError):
    """45009: the app's daily quota for this API is spent."""


class Retryable(WeChatAPIError):
    """-1 (busy), HTTP 5xx, connection errors, timeouts, unreadable answers: try again later."""


class SendRejected(WeChatAPIError):
    """Any other errcode (unknown openid, unsubscribed, bad content…): retrying will not help."""


class MediaRefused(WeChatAPIError):
    """A downloaded file we will not keep: too large, or not a photo or voice format we know."""


MAX_MEDIA_BYTES = 10 * 1024 * 1024
# What photos and voice messages come as; the bytes of an image must also look like the type says.
MEDIA_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "audio/amr", "audio/speex", "audio/x-speex"}
    | {"audio/mpeg", "audio/mp3", "audio/ogg", "audio/wav", "audio/x-wav", "audio/silk"}
)
_MAGIC = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "audio/amr": (b"#!AMR",),
}
_JSON_TYPES = frozenset({"application/json", "text/plain", "text/json"})


@dataclass(frozen=True)
class Media:
    content_type: str
    data: bytes


def check_media(content_type: str, data: bytes) -> None:
    """Refuse a type we do not keep, and bytes that are not what their type says."""
    if content_type not in MEDIA_TYPES:
        raise MediaRefused(None, f"content type {content_type or 'missing'} is not a photo or voice format")
    magic = _MAGIC.get(content_type)
    if magic is not None and not data.startswith(magic):
        raise MediaRefused(None, f"the bytes are not {content_type}")


def _raise_for(errcode: int, errmsg: str) -> None:
    if errcode == 0:
        return
    if errcode in TOKEN_ERRORS:
        raise TokenError(errcode, errmsg)
    if errcode in WINDOW_ERRORS:
        raise OutOfWindow(errcode, errmsg)
    if errcode == QUOTA_ERROR:
        raise QuotaExceeded(errcode, errmsg)
    if errcode == BUSY_ERROR:
        raise Retryable(errcode, errmsg)
    raise SendRejected(errcode, errmsg)


class TencentTransport:
    """JSON over HTTPS to a WeChat or WeCom API, with every failure mapped to our error classes."""

    http: aiohttp.ClientSession
    api_base: str
    timeout: aiohttp.ClientTimeout

    name: str  # "wechat" or "wecom", in log lines
    state: StateStore
    token_key: str  # the state store's name for this app's token
    lease_key: str  # the lease one process holds while it fetches a new token
    _lease_ttl: float
    retryable: frozenset[int] = frozenset()  # errcodes that mean "try again later" for this API

    def __init__(
        self,
        http: aiohttp.ClientSession,
        api_base: str,
        state: StateStore,
        clock: Callable[[], float],
        timeout: float,
    ) -> None:
        self.http = http
        self.api_base = api_base.rstrip("/")
        self.state = state
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._lease_ttl = timeout + 5  # outlives one token request, so a crashed fetcher frees it soon
        self.token_expires_at: float | None = None  # on `clock`, for the token this process fetched last

    async def access_token(self) -> str:
        """The shared token, fetching it if no process has."""
        token = await self.state.get_token(self.token_key)
        return token if token else await self._refresh(stale=None)

    async def _fetch_token(self) -> str:
        raise NotImplementedError

    async def _call(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """POST `body` to `path` with the token (None: a GET with only the token)."""
        token = await self.access_token()
        answer = await self._send(path, token, body)
        code = _errcode(answer)
        if code in TOKEN_ERRORS:
            log.warning("%s %s: errcode %s, refreshing the access token once", self.name, path, code)
            token = await self._refresh(stale=token)
            answer = await self._send(path, token, body)
            code = _errcode(answer)
        if code != 0:
            log.info("%s %s: errcode %s", self.name, path, code)
        if code in self.retryable:
            raise Retryable(code, str(answer.get("errmsg", "")))
        _raise_for(code, str(answer.get("errmsg", "")))
        return answer

    async def _refresh(self, stale: str | None) -> str:
        """A token other than `stale`: one process fetches under a lease, the others wait and re-read.

        Whoever holds the lease first re-reads the cache, so after a 40001 seen by many callers at once
        only the first fetches; the rest pick up its token.
        """
        owner = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lease_ttl
        while True:
            if await self.state.acquire(self.lease_key, owner, self._lease_ttl):
                try:
                    cached = await self.state.get_token(self.token_key)
                    if cached and cached != stale:
                        return cached
                    return await self._fetch_token()
                finally:
                    await self.state.release(self.lease_key, owner)
            if loop.time() >= deadline:
                raise Retryable(None, f"timed out waiting for another process to fetch the {self.name} token")
            await asyncio.sleep(TOKEN_WAIT_STEP)
            cached = await self.state.get_token(self.token_key)
            if cached and cached != stale:
                return cached

    async def _send(self, path: str, token: str, body: dict[str, Any] | None) -> dict[str, Any]:
        if body is None:
            return await self._request("GET", path, params={"access_token": token})
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        return await self._request("POST", path, params={"access_token": token}, data=data, headers=headers)

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        # `from None` everywhere: aiohttp's exceptions may carry the URL, and with it the token or secret.
        try:
            async with self.http.request(
                method, self.api_base + path, timeout=self.timeout, **kwargs
            ) as response:
                if response.status >= 500 or response.status == 429:
                    raise Retryable(None, f"HTTP {response.status}") from None
                if response.status != 200:
                    raise SendRejected(None, f"HTTP {response.status}") from None
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Retryable(None, f"{type(exc).__name__} calling {path}") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise Retryable(None, f"unreadable answer from {path}") from None
        if not isinstance(answer, dict):
            raise Retryable(None, f"unexpected answer from {path}")
        return answer


@dataclass(frozen=True)
class QrCode:
    """A permanent parametric QR code: `url` is what the code encodes; `ticket` fetches WeChat's image."""

    scene: str
    ticket: str
    url: str


class WeChatAPI(TencentTransport):
    """Customer-service and template messages, permanent QR codes and the menu of one official account."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        api_base: str,
        app_id: str,
        app_secret: str,
        state: StateStore,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(http, api_base, state, clock, timeout)
        self.app_id = app_id
        self._secret = app_secret
        self.name = "wechat"
        self.token_key = app_id
        self.lease_key = f"wechat-token:{app_id}"

    def __repr__(self) -> str:  # never show the secret
        return f"WeChatAPI(app_id={self.app_id!r}, api_base={self.api_base!r})"

    async def send_text(self, openid: str, text: str) -> None:
        """A customer-service text message (allowed within 48 h of the person's last message)."""
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        await self._call("/cgi-bin/message/custom/send", body)

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, Any], url: str | None = None
    ) -> int | None:
        """A template message; returns WeChat's msgid."""
        body: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": data}
        if url:
            body["url"] = url
        answer = await self._call("/cgi-bin/message/template/send", body)
        msgid = answer.get("msgid")
        return msgid if isinstance(msgid, int) else None

    async def get_media(self, media_id: str, *, max_bytes: int = MAX_MEDIA_BYTES) -> Media:
        """A photo or voice message a person sent (`/cgi-bin/media/get`; WeChat keeps it 3 days).

        Read in chunks and given up past `max_bytes`; the type is checked (`MediaRefused`). A JSON body
        is an error: a stale token is refreshed once and the download tried once more."""
        token = await self.access_token()
        answer = await self._download(token, media_id, max_bytes)
        if isinstance(answer, dict) and _errcode(answer) in TOKEN_ERRORS:
            log.warning("wechat media/get: errcode %s, refreshing the access token once", _errcode(answer))
            token = await self._refresh(stale=token)
            answer = await self._download(token, media_id, max_bytes)
        if isinstance(answer, Media):
            return answer
        code = _errcode(answer)
        log.info("wechat media/get: errcode %s", code)
        _raise_for(code if code else BUSY_ERROR, str(answer.get("errmsg", "no media in the answer")))
        raise AssertionError("unreachable")  # pragma: no cover - _raise_for raised

    async def _download(self, token: str, media_id: str, max_bytes: int) -> Media | dict[str, Any]:
        params = {"access_token": token, "media_id": media_id}
        try:
            async with self.http.get(
                self.api_base + "/cgi-bin/media/get", params=params, timeout=self.timeout
            ) as response:
                if response.status >= 500 or response.status == 429:
                    raise Retryable(None, f"HTTP {response.status}") from None
                if response.status != 200:
                    raise SendRejected(None, f"HTTP {response.status}") from None
                content_type = response.content_type.lower()
                if (response.content_length or 0) > max_bytes:
                    raise MediaRefused(None, f"larger than {max_bytes} bytes") from None
                chunks, size = [], 0
                async for chunk in response.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaRefused(None, f"larger than {max_bytes} bytes") from None
                    chunks.append(chunk)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Retryable(None, f"{type(exc).__name__} calling /cgi-bin/media/get") from None
        data = b"".join(chunks)
        if content_type in _JSON_TYPES:
            try:
                answer = json.loads(data)
            except ValueError:
                raise Retryable(None, "unreadable answer from /cgi-bin/media/get") from None
            return answer if isinstance(answer, dict) else {"errcode": BUSY_ERROR}
        check_media(content_type, data)
        return Media(content_type, data)

    async def create_qrcode(self, scene: str) -> QrCode:
        """A permanent code (QR_LIMIT_STR_SCENE) for `scene`; asking again for a scene gives the same code."""
        if not 1 <= len(scene) <= SCENE_MAX:
            raise ValueError(f"scene_str must be 1–{SCENE_MAX} characters")
        body = {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene}}}
        answer = await self._call("/cgi-bin/qrcode/create", body)
        ticket, url = answer.get("ticket"), answer.get("url")
        if not isinstance(ticket, str) or not ticket or not isinstance(url, str) or not url:
            raise Retryable(None, "qrcode/create answered without a ticket or url")
        return QrCode(scene, ticket, url)

    async def create_menu(self, buttons: list[dict[str, Any]]) -> None:
        await self._call("/cgi-bin/menu/create", {"button": buttons})

    async def get_menu(self) -> list[dict[str, Any]] | None:
        """The menu's buttons as WeChat holds them; None when the account has no menu."""
        try:
            answer = await self._call("/cgi-bin/menu/get", None)
        except SendRejected as exc:
            if exc.errcode == NO_MENU:
                return None
            raise
        buttons = (answer.get("menu") or {}).get("button")
        return buttons if isinstance(buttons, list) else []

    async def delete_menu(self) -> None:
        await self._call("/cgi-bin/menu/delete", None)

    async def _fetch_token(self) -> str:
        params = {"grant_type": "client_credential", "appid": self.app_id, "secret": self._secret}
        answer = await self._request("GET", "/cgi-bin/token", params=params)
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            code = _errcode(answer)
            log.error("wechat access token fetch failed: errcode %s", code)
            if code == BUSY_ERROR:
                raise Retryable(code, "busy while fetching the access token")
            raise TokenError(code, str(answer.get("errmsg", "no access_token in the answer")))
        ttl = max(expires_in - TOKEN_MARGIN, 60)
        await self.state.set_token(self.token_key, token, ttl)
        self.token_expires_at = self.clock() + ttl
        log.info("wechat access token fetched for %s, cached for %d s", self.app_id, ttl)
        return token


def _errcode(answer: dict[str, Any]) -> int:
    code = answer.get("errcode", 0)
    return code if isinstance(code, int) else -1
