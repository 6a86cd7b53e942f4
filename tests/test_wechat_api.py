"""Our async WeChat client against the local fake: shared tokens, bounded refresh, error mapping."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.tencent.wechat_api import (
    OutOfWindow,
    QuotaExceeded,
    Retryable,
    SendRejected,
    TokenError,
    WeChatAPI,
    WeChatAPIError,
)
from storage.state import MemoryState, RedisState, StateStore
from tests.fake_helpers import APP_ID, APP_SECRET, Clock, FakeServer, make_api, start_fake

ServerFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def wx(aiohttp_server: ServerFactory) -> FakeServer:
    return await start_fake(aiohttp_server)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# --- the access token ----------------------------------------------------------------------------


async def test_token_fetched_once_and_shared_by_two_clients(
    state: StateStore, wx: FakeServer, http: aiohttp.ClientSession
) -> None:
    first, second = make_api(http, wx, state), make_api(http, wx, state)
    tokens = await asyncio.gather(*(api.access_token() for api in [first, second] * 5))
    assert len(set(tokens)) == 1
    assert wx.fake.token_fetches == 1
    assert await state.get_token(APP_ID) == tokens[0]
    await second.send_text("oResident1", "您的工单 #1 已受理")
    await first.send_text("oResident1", "您的工单 #1 已派单")
    assert wx.fake.token_fetches == 1
    assert [m["content"] for m in wx.fake.delivered("oResident1")] == [
        "您的工单 #1 已受理",
        "您的工单 #1 已派单",
    ]
    if isinstance(state, RedisState):  # cached for expires_in − 300 s
        ttl_ms = await state.client.pttl(f"{state.prefix}token:{APP_ID}")
        assert 6_890_000 < ttl_ms <= 6_900_000


async def test_token_is_refetched_five_minutes_before_it_expires(
    aiohttp_server: ServerFactory, http: aiohttp.ClientSession
) -> None:
    wx = await start_fake(aiohttp_server, expires_in=400)
    mono, clock = Clock(1000.0), Clock()
    api = make_api(http, wx, MemoryState(clock=mono), clock=clock)
    token = await api.access_token()
    assert api.token_expires_at == clock.now + 100
    mono.advance(99)
    assert await api.access_token() == token
    mono.advance(2)
    assert await api.access_token() != token
    assert wx.fake.token_fetches == 2


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
async def test_stale_token_is_refreshed_once_and_the_call_retried_once(
    errcode: int, state: StateStore, wx: FakeServer, http: aiohttp.ClientSession
) -> None:
    api = make_api(http, wx, state)
    old = await api.access_token()
    if errcode == 42001:
        wx.fake.expire_tokens()
    else:
        wx.fake.fail_next(None, errcode)
    await api.send_text("oResident1", "您的工单 #3 已办结")
    assert wx.fake.token_fetches == 2
    assert wx.fake.send_requests == 2
    assert [m["content"] for m in wx.fake.messages] == ["您的工单 #3 已办结"]
    assert await state.get_token(APP_ID) not in (None, old)


async def test_a_second_token_error_is_not_retried(
    state: StateStore, wx: FakeServer, http: aiohttp.ClientSession
) -> None:
    api = make_api(http, wx, state)
    wx.fake.fail_next(None, 40001, times=100)
    with pytest.raises(TokenError) as caught:
        await api.send_text("oResident1", "x")
    assert caught.value.errcode == 40001
    assert (wx.fake.send_requests, wx.fake.token_fetches) == (2, 2)
    with pytest.raises(TokenError):
        await api.send_text("oResident1", "x")
    assert (wx.fake.send_requests, wx.fake.token_fetches) == (4, 3)  # each call: one refresh, one retry
    assert wx.fake.messages == []


async def test_many_callers_seeing_a_stale_token_refresh_it_once(
    state: StateStore, wx: FakeServer, http: aiohttp.ClientSession
) -> None:
    first, second = make_api(http, wx, state), make_api(http, wx, state)
    await first.access_token()
    wx.fake.expire_tokens()
    await asyncio.gather(*(api.send_text(f"o{i}", f"通知 {i}") for i, api in enumerate([first, second] * 4)))
    assert wx.fake.token_fetches == 2
    assert len(wx.fake.messages) == 8


async def test_bad_credentials_and_busy_token_endpoint(
    aiohttp_server: ServerFactory, http: aiohttp.ClientSession
) -> None:
    wx = await start_fake(aiohttp_server, app_secret="another-secret")
    api = make_api(http, wx, MemoryState())
    with pytest.raises(TokenError) as caught:
        await api.send_text("oResident1", "x")
    assert caught.value.errcode == 40125
    wx.fake.fail_token_next(-1)
    with pytest.raises(Retryable):
        await api.access_token()
    assert wx.fake.send_requests == 0


# --- error mapping --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "error"),
    [
        (45015, OutOfWindow),
        (45047, OutOfWindow),
        (45009, QuotaExceeded),
        (-1, Retryable),
        (40003, SendRejected),
        (43004, SendRejected),
    ],
)
async def test_errcodes_map_to_exceptions(
    errcode: int, error: type[WeChatAPIError], wx: FakeServer, http: aiohttp.ClientSession
) -> None:
    api = make_api(http, wx, MemoryState())
    wx.fake.fail_next("oResident1", errcode)
    with pytest.raises(error) as caught:
        await api.send_text("oResident1", "x")
    assert caught.value.errcode == errcode
    assert wx.fake.send_requests == 1  # none of these is retried inside the client
    await api.send_text("oResident1", "y")  # the fault was used up; the next send goes through
    assert [m["content"] for m in wx.fake.messages] == ["y"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("failure", ["http-503", "timeout", "refused"])
async def test_transport_failures_are_retryable_and_leak_nothing(
    failure: str, wx: FakeServer, http: aiohttp.ClientSession
) -> None:
    api = make_api(http, wx, MemoryState(), timeout=0.2)
    token = await api.access_token()
    if failure == "http-503":
        wx.fake.fail_next(None, 0, status=503)
    elif failure == "timeout":
        wx.fake.fail_next(None, 0, delay=1.0)
    else:
        api.api_base = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(Retryable) as caught:
        await api.send_text("oResident1", "x")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert token not in str(caught.value) and APP_SECRET not in str(caught.value)
    assert wx.fake.messages == []


async def test_unknown_host_is_retryable(http: aiohttp.ClientSession) -> None:
    api = WeChatAPI(
        http,
        api_base="http://gridbot-no-such-host.invalid",
        app_id=APP_ID,
        app_secret=APP_SECRET,
        state=MemoryState(),
    )
    with pytest.raises(Retryable):
        await api.access_token()


# --- what goes over the wire ------------------------------------------------------------------------


async def test_text_is_sent_as_utf8_json(wx: FakeServer, http: aiohttp.ClientSession) -> None:
    api = make_api(http, wx, MemoryState())
    await api.send_text("oResident1", "网格员已接单：筱塘新村 3 幢")
    raw = wx.fake.raw_bodies[-1]
    assert "网格员已接单：筱塘新村 3 幢".encode() in raw  # ensure_ascii=False: no \\u escapes
    assert wx.fake.messages[0]["body"] == {
        "touser": "oResident1",
        "msgtype": "text",
        "text": {"content": "网格员已接单：筱塘新村 3 幢"},
    }


async def test_template_message(wx: FakeServer, http: aiohttp.ClientSession) -> None:
    api = make_api(http, wx, MemoryState())
    data = {"first": {"value": "工单 #12 已受理"}, "remark": {"value": "请留意后续通知"}}
    msgid = await api.send_template("oResident1", "TPL-ORDER", data, url="https://example.org/o/12")
    [message] = wx.fake.messages
    assert msgid == message["id"]
    assert message["api"] == "template"
    assert (
        message["body"]["template_id"] == "TPL-ORDER" and message["body"]["url"] == "https://example.org/o/12"
    )
    assert message["content"] == "first: 工单 #12 已受理\nremark: 请留意后续通知"


async def test_secret_and_tokens_never_logged(
    caplog: pytest.LogCaptureFixture, wx: FakeServer, http: aiohttp.ClientSession
) -> None:
    caplog.set_level(logging.DEBUG)
    api = make_api(http, wx, MemoryState(), timeout=0.2)
    errors: list[str] = [repr(api)]
    await api.send_text("oResident1", "a")
    wx.fake.expire_tokens()
    await api.send_text("oResident1", "b")
    for setup in (
        lambda: wx.fake.fail_next(None, 40001, times=2),
        lambda: wx.fake.fail_next(None, 0, delay=1.0),
        lambda: wx.fake.fail_next(None, 45015),
    ):
        setup()
        with pytest.raises(WeChatAPIError) as caught:
            await api.send_text("oResident1", "c")
        errors.append(str(caught.value))
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("aiohttp")]
    assert any("42001" in line for line in ours)  # the errcode is what gets logged
    text = "\n".join(ours + errors)
    assert len(wx.fake.issued_tokens) == 3
    for secret in [APP_SECRET, *wx.fake.issued_tokens]:
        assert secret not in text


# --- the fake itself ------------------------------------------------------------------------------


async def test_fake_keeps_the_previous_token_valid_for_the_overlap(
    wx: FakeServer, http: aiohttp.ClientSession
) -> None:
    query = {"grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET}
    tokens = []
    for _ in range(3):
        async with http.get(f"{wx.api_base}/cgi-bin/token", params=query) as response:
            answer = await response.json()
            assert set(answer) == {"access_token", "expires_in"} and answer["expires_in"] == 7200
            tokens.append(answer["access_token"])
    body = {"touser": "o1", "msgtype": "text", "text": {"content": "hi"}}
    codes = []
    for token in [*tokens, "forged"]:
        url = f"{wx.api_base}/cgi-bin/message/custom/send"
        async with http.post(url, params={"access_token": token}, json=body) as response:
            codes.append((await response.json())["errcode"])
    assert codes == [0, 0, 0, 40001]
    wx.fake.expire_tokens()
    async with http.post(url, params={"access_token": tokens[-1]}, json=body) as response:
        assert (await response.json())["errcode"] == 42001


async def test_fake_wecom_send_and_message_feed(wx: FakeServer, http: aiohttp.ClientSession) -> None:
    base = wx.api_base
    async with http.get(
        f"{base}/cgi-bin/gettoken", params={"corpid": "wwfake0000000000", "corpsecret": "fake-corp-secret"}
    ) as response:
        answer = await response.json()
    assert answer["errcode"] == 0 and answer["expires_in"] == 7200
    token = {"access_token": answer["access_token"]}
    body: dict[str, Any] = {"touser": "chenjing|linwen", "msgtype": "text", "agentid": 1000002}
    body["text"] = {"content": "新工单 #5 待接单"}
    async with http.post(f"{base}/cgi-bin/message/send", params=token, json=body) as response:
        assert (await response.json())["errcode"] == 0
    async with http.post(
        f"{base}/cgi-bin/message/send", params=token, json={**body, "agentid": 9}
    ) as response:
        assert (await response.json())["errcode"] == 40056
    mp_query = {"grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET}
    async with http.get(f"{base}/cgi-bin/token", params=mp_query) as response:
        mp_token = (await response.json())["access_token"]
    async with http.post(
        f"{base}/cgi-bin/message/send", params={"access_token": mp_token}, json=body
    ) as response:
        assert (await response.json())["errcode"] == 40014  # an official-account token is not a WeCom one

    async def feed(**params: Any) -> list[dict[str, Any]]:
        async with http.get(f"{base}/fake/messages", params=params) as response:
            return list(await response.json())

    mine = await feed(touser="linwen", after=0)
    assert [(m["id"], m["api"], m["content"]) for m in mine] == [(2, "wecom", "新工单 #5 待接单")]
    assert await feed(touser="linwen", after=2) == []
    waiting = asyncio.create_task(feed(touser="linwen", after=2, wait=5))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    api = make_api(http, wx, MemoryState())
    await api.send_text("linwen", "请尽快处理")
    arrived = await asyncio.wait_for(waiting, 2)
    assert [m["content"] for m in arrived] == ["请尽快处理"]
    assert [m["id"] for m in await feed()] == [1, 2, 3]
