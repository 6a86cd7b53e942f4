"""Plays the WeChat platform: builds pushes exactly as it sends them (signed, optionally AES-encrypted)
and reads the bot's replies back. Used by the end-to-end tests and the benchmark.

The message builders and the plaintext signing live in `bot.demo.wechat_client` (so `gridbot chat` can use
them); they are re-exported here under their old names."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import xmltodict
from wechatpy.crypto import PrpCrypto
from wechatpy.utils import to_text

from bot.demo.wechat_client import (
    cdata,
    event_xml,
    image_xml,
    link_xml,
    location_xml,
    message_xml,
    next_msg_id,
    signed_query,
    text_xml,
    voice_xml,
)
from bot.edge.wechat import sign

__all__ = [
    "Reply",
    "WeChatPlatform",
    "event_xml",
    "image_xml",
    "link_xml",
    "location_xml",
    "message_xml",
    "next_msg_id",
    "text_xml",
    "voice_xml",
]


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
        query = signed_query(self.token, body_xml, clock=self.clock)
        timestamp, nonce = query["timestamp"], query["nonce"]
        if mode == "plain":
            return query, body_xml
        encrypt = to_text(self._crypto().encrypt(body_xml, self.app_id))
        query["encrypt_type"] = "aes"
        query["msg_signature"] = sign(self.token, timestamp, nonce, encrypt)
        if mode == "compatible":
            body = body_xml.replace("</xml>", f"<Encrypt>{cdata(encrypt)}</Encrypt></xml>")
        else:
            account = str(xmltodict.parse(body_xml)["xml"]["ToUserName"])
            body = f"<xml><ToUserName>{cdata(account)}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt></xml>"
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
