"""`gridbot chat`: a terminal that plays WeChat against a running server (plaintext mode).

You pick who you are (a fresh resident or a person of the org file); every line you type becomes a signed
text push to `/wechat` and the bot's passive reply is printed. Meanwhile the messages the bot pushes to
you are long-polled from the fake send API that `gridbot serve` mounts in demo mode
(`/fake-wechat/fake/messages`) and printed as they arrive.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import re
import secrets
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from bot.demo.wechat_client import (
    event_xml,
    image_xml,
    location_xml,
    read_reply,
    signed_query,
    text_xml,
    voice_xml,
)
from handlers.scan import MENU_KEYS, place_scene
from storage.org import ROLE_NAMES, OrgError, load_org_file

__all__ = [
    "DEFAULT_URL",
    "ChatError",
    "ChatSession",
    "Identity",
    "StdinLines",
    "choose",
    "format_menu",
    "load_people",
    "menu_entries",
    "normalize_url",
    "run_chat",
]

DEFAULT_URL = "http://127.0.0.1:8080"
FAKE_MESSAGES = "/fake-wechat/fake/messages"
POLL_WAIT = 25.0
RECONNECT_FIRST = 0.5  # seconds before the first try to reach a server that went away; doubled up to
RECONNECT_MAX = 5.0
POST_TIMEOUT = 15.0
BACKLOG_SHOWN = 5

BOT = "机器人："
PUSH = "【推送】"
HINT = (
    "提示：直接输入文字发给公众号；/位置 纬度 经度 发送位置，/图片 发送照片，/身份 切换身份，"
    "/退出 或 Ctrl-D 退出；输入“帮助”看机器人的用法，/帮助 看本客户端的命令。"
)
CLIENT_HELP = (
    "本客户端的命令（以 / 开头，中文输入法下的 、 也可以）：\n"
    "/位置 纬度 经度 [地址]  发送位置，例如 /位置 25.4310 119.0070 筱塘新村\n"
    "/图片 [图片地址]        发送一张照片\n"
    "/语音 文字              发送一条语音（文字是微信的语音识别结果）\n"
    "/扫码 地点              扫楼道里的报事码，例如 /扫码 筱塘新村\n"
    "/菜单 按钮              点公众号菜单：REPORT 报事 · MY_ORDERS 我的工单 · HELP 帮助 · HOTLINES 便民电话\n"
    "/身份                   切换身份\n"
    "/退出                   退出（也可按 Ctrl-D）\n"
    "其他内容原样作为文字消息发给公众号。"
)
_COMMAND_PREFIXES = ("/", "／", "、")
_NUMBER_SEPARATORS = re.compile(r"[\s,，]+")

Output = Callable[[str], None]
LineSource = Callable[[], Awaitable[str | None]]  # the next line without its newline; None at end of input


class ChatError(RuntimeError):
    """The session cannot go on; the message is one Chinese line for the user."""


def _print(text: str) -> None:
    print(text, flush=True)


@dataclass(frozen=True)
class Identity:
    """Who is typing: a person of the org file, or a resident (no role)."""

    openid: str
    name: str = "居民"
    role: str = ""
    unit: str = ""

    @property
    def resident(self) -> bool:
        return not self.role

    def describe(self) -> str:
        """One line: name, role in Chinese, unit, openid."""
        if self.resident:
            return f"居民 ({self.openid})"
        role = ROLE_NAMES.get(self.role, self.role)
        return f"{self.name}，{role}，{self.unit} ({self.openid})"


def fresh_resident() -> Identity:
    """A resident nobody has been yet: `oResident-<4 hex>`."""
    return Identity(f"oResident-{secrets.token_hex(2)}")


def load_people(org_file: str) -> list[Identity]:
    """The people of the org file, in file order, with their unit's name; [] when there is none."""
    if not org_file:
        return []
    try:
        spec = load_org_file(org_file)
    except (OrgError, OSError):
        return []
    unit_names = {unit.id: unit.name for unit in spec.units}
    return [Identity(p.openid, p.name, p.role, unit_names.get(p.unit, p.unit)) for p in spec.people]


def menu_entries(people: list[Identity]) -> list[Identity]:
    """The identity menu: 1 is a fresh resident, then the people of the org."""
    return [fresh_resident(), *people]


def format_menu(entries: list[Identity]) -> str:
    """The numbered menu, with a line saying how to answer."""
    lines = ["你是谁？"]
    for number, identity in enumerate(entries, 1):
        lines.append(f"{number:>3}. {'居民（新的微信用户）' if identity.resident else identity.describe()}")
    lines.append("请输入编号或 openid（直接回车 = 1）：")
    return "\n".join(lines)


def choose(answer: str, entries: list[Identity]) -> Identity | None:
    """The identity an answer to the menu names: a number, an openid (of the org, or a resident's); None
    when it names nobody."""
    answer = answer.strip()
    if not answer:
        return entries[0] if entries else None
    if answer.isdigit():
        number = int(answer)
        return entries[number - 1] if 1 <= number <= len(entries) else None
    if any(ch.isspace() for ch in answer) or len(answer) > 64:
        return None
    return identity_for(answer, entries)


def identity_for(openid: str, people: list[Identity]) -> Identity:
    """The org person with this openid, else a resident with it."""
    for person in people:
        if person.openid == openid and not person.resident:
            return person
    return Identity(openid)


def normalize_url(url: str) -> URL:
    """The server's base URL: a missing scheme means http, a trailing `/wechat` is dropped."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parsed = URL(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ChatError(f"--url 应形如 {DEFAULT_URL}，收到 {url!r}")
    path = parsed.path.rstrip("/")
    if path.endswith("/wechat"):
        path = path[: -len("/wechat")]
    return parsed.with_path(path or "/").with_query(None).with_fragment(None)


def _indent(prefix: str, text: str) -> str:
    """`prefix` before the first line, the rest indented to line up under it."""
    pad = " " * 4
    lines = text.splitlines() or [""]
    return "\n".join([prefix + lines[0], *(pad + line for line in lines[1:])])


class StdinLines:
    """Lines of standard input for the event loop. A daemon thread does blocking `os.read`s, so this works
    for a terminal, a pipe and a file alike, and never keeps the process from exiting."""

    def __init__(self, fd: int | None = None, encoding: str | None = None) -> None:
        self._fd = fd  # None: standard input, looked up at the first read
        self._encoding = encoding
        self._queue: asyncio.Queue[str | None] | None = None

    def _start(self) -> asyncio.Queue[str | None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        fd = sys.stdin.fileno() if self._fd is None else self._fd
        decoder = codecs.getincrementaldecoder(self._encoding or sys.stdin.encoding or "utf-8")(
            errors="replace"
        )

        def pump() -> None:
            pending = ""
            while True:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    chunk = b""
                pending += decoder.decode(chunk, final=not chunk)
                *lines, pending = pending.split("\n")
                if not chunk and pending:
                    lines.append(pending)
                for line in lines:
                    loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\r"))
                if not chunk:
                    loop.call_soon_threadsafe(queue.put_nowait, None)
                    return

        threading.Thread(target=pump, name="gridbot-chat-stdin", daemon=True).start()
        return queue

    async def __call__(self) -> str | None:
        if self._queue is None:
            self._queue = self._start()
        line = await self._queue.get()
        if line is None:
            self._queue.put_nowait(None)  # end of input stays the end
        return line


class ChatSession:
    """One person's terminal: sends what they type, prints the replies and the messages pushed to them."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        url: str,
        token: str,
        people: list[Identity] | None = None,
        read_line: LineSource,
        out: Output = _print,
        prompt: bool = False,
    ) -> None:
        self.http = http
        self.base = normalize_url(url)
        self._where = str(self.base).rstrip("/")
        self.token = token
        self.people = people or []
        self.read_line = read_line
        self.out = out
        self.prompt = prompt
        self.me: Identity | None = None
        self._after = 0
        self._pushes_shown = True  # False once we know the server has no fake send API
        self._waiting_for_input = False
        self._connected = False  # True once the server has answered

    # --- output ----------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """Print a line; if the prompt is showing, start on a fresh line and show the prompt again."""
        if self._waiting_for_input:
            self.out("")
        self.out(text)
        if self._waiting_for_input:
            self._show_prompt()

    def _show_prompt(self) -> None:
        if self.prompt and self.me is not None:
            label = "居民" if self.me.resident else self.me.name
            print(f"{label}> ", end="", flush=True)

    async def _next_line(self) -> str | None:
        self._waiting_for_input = self.prompt
        self._show_prompt()
        try:
            line = await self.read_line()
        finally:
            self._waiting_for_input = False
        if line is None and self.prompt:
            self.out("")  # Ctrl-D leaves the cursor after the prompt
        return line

    # --- the session -----------------------------------------------------------------------------

    async def run(self, openid: str | None = None) -> int:
        """Chat until the end of input or `/退出`; raises ChatError when the server cannot be used."""
        identity = identity_for(openid, self.people) if openid else await self._ask_identity()
        while identity is not None and await self._session(identity):
            identity = await self._ask_identity()  # `/身份`
        return 0

    async def _ask_identity(self) -> Identity | None:
        entries = menu_entries(self.people)
        self.out(format_menu(entries))
        while True:
            answer = await self.read_line()
            if answer is None or self._is_quit(answer):
                return None
            chosen = choose(answer, entries)
            if chosen is not None:
                return chosen
            self.out(f"没有这个选项：{answer.strip()}。请输入 1–{len(entries)} 的编号或一个 openid：")

    async def _session(self, identity: Identity) -> bool:
        """Be `identity` until the input ends (False) or `/身份` asks for another identity (True)."""
        self.me = identity
        backlog = await self._fetch(identity.openid, 0, 0.0)
        self.out(f"你现在是：{identity.describe()}")
        self.out(HINT)
        self._pushes_shown = backlog is not None
        if backlog is None:
            self.out("（这个服务器没有演示用的本地发送接口，无法显示推送给你的消息。）")
        else:
            self._after = max((int(m["id"]) for m in backlog), default=0)
            self._show_backlog(backlog)
        if identity.resident:
            await self._send(event_xml(identity.openid, "subscribe"))
        poller = asyncio.create_task(self._poll(identity.openid), name="chat-poll")
        try:
            return await self._converse(identity, poller)
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    def _show_backlog(self, backlog: list[dict[str, Any]]) -> None:
        if not backlog:
            return
        older = len(backlog) - BACKLOG_SHOWN
        self.out(
            f"之前推送给你的消息（另有 {older} 条更早的未显示）：" if older > 0 else "之前推送给你的消息："
        )
        for message in backlog[-BACKLOG_SHOWN:]:
            self.out(_indent(PUSH, str(message.get("content", ""))))

    async def _converse(self, identity: Identity, poller: asyncio.Task[None]) -> bool:
        """Read and send lines while the poller prints pushes; a poller failure ends the session."""
        while True:
            reading = asyncio.create_task(self._next_line())
            try:
                if not poller.done():
                    await asyncio.wait({reading, poller}, return_when=asyncio.FIRST_COMPLETED)
                    failure = poller.exception() if poller.done() and not poller.cancelled() else None
                    if failure is not None:
                        raise failure
                line = await reading
            finally:
                reading.cancel()  # a no-op once it has its line
            if line is None or self._is_quit(line):
                return False
            if self._command(line) == "身份":
                return True
            await self._handle(identity, line)

    @staticmethod
    def _command(line: str) -> str | None:
        text = line.strip()
        if text[:1] in _COMMAND_PREFIXES and len(text) > 1:
            return text[1:].split(maxsplit=1)[0]
        return None

    def _is_quit(self, line: str) -> bool:
        return self._command(line) in ("退出", "quit", "exit")

    async def _handle(self, identity: Identity, line: str) -> None:
        text = line.strip()
        if not text:
            return
        command = self._command(text)
        if command is None:
            await self._send(text_xml(identity.openid, text))
            return
        parts = text[1:].split(maxsplit=1)
        rest = parts[1] if len(parts) > 1 else ""
        if command == "位置":
            location = _parse_location(rest)
            if location is None:
                self.out("用法：/位置 纬度 经度 [地址]，例如 /位置 25.4310 119.0070 筱塘新村")
                return
            lat, lng, label = location
            await self._send(location_xml(identity.openid, lat, lng, label))
        elif command == "图片":
            extra = {"pic_url": rest} if rest else {}
            await self._send(image_xml(identity.openid, media_id=f"chat-{secrets.token_hex(8)}", **extra))
        elif command == "语音":
            if not rest:
                self.out("用法：/语音 文字，例如 /语音 楼下路灯坏了")
                return
            await self._send(voice_xml(identity.openid, rest))
        elif command == "扫码":
            if not rest:
                self.out("用法：/扫码 地点，例如 /扫码 筱塘新村")
                return
            await self._send(event_xml(identity.openid, "SCAN", place_scene(rest.strip())))
        elif command == "菜单":
            key = rest.strip().upper()
            if key not in MENU_KEYS:
                self.out(f"用法：/菜单 按钮，按钮为 {'、'.join(MENU_KEYS)}")
                return
            await self._send(event_xml(identity.openid, "CLICK", key))
        elif command == "帮助":
            self.out(CLIENT_HELP)
        else:
            self.out(
                f"没有 /{command} 这个命令。输入 /帮助 看本客户端的命令；发给机器人的文字不要以 / 开头。"
            )

    # --- HTTP ------------------------------------------------------------------------------------

    async def _send(self, body_xml: str) -> None:
        """Push one message to `/wechat` and print the passive reply."""
        url = self.base / "wechat"
        query = signed_query(self.token, body_xml)
        try:
            async with self.http.post(
                url,
                params=query,
                data=body_xml.encode(),
                headers={"Content-Type": "text/xml"},
                timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT),
            ) as response:
                status, text = response.status, await response.text()
                self._connected = True
        except TimeoutError:
            self.say(f"（服务器 {POST_TIMEOUT:.0f} 秒内没有回复，微信此时会重发这条消息。）")
            return
        except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            if not self._connected:
                raise self._unreachable(exc) from None
            self.say("（服务器暂时连不上，这条消息可能没有发出；重新连上后请再发一次。）")
            return
        except aiohttp.ClientError as exc:
            raise self._unreachable(exc) from None
        if status == 403:
            raise ChatError(
                "服务器拒绝了签名 (HTTP 403)：令牌多半与服务器的 [wechat] token 不一致，"
                "请用 --token 指定（演示服务器是 gridbot-demo）"
            )
        if status != 200:
            self.say(f"（服务器返回 HTTP {status}：{text.strip()[:80]}）")
            return
        try:
            fields = read_reply(text)
        except ValueError:
            self.say(f"（服务器的回复不是微信消息：{text.strip()[:80]}）")
            return
        if fields is None:
            self.say("（机器人没有被动回复）")
        elif fields.get("MsgType") == "text":
            self.say(_indent(BOT, str(fields.get("Content") or "")))
        else:
            self.say(f"{BOT}[{fields.get('MsgType')} 消息]")

    def _unreachable(self, exc: BaseException) -> ChatError:
        if isinstance(exc, aiohttp.ClientConnectorError) and self._connected:
            return ChatError(f"与服务器 {self._where} 的连接断开了：服务器已停止？")
        if isinstance(exc, aiohttp.ClientConnectorError):
            return ChatError(f"无法连接到 {self._where}：服务器没有运行？请先在另一个终端运行 gridbot serve")
        return ChatError(f"与服务器 {self._where} 的连接出错：{exc.__class__.__name__} {exc}".strip())

    async def _fetch(self, openid: str, after: int, wait: float) -> list[dict[str, Any]] | None:
        """Messages pushed to `openid` with id > `after`, waiting up to `wait` s; None when the server
        has no fake send API."""
        url = self.base / FAKE_MESSAGES.lstrip("/")
        params = {"touser": openid, "after": str(after), "wait": str(wait)}
        try:
            async with self.http.get(
                url, params=params, timeout=aiohttp.ClientTimeout(total=wait + POST_TIMEOUT)
            ) as response:
                self._connected = True
                if response.status != 200:
                    return None
                found = await response.json(content_type=None)
        except TimeoutError:
            return []
        except aiohttp.ClientResponseError:
            return None
        except aiohttp.ClientError as exc:
            raise self._unreachable(exc) from None
        except ValueError:  # not JSON: not our fake
            return None
        return [m for m in found if isinstance(m, dict) and "id" in m] if isinstance(found, list) else None

    async def _poll(self, openid: str) -> None:
        """Print what is pushed to `openid` as it arrives; ends when the server has no fake send API.
        When the server goes away (a restart), wait for it and carry on."""
        if not self._pushes_shown:
            return
        while True:
            try:
                found = await self._fetch(openid, self._after, POLL_WAIT)
            except ChatError:
                if not self._connected:
                    raise
                found = await self._reconnect(openid)
            if found is None:
                self._pushes_shown = False
                self.say("（无法再读取推送消息：服务器的演示发送接口不可用。）")
                return
            for message in found:
                self._after = max(self._after, int(message["id"]))
                self.say(_indent(PUSH, str(message.get("content", ""))))

    async def _reconnect(self, openid: str) -> list[dict[str, Any]] | None:
        """Wait for the server to answer again; the messages pushed since. A restarted server's fake
        send API counts its messages from 1 again: then everything it holds is new."""
        self.say(f"（与服务器 {self._where} 的连接断开了，正在重新连接…）")
        delay = RECONNECT_FIRST
        while True:
            await asyncio.sleep(delay)
            try:
                found = await self._fetch(openid, 0, 0.0)
            except ChatError:
                delay = min(delay * 2, RECONNECT_MAX)
                continue
            self.say("（已重新连上服务器。）")
            if found is None:
                return None
            if max((int(m["id"]) for m in found), default=0) < self._after:  # restarted: its count began anew
                self._after = 0
            return [m for m in found if int(m["id"]) > self._after]


def _parse_location(text: str) -> tuple[float, float, str] | None:
    """`纬度 经度 [地址]` (spaces or commas between) → (lat, lng, label); None when it is not one."""
    parts = _NUMBER_SEPARATORS.split(text.strip(), maxsplit=2)
    if len(parts) < 2:
        return None
    try:
        lat, lng = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return None
    return lat, lng, parts[2] if len(parts) > 2 else ""


async def run_chat(
    *,
    url: str,
    token: str,
    org_file: str,
    openid: str | None = None,
    read_line: LineSource | None = None,
    out: Output = _print,
) -> int:
    """The `gridbot chat` command: a session on standard input and output. Raises ChatError."""
    base = normalize_url(url)
    interactive = read_line is None and sys.stdin.isatty() and sys.stdout.isatty()
    async with aiohttp.ClientSession() as http:
        session = ChatSession(
            http,
            url=str(base),
            token=token,
            people=load_people(org_file),
            read_line=read_line or StdinLines(),
            out=out,
            prompt=interactive,
        )
        code = await session.run(openid)
    out("再见。")
    return code
