"""Plays the WeChat platform: builds pushes exactly as it sends them (signed, optionally AES-encrypted)
and reads the bot's replies back. Used by the end-to-end tests and the benchmark."""

from __future__ import annotations

import base64
import itertools
import random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import xmltodict
from wechatpy.crypto import PrpCrypto
from wechatpy.utils import to_text

from bot.wechat import sign

_msg_ids = itertools.count(7_000_000_000_000_000_000 + random.randrange(10**12))


def next_msg_id() -> str:
    return str(next(_msg_ids))


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(
    msg_type: str,
    sender: str,
    fields: dict[str, str | int | float],
    *,
    account: str = "gh_gridbot",
    create_time: int | None = None,
    msg_id: str | None = None,
) -> str:
    """One push as the platform writes it: strings in CDATA, numbers bare."""
    parts = [
        f"<ToUserName>{_cdata(account)}</ToUserName>",
        f"<FromUserName>{_cdata(sender)}</FromUserName>",
        f"<CreateTime>{create_time if create_time is not None else int(time.time())}</CreateTime>",
        f"<MsgType>{_cdata(msg_type)}</MsgType>",
    ]
    for key, value in fields.items():
        parts.append(f"<{key}>{_cdata(value) if isinstance(value, str) else value}</{key}>")
    if msg_type != "event":
        parts.append(f"<MsgId>{msg_id or next_msg_id()}</MsgId>")
    return "<xml>" + "".join(parts) + "</xml>"


def text_xml(sender: str, content: str, **kw: Any) -> str:
    return message_xml("text", sender, {"Content": content}, **kw)


def voice_xml(sender: str, recognition: str, **kw: Any) -> str:
    return message_xml(
        "voice", sender, {"MediaId": "media-voice-1", "Format": "amr", "Recognition": recognition}, **kw
    )


def image_xml(sender: str, **kw: Any) -> str:
    return message_xml(
        "image", sender, {"PicUrl": "http://mmbiz.example/pic.jpg", "MediaId": "media-img-1"}, **kw
    )


def location_xml(sender: str, lat: float, lng: float, label: str = "", **kw: Any) -> str:
    return message_xml(
        "location", sender, {"Location_X": lat, "Location_Y": lng, "Scale": 15, "Label": label}, **kw
    )


def link_xml(sender: str, title: str, url: str, **kw: Any) -> str:
    return message_xml("link", sender, {"Title": title, "Description": "", "Url": url}, **kw)


def event_xml(sender: str, event: str, key: str | None = None, **kw: Any) -> str:
    fields: dict[str, str | int | float] = {"Event": event}
    if key is not None:
        fields["EventKey"] = key
    return message_xml("event", sender, fields, **kw)


@dataclass
class Reply:
    status: int
    body: str
    fields: dict[str, Any] | None  # the reply's XML fields (decrypted in AES modes); None for `success`

    @property
    def content(self) -> str | None:
        return None if self.fields is None else self.fields.get("Content")


class WeChatPlatform:
    """Sends pushes to `/wechat` of a test client in one of the three modes: plain, compatible, safe."""

    def __init__(
        self,
        client: Any,
        *,
        token: str = "gridbot-demo",
        aes_key: str = "",
        app_id: str = "",
        mode: str = "plain",
        clock: Callable[[], float] = time.time,
        path: str = "/wechat",
    ) -> None:
        self.client = client
        self.token = token
        self.aes_key = aes_key
        self.app_id = app_id
        self.mode = mode
        self.clock = clock
        self.path = path

    def _crypto(self) -> PrpCrypto:
        return PrpCrypto(base64.b64decode(self.aes_key + "="))

    def signed(self, body_xml: str, *, mode: str | None = None) -> tuple[dict[str, str], str]:
        """The query string and body for this push."""
        mode = mode or self.mode
        timestamp = str(int(self.clock()))
        nonce = "".join(random.choices(string.digits, k=9))
        query = {"signature": sign(self.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
        query["openid"] = str(xmltodict.parse(body_xml)["xml"]["FromUserName"])
        if mode == "plain":
            return query, body_xml
        encrypt = to_text(self._crypto().encrypt(body_xml, self.app_id))
        query["encrypt_type"] = "aes"
        query["msg_signature"] = sign(self.token, timestamp, nonce, encrypt)
        if mode == "compatible":
            body = body_xml.replace("</xml>", f"<Encrypt>{_cdata(encrypt)}</Encrypt></xml>")
        else:
            account = str(xmltodict.parse(body_xml)["xml"]["ToUserName"])
            body = (
                f"<xml><ToUserName>{_cdata(account)}</ToUserName><Encrypt>{_cdata(encrypt)}</Encrypt></xml>"
            )
        return query, body

    async def send(self, body_xml: str, *, mode: str | None = None) -> Reply:
        query, body = self.signed(body_xml, mode=mode)
        return await self.post(query, body)

    async def post(self, query: dict[str, str], body: str | bytes) -> Reply:
        response = await self.client.post(self.path, params=query, data=body)
        text = await response.text()
        return Reply(response.status, text, self.open_reply(query, text) if response.status == 200 else None)

    def open_reply(self, query: dict[str, str], text: str) -> dict[str, Any] | None:
        """Parse a reply the way the platform does: check the envelope's signature and decrypt it."""
        if text == "success" or not text:
            return None
        fields = dict(xmltodict.parse(text)["xml"])
        if "Encrypt" not in fields:
            return fields
        expected = sign(self.token, fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
        if expected != fields["MsgSignature"]:
            raise AssertionError("reply envelope signature does not verify")
        if fields["Nonce"] != query["nonce"]:
            raise AssertionError("reply nonce differs from the request's")
        inner = to_text(self._crypto().decrypt(fields["Encrypt"], self.app_id))
        return dict(xmltodict.parse(inner)["xml"])

    async def say(self, sender: str, content: str, **kw: Any) -> Reply:
        return await self.send(text_xml(sender, content, **kw))
