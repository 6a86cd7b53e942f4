"""The platform's side of the WeChat push protocol (plaintext mode): pushes built exactly as WeChat writes
them, the signed query string it sends with them, and the reply read back.

`gridbot chat` plays WeChat with it; the end-to-end tests and the benchmark build their pushes with it.
"""

from __future__ import annotations

import itertools
import random
import string
import time
from collections.abc import Callable
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

from bot.edge.wechat import sign

__all__ = [
    "cdata",
    "event_xml",
    "image_xml",
    "link_xml",
    "location_xml",
    "message_xml",
    "next_msg_id",
    "read_reply",
    "sender_of",
    "signed_query",
    "text_xml",
    "voice_xml",
]

_msg_ids = itertools.count(7_000_000_000_000_000_000 + random.randrange(10**12))


def next_msg_id() -> str:
    """A fresh 64-bit-looking `MsgId`, unique in this process."""
    return str(next(_msg_ids))


def cdata(value: str) -> str:
    """`value` in a CDATA section; a `]]>` inside is split across two sections."""
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
    """One push as the platform writes it: strings in CDATA, numbers bare, a `MsgId` unless an event."""
    parts = [
        f"<ToUserName>{cdata(account)}</ToUserName>",
        f"<FromUserName>{cdata(sender)}</FromUserName>",
        f"<CreateTime>{create_time if create_time is not None else int(time.time())}</CreateTime>",
        f"<MsgType>{cdata(msg_type)}</MsgType>",
    ]
    for key, value in fields.items():
        parts.append(f"<{key}>{cdata(value) if isinstance(value, str) else value}</{key}>")
    if msg_type != "event":
        parts.append(f"<MsgId>{msg_id or next_msg_id()}</MsgId>")
    return "<xml>" + "".join(parts) + "</xml>"


def text_xml(sender: str, content: str, **kw: Any) -> str:
    """A text message."""
    return message_xml("text", sender, {"Content": content}, **kw)


def voice_xml(sender: str, recognition: str, **kw: Any) -> str:
    """A voice message with WeChat's speech recognition result."""
    return message_xml(
        "voice", sender, {"MediaId": "media-voice-1", "Format": "amr", "Recognition": recognition}, **kw
    )


def image_xml(
    sender: str,
    *,
    pic_url: str = "http://mmbiz.example/pic.jpg",
    media_id: str = "media-img-1",
    **kw: Any,
) -> str:
    """A photo message."""
    return message_xml("image", sender, {"PicUrl": pic_url, "MediaId": media_id}, **kw)


def location_xml(sender: str, lat: float, lng: float, label: str = "", **kw: Any) -> str:
    """A location message (what “+ → 位置” sends)."""
    return message_xml(
        "location", sender, {"Location_X": lat, "Location_Y": lng, "Scale": 15, "Label": label}, **kw
    )


def link_xml(sender: str, title: str, url: str, **kw: Any) -> str:
    """A shared link."""
    return message_xml("link", sender, {"Title": title, "Description": "", "Url": url}, **kw)


def event_xml(sender: str, event: str, key: str | None = None, **kw: Any) -> str:
    """An event push (`subscribe`, `CLICK`, …)."""
    fields: dict[str, str | int | float] = {"Event": event}
    if key is not None:
        fields["EventKey"] = key
    return message_xml("event", sender, fields, **kw)


def sender_of(body_xml: str) -> str:
    """The `FromUserName` of a push."""
    return str(xmltodict.parse(body_xml)["xml"]["FromUserName"])


def signed_query(token: str, body_xml: str, *, clock: Callable[[], float] = time.time) -> dict[str, str]:
    """The query string WeChat sends with a plaintext push: signature, timestamp, nonce and openid."""
    timestamp = str(int(clock()))
    nonce = "".join(random.choices(string.digits, k=9))
    return {
        "signature": sign(token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "openid": sender_of(body_xml),
    }


def read_reply(text: str) -> dict[str, Any] | None:
    """A plaintext passive reply's fields; None for `success` or an empty body.

    Raises ValueError when the body is not reply XML."""
    if text == "success" or not text.strip():
        return None
    try:
        root = xmltodict.parse(text)["xml"]
    except (ExpatError, KeyError, TypeError) as exc:
        raise ValueError(f"not a WeChat reply: {text[:60]!r}") from exc
    if not isinstance(root, dict):
        raise ValueError(f"not a WeChat reply: {text[:60]!r}")
    return dict(root)
