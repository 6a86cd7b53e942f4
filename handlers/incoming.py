"""The typed value every inbound WeChat / WeCom message becomes, whatever its XML looked like."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

KINDS = ("text", "voice", "image", "location", "link", "event", "other")
EVENTS = ("subscribe", "unsubscribe", "click", "view", "scan", "location")


@dataclass(frozen=True)
class Incoming:
    """One message from a person. `text` is the words to act on: the text, voice recognition or link title."""

    channel: str  # "wechat" (official account) or "wecom" (WeCom app)
    sender: str  # openid (WeCom: userid)
    account: str  # our account id (ToUserName), the reply's sender
    kind: str  # one of KINDS
    create_time: int  # seconds since the epoch, as the platform sent it
    msg_id: str | None = None
    text: str = ""
    event: str | None = None  # one of EVENTS when kind == "event"
    event_key: str | None = None
    media_id: str | None = None
    pic_url: str | None = None
    url: str | None = None
    location: tuple[float, float] | None = None  # (lat, lng)
    label: str | None = None  # a location message's address as WeChat describes it
    agent_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        """WeChat redelivers with the same MsgId; events have none, so sender + CreateTime (+ event) stands in."""
        if self.msg_id:
            return self.msg_id
        return f"{self.sender}:{self.create_time}:{self.event or self.kind}"

    @property
    def sent_at(self) -> datetime:
        return datetime.fromtimestamp(self.create_time, UTC)

    def payload(self) -> dict[str, Any]:
        """What is stored with the inbound row besides the text: every field a later step may need."""
        data: dict[str, Any] = {
            "account": self.account,
            "msg_id": self.msg_id,
            "event": self.event,
            "event_key": self.event_key,
            "media_id": self.media_id,
            "pic_url": self.pic_url,
            "url": self.url,
            "location": list(self.location) if self.location else None,
            "label": self.label,
            "agent_id": self.agent_id,
            **self.extra,
        }
        return {key: value for key, value in data.items() if value is not None}
