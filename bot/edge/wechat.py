"""The WeChat protocol edge: signatures, timestamps, AES, parsing into `Incoming`, and replies.

Pure and synchronous (no I/O): the HTTP layer calls it, and it raises `EdgeError` with the HTTP status
to answer. wechatpy does the crypto, XML parsing and reply rendering; the signature comparisons are ours,
constant-time, because wechatpy compares with `!=`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import PrpCrypto
from wechatpy.enterprise import parse_message as parse_wecom_message
from wechatpy.enterprise.crypto import PrpCrypto as WeComPrpCrypto
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.replies import TextReply
from wechatpy.utils import to_text

from handlers.incoming import Incoming

MAX_BODY = 64 * 1024
MAX_SKEW = 300  # seconds a request's timestamp may differ from our clock
MAX_REPLY_BYTES = 2048
SUCCESS = "success"

_HOSTILE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# Characters XML 1.0 forbids; they cannot appear in a reply even inside CDATA.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_DECRYPT_ERRORS = (
    IndexError,
    ValueError,
    KeyError,
    TypeError,
    struct.error,
    UnicodeDecodeError,
    InvalidAppIdException,
)


class EdgeError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sign(*parts: str) -> str:
    """WeChat's signature: sha1 over the sorted, concatenated parts."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _same(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def sanitize_reply(text: str) -> str:
    """Make text safe inside the reply's CDATA and within WeChat's 2048-byte limit."""
    text = _XML_INVALID.sub("", text)
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_REPLY_BYTES:
        text = encoded[: MAX_REPLY_BYTES - 3].decode("utf-8", errors="ignore") + "…"
    # A "]]>" would close the CDATA section early: split it across two sections.
    return text.replace("]]>", "]]]]><![CDATA[>")


@dataclass(frozen=True)
class Channel:
    """One account's edge: the official account (`wechat`) or a WeCom app (`wecom`)."""

    name: str
    token: str
    aes_key: str = ""  # EncodingAESKey; empty → plaintext only
    app_id: str = ""  # the official account's app id, or the WeCom corp id
    clock: Callable[[], float] = time.time

    @property
    def encrypted(self) -> bool:
        return bool(self.aes_key)

    def _crypto(self) -> PrpCrypto:
        key = base64.b64decode(self.aes_key + "=")
        return (WeComPrpCrypto if self.name == "wecom" else PrpCrypto)(key)

    # --- verification -------------------------------------------------------------------------
    def check_time(self, query: Mapping[str, str]) -> None:
        try:
            timestamp = int(query.get("timestamp", ""))
        except ValueError:
            raise EdgeError(403, "missing or bad timestamp") from None
        if abs(self.clock() - timestamp) > MAX_SKEW:
            raise EdgeError(403, "stale timestamp")

    def check_signature(self, query: Mapping[str, str]) -> None:
        expected = sign(self.token, query.get("timestamp", ""), query.get("nonce", ""))
        if not _same(expected, query.get("signature")):
            raise EdgeError(403, "bad signature")

    def verify_url(self, query: Mapping[str, str]) -> str:
        """GET verification: the echostr to answer (WeCom: decrypted)."""
        self.check_time(query)
        echostr = query.get("echostr", "")
        if not echostr:
            raise EdgeError(400, "missing echostr")
        if self.name == "wecom":
            expected = sign(self.token, query.get("timestamp", ""), query.get("nonce", ""), echostr)
            if not _same(expected, query.get("msg_signature")):
                raise EdgeError(403, "bad msg_signature")
            return self._decrypt(echostr)
        self.check_signature(query)
        return echostr

    def _decrypt(self, encrypted: str) -> str:
        try:
            return to_text(self._crypto().decrypt(encrypted, self.app_id))
        except _DECRYPT_ERRORS:
            raise EdgeError(400, "cannot decrypt") from None

    # --- inbound ------------------------------------------------------------------------------
    def decode(self, query: Mapping[str, str], body: bytes) -> Incoming:
        """Verify and parse a pushed message; raises EdgeError(403/400/413)."""
        if len(body) > MAX_BODY:
            raise EdgeError(413, "body too large")
        self.check_time(query)
        if self.name == "wechat":
            self.check_signature(query)
        if _HOSTILE.search(body):
            raise EdgeError(400, "DTD or entity declaration")
        xml = (
            self._open_envelope(query, body) if self._is_encrypted(query) else body.decode("utf-8", "replace")
        )
        return self._parse(xml)

    def _is_encrypted(self, query: Mapping[str, str]) -> bool:
        return self.name == "wecom" or query.get("encrypt_type", "raw").lower() == "aes"

    def _open_envelope(self, query: Mapping[str, str], body: bytes) -> str:
        if not self.encrypted:
            raise EdgeError(400, "encrypted message but no EncodingAESKey configured")
        encrypt = _xml_field(body, "Encrypt")
        expected = sign(self.token, query.get("timestamp", ""), query.get("nonce", ""), encrypt)
        if not _same(expected, query.get("msg_signature")):
            raise EdgeError(403, "bad msg_signature")
        xml = self._decrypt(encrypt)
        if _HOSTILE.search(xml.encode()):
            raise EdgeError(400, "DTD or entity declaration")
        return xml

    def _parse(self, xml: str) -> Incoming:
        parser = parse_wecom_message if self.name == "wecom" else parse_message
        try:
            message = parser(xml)
        except (ExpatError, ValueError, KeyError, TypeError, AttributeError):
            raise EdgeError(400, "malformed XML") from None
        if message is None:
            raise EdgeError(400, "empty message")
        # wechatpy keeps the parsed fields (xmltodict, entities disabled) on the message object.
        return _to_incoming(self.name, message._data)

    # --- replies ------------------------------------------------------------------------------
    def render_reply(self, incoming: Incoming, text: str | None, query: Mapping[str, str]) -> str:
        """The HTTP body: `success` when there is nothing to say, else a text reply (encrypted if asked)."""
        if not text:
            return SUCCESS
        reply = TextReply(source=incoming.account, target=incoming.sender, content=sanitize_reply(text))
        reply.time = int(self.clock())
        xml = reply.render()
        if not self._is_encrypted(query):
            return xml
        return self._seal(xml, query.get("nonce", ""))

    def _seal(self, xml: str, nonce: str) -> str:
        timestamp = str(int(self.clock()))
        encrypt = to_text(self._crypto().encrypt(xml, self.app_id))
        signature = sign(self.token, timestamp, nonce, encrypt)
        return (
            f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )


def _xml_field(body: bytes, name: str) -> str:
    try:
        root = xmltodict.parse(body.decode("utf-8"))["xml"]
        value = root[name]
    except (ExpatError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise EdgeError(400, f"malformed envelope (no {name})") from None
    if not isinstance(value, str) or not value:
        raise EdgeError(400, f"malformed envelope (no {name})")
    return value


def _text(data: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise EdgeError(400, f"missing {key}")
        return None
    if not isinstance(value, str):
        raise EdgeError(400, f"bad {key}")
    return value


def _number(data: Mapping[str, Any], key: str) -> float:
    try:
        return float(_text(data, key, required=True) or "")
    except ValueError:
        raise EdgeError(400, f"bad {key}") from None


def _to_incoming(channel: str, data: Mapping[str, Any]) -> Incoming:
    sender = _text(data, "FromUserName", required=True)
    account = _text(data, "ToUserName", required=True)
    msg_type = (_text(data, "MsgType", required=True) or "").lower()
    try:
        create_time = int(_text(data, "CreateTime", required=True) or "")
    except ValueError:
        raise EdgeError(400, "bad CreateTime") from None
    base: dict[str, Any] = {
        "channel": channel,
        "sender": sender,
        "account": account,
        "create_time": create_time,
        "agent_id": _text(data, "AgentID"),
    }
    if msg_type == "event":
        return _event(data, base)
    base["msg_id"] = _text(data, "MsgId", required=True)
    if msg_type == "text":
        return Incoming(kind="text", text=_text(data, "Content", required=True) or "", **base)
    if msg_type == "voice":
        return Incoming(
            kind="voice",
            text=_text(data, "Recognition") or "",
            media_id=_text(data, "MediaId"),
            extra={"format": (_text(data, "Format") or "")[:16]} if _text(data, "Format") else {},
            **base,
        )
    if msg_type == "image":
        return Incoming(kind="image", media_id=_text(data, "MediaId"), pic_url=_text(data, "PicUrl"), **base)
    if msg_type == "location":
        location = (_number(data, "Location_X"), _number(data, "Location_Y"))
        return Incoming(kind="location", location=location, label=_text(data, "Label"), **base)
    if msg_type == "link":
        return Incoming(kind="link", text=_text(data, "Title") or "", url=_text(data, "Url"), **base)
    return Incoming(kind="other", extra={"msg_type": msg_type[:32]}, **base)


def _event(data: Mapping[str, Any], base: dict[str, Any]) -> Incoming:
    event = (_text(data, "Event", required=True) or "").lower()
    key = _text(data, "EventKey")
    if event in ("subscribe_scan", "subscribe_scan_product"):
        event = "subscribe"
    if event == "location":
        location = (_number(data, "Latitude"), _number(data, "Longitude"))
        return Incoming(kind="event", event="location", location=location, **base)
    if event in ("subscribe", "unsubscribe", "click", "view", "scan"):
        return Incoming(
            kind="event", event=event, event_key=key, url=key if event == "view" else None, **base
        )
    return Incoming(kind="event", event=None, event_key=key, extra={"event": event[:32]}, **base)
