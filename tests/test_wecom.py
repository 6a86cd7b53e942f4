"""WeCom (企业微信) for staff: the `/wecom` edge, the app-message client, and the staff flow from WeCom.

Pushes are built the way WeCom builds them (wechatpy's enterprise crypto), replies are opened the same
way; notices are read from the local fake's `/cgi-bin/message/send`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import string
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import xmltodict
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.utils import to_text

from bot.app import create_app
from bot.config import Settings, WeComSettings
from bot.demo.wechat_client import cdata
from bot.edge.wechat import sign
from bot.tencent.wechat_api import QuotaExceeded, Retryable, SendRejected, TokenError
from bot.tencent.wecom_api import MAX_TEXT_BYTES, WeComAPI, WeComSender, cap_text
from handlers.texts import WECOM_STAFF_ONLY
from storage.db import session_factory
from storage.models import InboundMessage, OutboxMessage, WorkOrder, WorkOrderEvent
from storage.state import MemoryState, StateStore
from tests.conftest import DEMO_ORG
from tests.fake_helpers import APP_ID, Clock, FakeServer, eventually, make_api
from tests.wechat_sim import WeChatPlatform, message_xml, text_xml

# The fake's WeCom defaults (bot/demo/fake_wechat.py).
CORP_ID = "wwfake0000000000"
CORP_SECRET = "fake-corp-secret"
AGENT_ID = 1000002
WECOM_TOKEN = "wecom-callback-token"
WECOM_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"

RESIDENT = "oResidentW"
LEADER = "oLeader-xiaotang-1"
PARTY = "oParty-xiaotang-1"
PARTY_WECOM = "party-xiaotang-1"
LEADER_WECOM = "leader-xiaotang-1"
REPORT = "筱塘新村3号楼2单元楼道灯坏了好几天，晚上很黑"


# --- playing WeCom ---------------------------------------------------------------------------------


@dataclass
class WeComReply:
    status: int
    body: str
    fields: dict[str, Any] | None  # the decrypted reply's fields; None for `success` or a refusal

    @property
    def content(self) -> str | None:
        return None if self.fields is None else self.fields.get("Content")


class WeComPlatform:
    """Sends encrypted pushes to `/wecom` and opens the encrypted replies, with wechatpy's enterprise crypto."""

    def __init__(self, client: Any, *, clock: Callable[[], float]) -> None:
        self.client = client
        self.clock = clock
        self.crypto = WeChatCrypto(WECOM_TOKEN, WECOM_AES_KEY, CORP_ID)

    def _nonce(self) -> str:
        return "".join(random.choices(string.digits, k=10))

    def envelope(self, inner_xml: str, *, agent_id: int = AGENT_ID) -> tuple[dict[str, str], str]:
        """The query and body WeCom posts: `<xml><ToUserName/><AgentID/><Encrypt/></xml>`, signed."""
        timestamp, nonce = str(int(self.clock())), self._nonce()
        sealed = xmltodict.parse(self.crypto.encrypt_message(inner_xml, nonce, timestamp))["xml"]
        query = {"msg_signature": sealed["MsgSignature"], "timestamp": timestamp, "nonce": nonce}
        body = (
            f"<xml><ToUserName>{cdata(CORP_ID)}</ToUserName><AgentID>{cdata(str(agent_id))}</AgentID>"
            f"<Encrypt>{cdata(sealed['Encrypt'])}</Encrypt></xml>"
        )
        return query, body

    async def post(self, query: dict[str, str], body: str | bytes) -> WeComReply:
        response = await self.client.post("/wecom", params=query, data=body)
        text = await response.text()
        fields = self.open_reply(query, text) if response.status == 200 else None
        return WeComReply(response.status, text, fields)

    def open_reply(self, query: dict[str, str], text: str) -> dict[str, Any] | None:
        if text in ("", "success"):
            return None
        envelope = xmltodict.parse(text)["xml"]
        assert envelope["Nonce"] == query["nonce"]
        inner = self.crypto.decrypt_message(
            text, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"]
        )
        return dict(xmltodict.parse(to_text(inner))["xml"])

    async def say(
        self, userid: str, content: str, *, agent_id: int = AGENT_ID, msg_id: str | None = None
    ) -> WeComReply:
        inner = message_xml(
            "text",
            userid,
            {"Content": content, "AgentID": agent_id},
            account=CORP_ID,
            create_time=int(self.clock()),
            msg_id=msg_id,
        )
        return await self.post(*self.envelope(inner, agent_id=agent_id))

    def echo_query(self, plain: str) -> dict[str, str]:
        """The URL-verification query: an encrypted echostr, signed with msg_signature."""
        timestamp, nonce = str(int(self.clock())), self._nonce()
        key = base64.b64decode(WECOM_AES_KEY + "=")
        echostr = to_text(PrpCrypto(key).encrypt(plain, CORP_ID))
        return {
            "msg_signature": sign(WECOM_TOKEN, timestamp, nonce, echostr),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": echostr,
        }


# --- fixtures ----------------------------------------------------------------------------------------


def wecom_settings(api_base: str) -> WeComSettings:
    return WeComSettings(
        corp_id=CORP_ID,
        agent_id=AGENT_ID,
        secret=CORP_SECRET,
        token=WECOM_TOKEN,
        encoding_aes_key=WECOM_AES_KEY,
        api_base=api_base,
    )


def org_with_leader_on_wecom(tmp_path: Path) -> Path:
    """The demo org, with the first grid's leader also given a WeCom id."""
    block = 'openid = "oLeader-xiaotang-1"\nname = "吴永福"\nrole = "grid_leader"\nunit = "xiaotang-1"\n'
    text = DEMO_ORG.read_text(encoding="utf-8")
    assert block in text
    path = tmp_path / "org.toml"
    path.write_text(text.replace(block, block + f'wecom_userid = "{LEADER_WECOM}"\n'), encoding="utf-8")
    return path


StartBoth = Callable[..., Awaitable[tuple[WeChatPlatform, WeComPlatform]]]


@pytest.fixture
def start_both(settings: Settings, state: StateStore, fake_api: FakeServer, aiohttp_client: Any) -> StartBoth:
    """The app with `[wecom]` set up against the fake: the official account (plain) and the WeCom app."""

    async def go(*, org: Path | None = None) -> tuple[WeChatPlatform, WeComPlatform]:
        clock = Clock(time.time())
        app_settings = replace(settings, wecom=wecom_settings(fake_api.api_base))
        if org is not None:
            app_settings = replace(app_settings, org=replace(settings.org, file=str(org)))
        client = await aiohttp_client(create_app(app_settings, clock=clock, state=state))
        wechat = WeChatPlatform(client, token=settings.wechat.token, app_id=APP_ID, clock=clock)
        return wechat, WeComPlatform(client, clock=clock)

    return go


def wecom_texts(fake_api: FakeServer, userid: str) -> list[str]:
    return [m["content"] for m in fake_api.fake.delivered(userid) if m["api"] == "wecom"]


def custom_texts(fake_api: FakeServer, openid: str) -> list[str]:
    return [m["content"] for m in fake_api.fake.delivered(openid) if m["api"] == "custom"]


async def wait_for(read: Callable[[], list[str]], count: int) -> list[str]:
    await eventually(lambda: len(read()) >= count)
    return read()


async def count_rows(engine: AsyncEngine, model: type[Any]) -> int:
    async with session_factory(engine)() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


# --- the edge: verification, replies, refusals ---------------------------------------------------------


@pytest.mark.usefixtures("backend")
class TestEdge:
    async def test_url_verification_answers_the_decrypted_echostr(self, start_both: StartBoth) -> None:
        _, wecom = await start_both()
        query = wecom.echo_query("5927782489442352469")
        response = await wecom.client.get("/wecom", params=query)
        assert response.status == 200
        assert await response.text() == "5927782489442352469"

        bad = query | {"msg_signature": "0" * 40}
        assert (await wecom.client.get("/wecom", params=bad)).status == 403
        # Signed correctly, but not something our key encrypted.
        garbage = "bm90IGFuIGVuY3J5cHRlZCBlY2hvc3Ry"
        signed = query | {"echostr": garbage}
        signed["msg_signature"] = sign(WECOM_TOKEN, query["timestamp"], query["nonce"], garbage)
        assert (await wecom.client.get("/wecom", params=signed)).status == 400
        # The official-account check (plain signature over token, timestamp, nonce) is not enough here.
        plain = {k: query[k] for k in ("timestamp", "nonce", "echostr")}
        plain["signature"] = sign(WECOM_TOKEN, query["timestamp"], query["nonce"])
        assert (await wecom.client.get("/wecom", params=plain)).status == 403

    async def test_a_staff_text_gets_an_encrypted_passive_reply(
        self, start_both: StartBoth, engine: AsyncEngine
    ) -> None:
        _, wecom = await start_both()
        reply = await wecom.say(PARTY_WECOM, "待办")
        assert reply.status == 200
        envelope = xmltodict.parse(reply.body)["xml"]
        assert set(envelope) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}  # nothing in the clear
        assert reply.fields is not None
        assert (reply.fields["ToUserName"], reply.fields["FromUserName"]) == (PARTY_WECOM, CORP_ID)
        assert reply.fields["MsgType"] == "text" and reply.content
        assert "待办" not in reply.body and (reply.content or "") not in reply.body
        async with session_factory(engine)() as session:
            stored = (await session.scalars(select(InboundMessage))).one()
        assert (stored.channel, stored.sender, stored.text) == ("wecom", PARTY_WECOM, "待办")
        assert stored.reply == reply.content

    async def test_a_tampered_or_foreign_push_is_refused(
        self, start_both: StartBoth, engine: AsyncEngine
    ) -> None:
        _, wecom = await start_both()
        inner = text_xml(PARTY_WECOM, "待办", account=CORP_ID, create_time=int(wecom.clock()))
        query, body = wecom.envelope(inner.replace("</xml>", f"<AgentID>{AGENT_ID}</AgentID></xml>"))
        assert (await wecom.post(query | {"msg_signature": "f" * 40}, body)).status == 403
        assert (await wecom.post(query, "<xml><Encrypt>not-xml")).status == 400
        assert (await wecom.post(query, b"\xff\xfe garbage")).status == 400
        assert (await wecom.post(query | {"timestamp": "1000"}, body)).status == 403
        # Another app of the same corp (same callback token and key): not ours.
        foreign = await wecom.say(PARTY_WECOM, "待办", agent_id=AGENT_ID + 1)
        assert (foreign.status, foreign.fields) == (403, None)
        assert await count_rows(engine, InboundMessage) == 0
        assert (await wecom.post(query, body)).status == 200  # the untampered push is fine

    async def test_someone_not_in_the_org_is_told_the_app_is_for_staff(
        self, start_both: StartBoth, engine: AsyncEngine, fake_api: FakeServer
    ) -> None:
        _, wecom = await start_both()
        reply = await wecom.say("zhangsan", REPORT)
        assert reply.content == WECOM_STAFF_ONLY
        assert (await wecom.say("zhangsan", "接单 1")).content == WECOM_STAFF_ONLY
        assert (await wecom.say("zhangsan", "帮助")).content == WECOM_STAFF_ONLY
        assert await count_rows(engine, WorkOrder) == 0
        assert await count_rows(engine, OutboxMessage) == 0
        # A listed person's openid is not a WeCom userid either.
        assert (await wecom.say(PARTY, "待办")).content == WECOM_STAFF_ONLY

    async def test_the_same_msgid_on_both_channels_is_two_messages(
        self, start_both: StartBoth, engine: AsyncEngine
    ) -> None:
        wechat, wecom = await start_both()
        resident = await wechat.say(RESIDENT, REPORT, msg_id="4242")
        assert (resident.content or "").startswith("已受理，工单号 #1")
        staff = await wecom.say(PARTY_WECOM, "接单 1", msg_id="4242")
        assert "已接单" in (staff.content or "")
        again = await wecom.say(PARTY_WECOM, "接单 1", msg_id="4242")  # WeCom redelivers
        assert again.content == staff.content
        async with session_factory(engine)() as session:
            rows = (await session.scalars(select(InboundMessage).order_by(InboundMessage.id))).all()
        assert [(r.channel, r.dedupe_key) for r in rows] == [("wechat", "4242"), ("wecom", "4242")]


async def test_wecom_is_off_unless_configured(start: Any) -> None:
    client, wechat = await start()
    assert (await client.get("/wecom", params={"echostr": "x"})).status == 404
    assert (await client.post("/wecom", data="<xml/>")).status == 404
    assert (await wechat.say(RESIDENT, "帮助")).status == 200


# --- the staff flow from WeCom -------------------------------------------------------------------------


@pytest.mark.usefixtures("backend")
class TestStaffOnWeCom:
    async def test_a_leader_on_wecom_gets_the_order_and_handles_it_there(
        self, start_both: StartBoth, engine: AsyncEngine, fake_api: FakeServer, tmp_path: Path
    ) -> None:
        wechat, wecom = await start_both(org=org_with_leader_on_wecom(tmp_path))
        created = await wechat.say(RESIDENT, REPORT)
        assert (created.content or "").startswith("已受理，工单号 #1（设施维修）")

        (notice,) = await wait_for(lambda: wecom_texts(fake_api, LEADER_WECOM), 1)
        assert "#1" in notice and "楼道灯坏了" in notice and "接单 1" in notice
        assert custom_texts(fake_api, LEADER) == [] and custom_texts(fake_api, LEADER_WECOM) == []
        sent = next(m for m in fake_api.fake.messages if m["touser"] == LEADER_WECOM)
        assert sent["body"]["agentid"] == AGENT_ID and sent["body"]["msgtype"] == "text"
        assert sent["body"]["enable_duplicate_check"] == 1
        assert sent["body"]["duplicate_check_interval"] == 1800

        accepted = await wecom.say(LEADER_WECOM, "接单 1")
        assert "已接单" in (accepted.content or "") and "进展 1" in (accepted.content or "")
        assert "接单" in (await wait_for(lambda: custom_texts(fake_api, RESIDENT), 1))[0]

        noted = await wecom.say(LEADER_WECOM, "进展 #1 已联系电工，明天上午更换")
        assert "进展已记录" in (noted.content or "")
        assert "已联系电工" in (await wait_for(lambda: custom_texts(fake_api, RESIDENT), 2))[1]

        done = await wecom.say(LEADER_WECOM, "办结 ＃１ 灯已更换")
        assert "已办结" in (done.content or "")
        resolved = (await wait_for(lambda: custom_texts(fake_api, RESIDENT), 3))[2]
        assert "灯已更换" in resolved and "1 满意" in resolved

        await wechat.say(RESIDENT, "1")
        rated = (await wait_for(lambda: wecom_texts(fake_api, LEADER_WECOM), 2))[1]
        assert "满意" in rated
        assert custom_texts(fake_api, LEADER) == []  # everything for the leader went through WeCom

        async with session_factory(engine)() as session:
            order = await session.get(WorkOrder, 1)
            actors = (
                await session.scalars(
                    select(WorkOrderEvent.actor)
                    .where(WorkOrderEvent.kind.in_(["accept", "progress", "resolve"]))
                    .order_by(WorkOrderEvent.id)
                )
            ).all()
            outbox = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
        assert order is not None and (order.state, order.assignee_openid) == ("closed", LEADER)
        assert list(actors) == [LEADER, LEADER, LEADER]  # the person, not their WeCom id
        assert {(m.channel, m.recipient) for m in outbox} >= {("wecom", LEADER_WECOM), ("wechat", RESIDENT)}
        assert all(m.status == "sent" for m in outbox)

    async def test_the_party_member_takes_the_order_from_wecom(
        self, start_both: StartBoth, engine: AsyncEngine, fake_api: FakeServer
    ) -> None:
        wechat, wecom = await start_both()
        await wechat.say(RESIDENT, REPORT)
        assert "接单 1" in (await wait_for(lambda: custom_texts(fake_api, LEADER), 1))[0]

        accepted = await wecom.say(PARTY_WECOM, "接单 1")
        assert "已接单" in (accepted.content or "")
        assert "王建国" in (await wait_for(lambda: custom_texts(fake_api, RESIDENT), 1))[0]
        done = await wecom.say(PARTY_WECOM, "办结 1 灯已更换")
        assert "已办结" in (done.content or "")
        assert "灯已更换" in (await wait_for(lambda: custom_texts(fake_api, RESIDENT), 2))[1]

        await wechat.say(RESIDENT, "评价 1 满意")
        (rated,) = await wait_for(lambda: wecom_texts(fake_api, PARTY_WECOM), 1)
        assert "满意" in rated and "#1" in rated
        assert custom_texts(fake_api, PARTY) == []
        async with session_factory(engine)() as session:
            order = await session.get(WorkOrder, 1)
        assert order is not None and (order.state, order.assignee_openid) == ("closed", PARTY)
        # A resident cannot use staff words on the official account by knowing the WeCom id.
        refused = await wechat.say(PARTY_WECOM, "接单 1")
        assert "工作人员指令" in (refused.content or "")


# --- the client and the sender -------------------------------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_wecom(http: aiohttp.ClientSession, fake_api: FakeServer, state: StateStore, **kw: Any) -> WeComAPI:
    options: dict[str, Any] = {
        "api_base": fake_api.api_base,
        "corp_id": CORP_ID,
        "secret": CORP_SECRET,
        "agent_id": AGENT_ID,
        "state": state,
        **kw,
    }
    return WeComAPI(http, **options)


async def test_one_token_per_app_shared_through_the_state_store(
    state: StateStore, fake_api: FakeServer, http: aiohttp.ClientSession
) -> None:
    first, second = make_wecom(http, fake_api, state), make_wecom(http, fake_api, state)
    tokens = await asyncio.gather(*(api.access_token() for api in [first, second] * 5))
    assert len(set(tokens)) == 1 and fake_api.fake.token_fetches == 1
    assert await state.get_token(f"wecom:{CORP_ID}:{AGENT_ID}") == tokens[0]
    await first.send_text([PARTY_WECOM], "新工单 #1 待接单")
    await second.send_text(["chenjing", "linwen"], "新工单 #2 待接单")
    assert fake_api.fake.token_fetches == 1
    # The official account's token is a different one, under a different key.
    mp_token = await make_api(http, fake_api, state).access_token()
    assert mp_token != tokens[0] and fake_api.fake.token_fetches == 2
    assert await state.get_token(f"wecom:{CORP_ID}:{AGENT_ID}") == tokens[0]
    body = json.loads(fake_api.fake.raw_bodies[-1])
    assert body["touser"] == "chenjing|linwen" and body["agentid"] == AGENT_ID
    assert (body["enable_duplicate_check"], body["duplicate_check_interval"]) == (1, 1800)
    assert [m["touser"] for m in fake_api.fake.delivered()] == [PARTY_WECOM, "chenjing", "linwen"]
    assert "secret" not in repr(first) and CORP_SECRET not in repr(first)


async def test_a_stale_token_is_refreshed_once(
    state: StateStore, fake_api: FakeServer, http: aiohttp.ClientSession
) -> None:
    first, second = make_wecom(http, fake_api, state), make_wecom(http, fake_api, state)
    old = await first.access_token()
    fake_api.fake.expire_tokens()  # every token issued so far answers 42001
    await asyncio.gather(
        *(api.send_text([PARTY_WECOM], f"通知 {i}") for i, api in enumerate([first, second] * 3))
    )
    assert fake_api.fake.token_fetches == 2  # six callers saw 42001; one fetched, the others re-read
    assert await state.get_token(f"wecom:{CORP_ID}:{AGENT_ID}") not in (None, old)
    assert len(wecom_texts(fake_api, PARTY_WECOM)) == 6

    fake_api.fake.fail_next(PARTY_WECOM, 42001, times=2)  # refused again right after a refresh
    with pytest.raises(TokenError):
        await first.send_text([PARTY_WECOM], "再试")
    assert fake_api.fake.token_fetches == 3  # exactly one more fetch, no loop


@pytest.mark.parametrize(
    ("errcode", "status", "error"),
    [
        (45009, 200, QuotaExceeded),
        (-1, 200, Retryable),
        (45033, 200, Retryable),
        (81013, 200, SendRejected),
        (0, 502, Retryable),
        (0, 403, SendRejected),
    ],
)
async def test_errors_map_onto_the_official_account_classes(
    errcode: int, status: int, error: type[Exception], fake_api: FakeServer, http: aiohttp.ClientSession
) -> None:
    api = make_wecom(http, fake_api, MemoryState())
    fake_api.fake.fail_next(None, errcode, status=status)
    with pytest.raises(error):
        await api.send_text([PARTY_WECOM], "通知")
    await api.send_text([PARTY_WECOM], "通知")  # the next one goes through
    assert wecom_texts(fake_api, PARTY_WECOM) == ["通知"]


async def test_bad_credentials_and_wrong_agent_are_not_retried(
    fake_api: FakeServer, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(TokenError) as refused:
        await make_wecom(http, fake_api, MemoryState(), secret="wrong").send_text([PARTY_WECOM], "x")
    assert "wrong" not in str(refused.value)
    with pytest.raises(SendRejected) as wrong_agent:
        await make_wecom(http, fake_api, MemoryState(), agent_id=9).send_text([PARTY_WECOM], "x")
    assert wrong_agent.value.errcode == 40056
    with pytest.raises(SendRejected):
        await make_wecom(http, fake_api, MemoryState()).send_text([], "x")
    assert fake_api.fake.delivered() == []


async def test_text_is_capped_at_2048_bytes(fake_api: FakeServer, http: aiohttp.ClientSession) -> None:
    assert cap_text("短") == "短"
    long = "网格" * 700 + "a"  # 4201 bytes
    capped = cap_text(long)
    assert len(capped.encode()) <= MAX_TEXT_BYTES and capped.endswith("…") and capped.startswith("网格网格")
    await make_wecom(http, fake_api, MemoryState()).send_text([PARTY_WECOM], long)
    (content,) = wecom_texts(fake_api, PARTY_WECOM)
    assert content == capped and MAX_TEXT_BYTES - 3 < len(content.encode()) <= MAX_TEXT_BYTES


async def test_the_sender_keeps_within_thirty_a_minute_per_member(
    fake_api: FakeServer, http: aiohttp.ClientSession
) -> None:
    mono = Clock(1000.0)
    sender = WeComSender(make_wecom(http, fake_api, MemoryState(clock=mono)), per_member=2)

    def row(recipient: str, text: str, kind: str = "text") -> OutboxMessage:
        return OutboxMessage(channel="wecom", recipient=recipient, kind=kind, text=text, payload={})

    await sender.send(row(PARTY_WECOM, "一"))
    await sender.send(row(PARTY_WECOM, "二"))
    with pytest.raises(Retryable):
        await sender.send(row(PARTY_WECOM, "三"))
    await sender.send(row("chenjing", "别人不受影响"))
    mono.advance(61)
    await sender.send(row(PARTY_WECOM, "三"))
    assert wecom_texts(fake_api, PARTY_WECOM) == ["一", "二", "三"]
    with pytest.raises(SendRejected):
        await sender.send(row(PARTY_WECOM, "", kind="template"))
