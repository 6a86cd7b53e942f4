"""A local stand-in for the WeChat and WeCom send APIs, as an aiohttp sub-application.

Tests point `[wechat] api_base` at it; the demo server mounts it so `gridbot chat` can read what the bot
pushed (`GET /fake/messages`). It answers with the real APIs' JSON shapes and error codes, checks the
tokens it issued (a new fetch leaves the previous token valid for 5 minutes, like WeChat), records
every delivered message, and fails on request (`fail_next`, `fail_token_next`, `expire_tokens`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = ["FAKE_WECHAT", "FakeWeChat", "create_fake_wechat_app"]

OVERLAP = 300.0
MAX_WAIT = 30.0
ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40008: "invalid message type",
    40007: "invalid media_id",
    40013: "invalid appid",
    40014: "invalid access_token",
    40037: "invalid template_id",
    40056: "invalid agentid",
    40097: "invalid args",
    40125: "invalid appsecret",
    41001: "access_token missing",
    42001: "access_token expired",
    43004: "require subscribe",
    44004: "empty content",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40023: "invalid sub button size",
    40025: "invalid sub button name size",
    40027: "invalid sub button url size",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    46003: "menu no exist",
    47001: "data format error",
}
QR_URL = "http://weixin.qq.com/q/"  # what a permanent code encodes: this prefix and the code's own part
MENU_TYPES = frozenset({"click", "view", "location_select", "scancode_push", "scancode_waitmsg"})


@dataclass
class Fault:
    touser: str | None  # None: any recipient
    errcode: int
    remaining: int
    status: int = 200
    delay: float = 0.0


def _error(errcode: int, status: int = 200) -> web.Response:
    rid = secrets.token_hex(4)
    body = {"errcode": errcode, "errmsg": f"{ERRMSG.get(errcode, 'fake error')} rid: {rid}"}
    return web.json_response(body, status=status)


class FakeWeChat:
    """What the fake knows: the tokens it issued, the messages it delivered, the faults to inject."""

    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        corp_id: str,
        corp_secret: str,
        agent_id: int,
        expires_in: int = 7200,
        clock: Callable[[], float] = time.monotonic,
        default_media: tuple[str, bytes] | None = None,
    ) -> None:
        self.app_id, self._app_secret = app_id, app_secret
        self.corp_id, self._corp_secret, self.agent_id = corp_id, corp_secret, agent_id
        self.expires_in = expires_in
        self.clock = clock
        self.token_fetches = 0
        self.send_requests = 0  # every call to a send endpoint, whatever it answered
        self.messages: list[dict[str, Any]] = []
        self.raw_bodies: list[bytes] = []  # every send request's body as it arrived
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (realm "mp" | "wecom", expiry)
        self._faults: list[Fault] = []
        self._token_faults: deque[int] = deque()
        self._arrived = asyncio.Event()
        self.closing = False  # set at shutdown so long polls end at once
        # media id → (content type, bytes) served by /cgi-bin/media/get; others get `default_media`,
        # or 40007 when that is None
        self.media: dict[str, tuple[str, bytes]] = {}
        self.default_media = default_media
        self.media_requests: list[str] = []  # every media id asked for, in order
        self.qrcodes: dict[str, dict[str, str]] = {}  # scene_str → {"ticket", "url"}
        self.menu: list[dict[str, Any]] | None = None  # the buttons set by menu/create

    # --- controls for tests and the demo ---------------------------------------------------------

    def fail_next(
        self, touser: str | None, errcode: int, times: int = 1, *, status: int = 200, delay: float = 0.0
    ) -> None:
        """The next `times` sends to `touser` (None: anyone) answer `errcode` (or HTTP `status`),
        after `delay` seconds."""
        self._faults.append(Fault(touser, errcode, times, status, delay))

    def clear_faults(self) -> None:
        """Forget every fault not yet used up."""
        self._faults = []
        self._token_faults.clear()

    def fail_token_next(self, errcode: int, times: int = 1) -> None:
        """The next `times` token fetches answer `errcode`."""
        self._token_faults.extend([errcode] * times)

    def expire_tokens(self) -> None:
        """Every token issued so far answers 42001 from now on."""
        self._tokens = {token: (realm, float("-inf")) for token, (realm, _) in self._tokens.items()}

    @property
    def issued_tokens(self) -> list[str]:
        return list(self._tokens)

    def delivered(self, touser: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["id"] > after and (touser is None or m["touser"] == touser)]

    # --- tokens ----------------------------------------------------------------------------------

    def _issue(self, realm: str) -> web.Response:
        now = self.clock()
        for token, (owner, expiry) in self._tokens.items():
            if owner == realm and expiry > now + OVERLAP:
                self._tokens[token] = (owner, now + OVERLAP)
        token = secrets.token_urlsafe(48)
        self._tokens[token] = (realm, now + self.expires_in)
        self.token_fetches += 1
        answer: dict[str, Any] = {"access_token": token, "expires_in": self.expires_in}
        if realm == "wecom":
            answer = {"errcode": 0, "errmsg": "ok", **answer}
        return web.json_response(answer)

    def _token_fault(self) -> web.Response | None:
        if self._token_faults:
            return _error(self._token_faults.popleft())
        return None

    async def token(self, request: web.Request) -> web.Response:
        query = request.query
        if fault := self._token_fault():
            return fault
        if query.get("grant_type") != "client_credential":
            return _error(40002)
        if query.get("appid") != self.app_id:
            return _error(40013)
        if query.get("secret") != self._app_secret:
            return _error(40125)
        return self._issue("mp")

    async def wecom_token(self, request: web.Request) -> web.Response:
        if fault := self._token_fault():
            return fault
        if request.query.get("corpid") != self.corp_id:
            return _error(40013)
        if request.query.get("corpsecret") != self._corp_secret:
            return _error(40001)
        return self._issue("wecom")

    def _check_token(self, request: web.Request, realm: str) -> web.Response | None:
        token = request.query.get("access_token")
        if not token:
            return _error(41001)
        entry = self._tokens.get(token)
        if entry is None or entry[0] != realm:
            return _error(40001 if realm == "mp" else 40014)
        if entry[1] <= self.clock():
            return _error(42001)
        return None

    # --- sending ---------------------------------------------------------------------------------

    async def _fault_for(self, users: list[str]) -> web.Response | None:
        for fault in self._faults:
            if fault.remaining > 0 and (fault.touser is None or fault.touser in users):
                fault.remaining -= 1
                self._faults = [f for f in self._faults if f.remaining > 0]
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status != 200:
                    return web.Response(status=fault.status, text="fake server error")
                return _error(fault.errcode)
        return None

    async def _body(
        self, request: web.Request, realm: str
    ) -> tuple[dict[str, Any] | None, web.Response | None]:
        self.send_requests += 1
        if refused := self._check_token(request, realm):
            return None, refused
        raw = await request.read()
        self.raw_bodies.append(raw)
        try:
            body = json.loads(raw)
        except ValueError:
            return None, _error(47001)
        if not isinstance(body, dict):
            return None, _error(47001)
        return body, None

    def _record(self, api: str, touser: str, msgtype: str, content: str, body: dict[str, Any]) -> int:
        message = {
            "id": len(self.messages) + 1,
            "api": api,
            "touser": touser,
            "msgtype": msgtype,
            "content": content,
            "body": body,
            "at": time.time(),
        }
        self.messages.append(message)
        self._arrived.set()
        self._arrived = asyncio.Event()
        return int(message["id"])

    async def custom_send(self, request: web.Request) -> web.Response:
        body, refused = await self._body(request, "mp")
        if body is None:
            return refused or _error(47001)
        touser, msgtype = body.get("touser"), body.get("msgtype")
        if not isinstance(touser, str) or not touser:
            return _error(40003)
        if fault := await self._fault_for([touser]):
            return fault
        if msgtype != "text":
            return _error(40008)
        content = (body.get("text") or {}).get("content")
        if not isinstance(content, str) or not content:
            return _error(44004)
        self._record("custom", touser, "text", content, body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def template_send(self, request: web.Request) -> web.Response:
        body, refused = await self._body(request, "mp")
        if body is None:
            return refused or _error(47001)
        touser, template_id, data = body.get("touser"), body.get("template_id"), body.get("data")
        if not isinstance(touser, str) or not touser:
            return _error(40003)
        if fault := await self._fault_for([touser]):
            return fault
        if not isinstance(template_id, str) or not template_id:
            return _error(40037)
        if not isinstance(data, dict):
            return _error(47001)
        lines = [f"{key}: {(value or {}).get('value', '')}" for key, value in data.items()]
        msgid = self._record("template", touser, "template", "\n".join(lines), body)
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    async def wecom_send(self, request: web.Request) -> web.Response:
        body, refused = await self._body(request, "wecom")
        if body is None:
            return refused or _error(47001)
        users = [u for u in str(body.get("touser") or "").split("|") if u]
        if not users:
            return _error(40003)
        if fault := await self._fault_for(users):
            return fault
        if body.get("agentid") != self.agent_id:
            return _error(40056)
        if body.get("msgtype") != "text":
            return _error(40008)
        content = (body.get("text") or {}).get("content")
        if not isinstance(content, str) or not content:
            return _error(44004)
        ids = [self._record("wecom", user, "text", content, body) for user in users]
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": f"fake-{ids[0]}", "response_code": ""}
        )

    async def media_get(self, request: web.Request) -> web.StreamResponse:
        """`/cgi-bin/media/get`: the bytes of a media id (faults by `fail_next(media_id, …)`)."""
        if refused := self._check_token(request, "mp"):
            return refused
        media_id = request.query.get("media_id", "")
        self.media_requests.append(media_id)
        if fault := await self._fault_for([media_id]):
            return fault
        found = self.media.get(media_id, self.default_media)
        if not media_id or found is None:
            return _error(40007)
        content_type, data = found
        return web.Response(
            body=data,
            content_type=content_type,
            headers={"Content-Disposition": f'attachment; filename="{media_id}"'},
        )

    # --- permanent QR codes and the menu ----------------------------------------------------------

    def scene_of(self, url: str) -> str | None:
        """The scene a code's URL (as decoded from its image) was created for."""
        return next((scene for scene, code in self.qrcodes.items() if code["url"] == url), None)

    async def qrcode_create(self, request: web.Request) -> web.Response:
        body, refused = await self._body(request, "mp")
        if body is None:
            return refused or _error(47001)
        if fault := await self._fault_for([]):  # a fault for any recipient (touser None) applies here too
            return fault
        scene = ((body.get("action_info") or {}).get("scene") or {}).get("scene_str")
        if body.get("action_name") != "QR_LIMIT_STR_SCENE" or not isinstance(scene, str):
            return _error(47001)
        if not 1 <= len(scene) <= 64:
            return _error(40097 if scene else 47001)
        code = self.qrcodes.setdefault(
            scene, {"ticket": secrets.token_urlsafe(32), "url": QR_URL + secrets.token_urlsafe(12)}
        )
        return web.json_response({"ticket": code["ticket"], "url": code["url"]})

    async def menu_create(self, request: web.Request) -> web.Response:
        body, refused = await self._body(request, "mp")
        if body is None:
            return refused or _error(47001)
        if fault := await self._fault_for([]):
            return fault
        buttons = body.get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            return _error(40016)
        for button in buttons:
            if not isinstance(button, dict):
                return _error(47001)
            if errcode := _button_error(button, top=True):
                return _error(errcode)
        self.menu = buttons
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def menu_get(self, request: web.Request) -> web.Response:
        if refused := self._check_token(request, "mp"):
            return refused
        if self.menu is None:
            return _error(46003)
        return web.json_response({"menu": {"button": self.menu}}, dumps=_dumps)

    async def menu_delete(self, request: web.Request) -> web.Response:
        if refused := self._check_token(request, "mp"):
            return refused
        self.menu = None
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    # --- reading -------------------------------------------------------------------------------

    async def read_messages(self, request: web.Request) -> web.Response:
        """`?touser=X&after=N[&wait=S]`: delivered messages with id > N; waits up to S s for one."""
        touser = request.query.get("touser") or None
        try:
            after = int(request.query.get("after", "0"))
            wait = min(float(request.query.get("wait", "0")), MAX_WAIT)
        except ValueError:
            raise web.HTTPBadRequest(text="after and wait must be numbers") from None
        deadline = asyncio.get_running_loop().time() + wait
        while not (found := self.delivered(touser, after)) and not self.closing:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            try:
                async with asyncio.timeout(left):
                    await self._arrived.wait()
            except TimeoutError:
                break
        return web.json_response(found, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _button_error(button: dict[str, Any], *, top: bool) -> int | None:
    """The errcode WeChat gives for this menu button, or None when it is well formed."""
    name = button.get("name")
    if not isinstance(name, str) or not 0 < len(name.encode()) <= (16 if top else 60):
        return 40018 if top else 40025
    subs = button.get("sub_button")
    if top and subs:
        if not isinstance(subs, list) or len(subs) > 5:
            return 40023
        for sub in subs:
            if not isinstance(sub, dict) or (errcode := _button_error(sub, top=False)):
                return errcode if isinstance(sub, dict) else 47001
        return None
    if button.get("type") not in MENU_TYPES:
        return 40017
    if button["type"] == "view":
        url = button.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 1024:
            return 40027
    elif not isinstance(button.get("key"), str) or not 0 < len(button["key"].encode()) <= 128:
        return 40019
    return None


FAKE_WECHAT = web.AppKey("fake_wechat", FakeWeChat)


def create_fake_wechat_app(
    *,
    app_id: str = "wxfake0000000000",
    app_secret: str = "fake-app-secret",
    corp_id: str = "wwfake0000000000",
    corp_secret: str = "fake-corp-secret",
    agent_id: int = 1000002,
    expires_in: int = 7200,
    clock: Callable[[], float] = time.monotonic,
    default_media: tuple[str, bytes] | None = None,
) -> web.Application:
    """The fake as an application; mount it with `add_subapp` or serve it alone. State: `app[FAKE_WECHAT]`."""
    fake = FakeWeChat(
        app_id=app_id,
        app_secret=app_secret,
        corp_id=corp_id,
        corp_secret=corp_secret,
        agent_id=agent_id,
        expires_in=expires_in,
        clock=clock,
        default_media=default_media,
    )
    app = web.Application()
    app[FAKE_WECHAT] = fake
    app.router.add_get("/cgi-bin/token", fake.token)
    app.router.add_post("/cgi-bin/message/custom/send", fake.custom_send)
    app.router.add_post("/cgi-bin/message/template/send", fake.template_send)
    app.router.add_get("/cgi-bin/gettoken", fake.wecom_token)
    app.router.add_post("/cgi-bin/message/send", fake.wecom_send)
    app.router.add_get("/cgi-bin/media/get", fake.media_get)
    app.router.add_post("/cgi-bin/qrcode/create", fake.qrcode_create)
    app.router.add_post("/cgi-bin/menu/create", fake.menu_create)
    app.router.add_get("/cgi-bin/menu/get", fake.menu_get)
    app.router.add_get("/cgi-bin/menu/delete", fake.menu_delete)
    app.router.add_get("/fake/messages", fake.read_messages)

    async def end_long_polls(_: web.Application) -> None:
        fake.closing = True
        fake._arrived.set()

    app.on_shutdown.append(end_long_polls)
    return app
