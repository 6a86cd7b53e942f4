"""`gridbot chat` against a real demo server on loopback: the whole story in two scripted sessions, the
identity menu, client commands, and the ways a server can be unusable (down, wrong token, not a demo)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot import keys
from bot.app import create_app
from bot.cli import main
from bot.config import DEMO_TOKEN, StorageSettings, WeComSettings, demo_settings
from bot.demo.chat import (
    BOT,
    PUSH,
    ChatError,
    ChatSession,
    StdinLines,
    choose,
    format_menu,
    load_people,
    menu_entries,
    normalize_url,
)
from bot.edge.wechat import Channel, EdgeError
from handlers import texts
from handlers.incoming import Incoming
from storage import outbox
from tests.conftest import AES_KEY, DEMO_ORG

ROOT = Path(__file__).resolve().parents[1]
LEADER = "oLeader-xiaotang-1"
PEOPLE = load_people(str(DEMO_ORG))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_demo(
    tmp_path: Path, port: int | None = None, **changes: Any
) -> AsyncIterator[tuple[str, web.Application]]:
    """`gridbot serve`'s demo app (with `changes` to its settings) really listening on loopback, its fake
    send API included; its URL and the app."""
    port = port or free_port()
    base = demo_settings()
    settings = replace(
        base,
        server=replace(base.server, host="127.0.0.1", port=port),
        storage=StorageSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"),
        **changes,
    )
    app = create_app(settings)
    # The fake's long polls must not hold up the shutdown at the end of the test.
    runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        await runner.cleanup()


@pytest.fixture
async def demo_server(tmp_path: Path) -> AsyncIterator[str]:
    async with serve_demo(tmp_path) as (url, _):
        yield url


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Terminal:
    """One scripted `gridbot chat`: lines go in through a queue, everything printed is kept."""

    def __init__(
        self, http: aiohttp.ClientSession, url: str, *, openid: str | None = None, token: str = DEMO_TOKEN
    ) -> None:
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        self.printed: list[str] = []
        self.session = ChatSession(
            http, url=url, token=token, people=PEOPLE, read_line=self.lines.get, out=self.printed.append
        )
        self.task = asyncio.create_task(self.session.run(openid))
        self.seen = 0  # how much of `printed` the test has looked at

    def type(self, line: str) -> None:
        self.lines.put_nowait(line)

    async def shows(self, wanted: Callable[[str], bool], within: float = 5.0) -> str:
        """The next printed entry (after the last one found) that `wanted` accepts; fails after `within` s."""
        async with asyncio.timeout(within):
            while True:
                for index in range(self.seen, len(self.printed)):
                    if wanted(self.printed[index]):
                        self.seen = index + 1
                        return self.printed[index]
                if self.task.done():
                    self.task.result()  # raises what ended the session
                    raise AssertionError(f"session ended; printed:\n{self.text}")
                await asyncio.sleep(0.01)

    async def reply(self, within: float = 5.0) -> str:
        """The next passive reply, without its prefix."""
        return (await self.shows(lambda e: e.startswith(BOT), within)).removeprefix(BOT)

    async def push(self, needle: str, within: float = 5.0) -> str:
        """The next pushed message containing `needle`."""
        return await self.shows(lambda e: e.startswith(PUSH) and needle in e, within)

    async def close(self) -> int:
        """Ctrl-D: end of input; the session's exit code."""
        self.lines.put_nowait(None)
        return await asyncio.wait_for(self.task, 5)

    @property
    def text(self) -> str:
        return "\n".join(self.printed)


def flat(entry: str) -> str:
    """A printed entry with its continuation-line indent removed."""
    return re.sub(r"\n +", "\n", entry)


class TestTheStoryInTwoTerminals:
    async def test_report_accept_resolve_rate(self, demo_server: str, http: aiohttp.ClientSession) -> None:
        resident = Terminal(http, demo_server)
        leader = Terminal(http, demo_server)
        await resident.shows(lambda e: e.startswith("你是谁？") and "吴永福，网格长，筱塘社区第一网格" in e)
        resident.type("0")
        await resident.shows(lambda e: e.startswith("没有这个选项：0"))
        resident.type("1")
        me = await resident.shows(lambda e: e.startswith("你现在是：居民"))
        openid = re.search(r"\((oResident-[0-9a-f]{4})\)", me)
        assert openid is not None
        await resident.shows(lambda e: "/位置 纬度 经度" in e and "/身份" in e and "/退出" in e)
        assert flat(await resident.reply()) == texts.WELCOME  # the subscribe event's answer

        leader.type(LEADER)  # an openid instead of a number
        await leader.shows(lambda e: e == f"你现在是：吴永福，网格长，筱塘社区第一网格 ({LEADER})")

        resident.type("筱塘新村3号楼楼道灯坏了")
        assert "工单号 #1" in await resident.reply()
        notice = await leader.push("新工单")
        assert "#1" in notice and "接单 1" in notice and "楼道灯坏了" in notice

        leader.type("接单 1")
        assert "已接单" in await leader.reply()
        assert "接单" in await resident.push("工单 #1")
        leader.type("办结 1 灯已更换")
        assert "已办结" in await leader.reply()
        resolved = flat(await resident.push("已办结"))
        assert "灯已更换" in resolved and "1 满意" in resolved

        resident.type("1")
        assert await resident.reply() == texts.RATE_THANKS.format(rating="满意", n=1)
        assert "满意" in await leader.push("评价")

        assert await resident.close() == 0 and await leader.close() == 0
        assert "欢迎关注" not in leader.text  # staff are not subscribed
        assert "无法显示推送" not in resident.text + leader.text

    async def test_earlier_pushes_are_shown_when_a_session_starts(
        self, demo_server: str, http: aiohttp.ClientSession
    ) -> None:
        resident = Terminal(http, demo_server, openid="oResident-early")
        await resident.reply()
        resident.type("筱塘市场门口的井盖松动了")
        assert "工单号 #1" in await resident.reply()
        await resident.close()
        fake = f"{demo_server}/fake-wechat/fake/messages"
        async with http.get(fake, params={"touser": LEADER, "wait": "5"}) as delivered:
            assert len(await delivered.json()) == 1  # the notice is out before the leader looks
        leader = Terminal(http, demo_server, openid=LEADER)
        await leader.shows(lambda e: e == "之前推送给你的消息：")
        assert "接单 1" in await leader.push("新工单")
        await leader.close()


async def test_the_demo_keeps_wecom_notices_on_its_own_fake(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    wecom = WeComSettings(corp_id="wwdemo", agent_id=1000002, secret="s", token="t", encoding_aes_key=AES_KEY)
    async with serve_demo(tmp_path, wecom=wecom) as (url, app):
        async with app[keys.SESSIONS]() as session, session.begin():
            await outbox.enqueue(
                session,
                send_key="demo-wecom",
                channel="wecom",
                recipient="party-xiaotang-1",
                text="新工单 #9",
            )
        app[keys.OUTBOX].wake()
        params = {"touser": "party-xiaotang-1", "wait": "5"}
        async with http.get(f"{url}/fake-wechat/fake/messages", params=params) as delivered:
            assert [m["content"] for m in await delivered.json()] == ["新工单 #9"]


class TestClientCommands:
    async def test_location_photo_and_voice_reach_the_bot_as_such(
        self, demo_server: str, http: aiohttp.ClientSession
    ) -> None:
        resident = Terminal(http, demo_server, openid="oResident-where")
        await resident.reply()
        resident.type("路灯坏了一排")
        assert await resident.reply() == texts.ASK_PLACE
        resident.type("/位置 北边")
        await resident.shows(lambda e: e.startswith("用法：/位置"))
        resident.type("/位置 25.4160，119.0241 木兰溪边")  # a location message answers "where?"
        answer = await resident.reply()
        assert "工单号 #1" in answer and "木兰社区第二网格党支部" in answer
        resident.type("/图片")
        assert "#1" in await resident.reply()  # the photo joins the order just reported
        resident.type("、帮助")  # a Chinese IME's slash
        await resident.shows(lambda e: e.startswith("本客户端的命令"))
        resident.type("/不存在")
        await resident.shows(lambda e: e.startswith("没有 /不存在 这个命令"))
        resident.type("/退出")
        assert await asyncio.wait_for(resident.task, 5) == 0
        assert resident.text.count(BOT) == 4  # welcome, ASK_PLACE, the order, the photo: nothing else sent

    async def test_a_restarted_server_is_waited_for_and_the_chat_goes_on(
        self, tmp_path: Path, http: aiohttp.ClientSession
    ) -> None:
        port = free_port()
        async with serve_demo(tmp_path, port=port) as (url, _):
            term = Terminal(http, url, openid="oResidentChat")
            assert (await term.reply()).startswith("您好，欢迎关注")  # the follow
            term.type("你好")
            assert (await term.reply()).startswith("您好！")
        # The server stops: the session waits for it instead of ending.
        await term.shows(lambda e: "正在重新连接" in e, within=35)
        assert not term.task.done()
        async with serve_demo(tmp_path, port=port):
            await term.shows(lambda e: "已重新连上" in e, within=15)
            term.type("筱塘新村3号楼楼道灯坏了")
            assert (await term.reply()).startswith("已受理")
            assert await term.close() == 0

    async def test_switching_identity(self, demo_server: str, http: aiohttp.ClientSession) -> None:
        term = Terminal(http, demo_server, openid="oResident-switch")
        await term.reply()
        term.type("/身份")
        await term.shows(lambda e: e.startswith("你是谁？"))
        term.type("oAdmin-xiaotang")
        await term.shows(lambda e: e == "你现在是：黄丹，社区管理员，筱塘社区 (oAdmin-xiaotang)")
        term.type("帮助")
        assert "指令" in await term.reply()  # the staff help, not the residents'
        assert await term.close() == 0


class TestMenu:
    def test_entries_and_their_description(self) -> None:
        entries = menu_entries(PEOPLE)
        assert entries[0].resident and re.fullmatch(r"oResident-[0-9a-f]{4}", entries[0].openid)
        assert len(entries) == 41
        menu = format_menu(entries).splitlines()
        assert menu[0] == "你是谁？" and menu[1].strip() == "1. 居民（新的微信用户）"
        assert "吴永福，网格长，筱塘社区第一网格 (oLeader-xiaotang-1)" in "\n".join(menu)
        assert "柯伟，部门联系人，筱塘社区 (oProp-wanhui)" in "\n".join(menu)

    def test_a_number_an_openid_or_nothing(self) -> None:
        entries = menu_entries(PEOPLE)
        leader_number = next(i for i, e in enumerate(entries, 1) if e.openid == LEADER)
        assert choose(f" {leader_number} ", entries) == entries[leader_number - 1]
        assert choose("1", entries) == choose("", entries) == entries[0]
        by_openid = choose("oProp-wanhui", entries)
        assert by_openid is not None and (by_openid.role, by_openid.name) == ("department_contact", "柯伟")
        stranger = choose("oSomeoneElse", entries)
        assert stranger is not None and stranger.resident and stranger.openid == "oSomeoneElse"
        assert choose("0", entries) is None and choose("42", entries) is None
        assert choose("two words", entries) is None

    def test_no_org_file_means_residents_only(self, tmp_path: Path) -> None:
        assert load_people("") == [] and load_people(str(tmp_path / "missing.toml")) == []

    def test_urls(self) -> None:
        assert str(normalize_url("127.0.0.1:8080")) == "http://127.0.0.1:8080/"
        assert str(normalize_url("http://127.0.0.1:8080/wechat/")) == "http://127.0.0.1:8080/"
        assert str(normalize_url("https://bot.example/gridbot/wechat")) == "https://bot.example/gridbot"
        with pytest.raises(ChatError):
            normalize_url("ftp://x")


class TestUnusableServers:
    async def test_a_wrong_token_is_explained(self, demo_server: str, http: aiohttp.ClientSession) -> None:
        term = Terminal(http, demo_server, openid="oResident-token", token="not-the-token")
        with pytest.raises(ChatError, match=r"403.*token"):
            await asyncio.wait_for(term.task, 5)

    async def test_a_server_that_is_not_running(self, http: aiohttp.ClientSession) -> None:
        term = Terminal(http, f"http://127.0.0.1:{free_port()}", openid="oX")
        with pytest.raises(ChatError, match=r"无法连接到.*gridbot serve"):
            await asyncio.wait_for(term.task, 5)

    def test_the_command_exits_2_with_one_line(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.chdir(tmp_path)  # no ./config.toml: the demo settings
        assert main(["chat", "--url", f"http://127.0.0.1:{free_port()}", "--as", "oX"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("gridbot: 无法连接到")

    async def test_without_the_fake_send_api_replies_still_work(
        self, aiohttp_server: Any, http: aiohttp.ClientSession
    ) -> None:
        """A server with `/wechat` only (not a demo): it says once that pushes can't be shown, goes on,
        and what it sends verifies as a signed plaintext push."""
        received: list[Incoming] = []
        channel = Channel(name="wechat", token=DEMO_TOKEN)

        async def push(request: web.Request) -> web.Response:
            try:
                incoming = channel.decode(request.query, await request.read())
            except EdgeError as error:
                return web.Response(status=error.status, text=error.reason)
            received.append(incoming)
            answer = f"收到{incoming.kind}" + (f"：{incoming.text}" if incoming.text else "")
            return web.Response(text=channel.render_reply(incoming, answer, request.query))

        app = web.Application()
        app.router.add_post("/wechat", push)
        server = await aiohttp_server(app)
        term = Terminal(http, f"http://127.0.0.1:{server.port}/wechat", openid="oResident-plain")
        assert await term.reply() == "收到event"
        term.type("你好")
        assert await term.reply() == "收到text：你好"
        term.type("/语音 楼下很吵")
        assert await term.reply() == "收到voice：楼下很吵"
        term.type("/位置 25.431 119.007 筱塘新村")
        assert await term.reply() == "收到location"
        assert await term.close() == 0
        assert term.text.count("无法显示推送") == 1
        assert [(m.kind, m.sender) for m in received] == [
            ("event", "oResident-plain"),
            ("text", "oResident-plain"),
            ("voice", "oResident-plain"),
            ("location", "oResident-plain"),
        ]
        assert received[0].event == "subscribe"
        assert (received[3].location, received[3].label) == ((25.431, 119.007), "筱塘新村")


class TestTheRealCommand:
    async def test_piped_input_in_a_real_process(self, demo_server: str, tmp_path: Path) -> None:
        """`printf … | gridbot chat --as …`: the lines are sent, the replies printed, exit 0 at the end."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "chat",
            "--url",
            demo_server,
            "--as",
            "oResident-pipe",
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        script = "筱塘新村3号楼楼道灯坏了\n/位置 25.4310 119.0070\n"
        out, err = await asyncio.wait_for(process.communicate(script.encode()), 30)
        lines = out.decode().splitlines()
        assert process.returncode == 0, err.decode()
        assert lines[0] == "你现在是：居民 (oResident-pipe)"
        assert lines[2].startswith("机器人：您好，欢迎关注")
        assert any(line.startswith("机器人：已受理，工单号 #1") for line in lines)
        assert any(line.startswith("机器人：位置已收到") for line in lines)
        assert lines[-1] == "再见。" and "Traceback" not in err.decode()


class TestStdin:
    async def test_lines_from_a_pipe_then_the_end(self) -> None:
        read_fd, write_fd = os.pipe()
        os.write(write_fd, "接单 1\r\n办结 1 灯已更换\n最后一行".encode())
        os.close(write_fd)
        lines = StdinLines(read_fd, "utf-8")
        got = [await asyncio.wait_for(lines(), 5) for _ in range(5)]
        os.close(read_fd)
        assert got == ["接单 1", "办结 1 灯已更换", "最后一行", None, None]
