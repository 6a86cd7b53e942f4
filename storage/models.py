"""SQLAlchemy 2 typed models. The same schema serves SQLite (embedded) and PostgreSQL (production).

Times are stored as timezone-aware UTC. Org rows (units, places, people, departments) are never deleted by
an import, only marked inactive, because work orders keep pointing at them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MEDIA_KINDS_SQL = "kind IN ('image', 'voice')"  # inbound messages that carry a file (a MediaId)

# SQLite has no BIGINT autoincrement; the variant keeps ids 64-bit on PostgreSQL.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite returns naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Unit(Base):
    """A district, street, community or grid."""

    __tablename__ = "unit"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("unit.id"), index=True)
    branch: Mapped[str | None] = mapped_column(String(128))
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Place(Base):
    """A name residents use for a spot in a grid (a compound, a market, a street range)."""

    __tablename__ = "place"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    unit_id: Mapped[str] = mapped_column(ForeignKey("unit.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    aliases: Mapped[list[PlaceAlias]] = relationship(
        back_populates="place", cascade="all, delete-orphan", lazy="selectin", order_by="PlaceAlias.alias"
    )


class PlaceAlias(Base):
    __tablename__ = "place_alias"
    __table_args__ = (UniqueConstraint("alias"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    place_id: Mapped[int] = mapped_column(ForeignKey("place.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(128))
    place: Mapped[Place] = relationship(back_populates="aliases")


class Person(Base):
    """Staff listed in the org file: one role in one unit. Anyone not listed is a resident."""

    __tablename__ = "person"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[str] = mapped_column(ForeignKey("unit.id"), index=True)
    wecom_userid: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Department(Base):
    """A responder outside the grid line, e.g. a property company (红色物业) for 物业服务."""

    __tablename__ = "department"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    categories: Mapped[list[Any]] = mapped_column(default=list)
    unit_ids: Mapped[list[Any]] = mapped_column(default=list)
    contacts: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class OrgRevision(Base):
    """One row: bumped by every org import that changes something, so running servers know to reload."""

    __tablename__ = "org_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime]


class Resident(Base):
    __tablename__ = "resident"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    place_id: Mapped[int | None] = mapped_column(ForeignKey("place.id"))
    place_detail: Mapped[str | None] = mapped_column(String(128))
    unit_id: Mapped[str | None] = mapped_column(ForeignKey("unit.id"))  # the bound grid (绑定)
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[datetime | None]


class WorkOrder(Base):
    __tablename__ = "work_order"
    __table_args__ = (
        Index("ix_work_order_state_unit", "state", "unit_id"),
        # the dashboard: intake today / this week, the 30-day charts, date-range filters (migration 0006)
        Index("ix_work_order_unit_created", "unit_id", "created_at"),
        Index("ix_work_order_created_at", "created_at"),  # the hot-spot window
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    resident_openid: Mapped[str] = mapped_column(String(64), index=True)
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    place_id: Mapped[int | None] = mapped_column(ForeignKey("place.id"))
    place_detail: Mapped[str | None] = mapped_column(String(128))
    unit_id: Mapped[str | None] = mapped_column(ForeignKey("unit.id"))
    department_id: Mapped[str | None] = mapped_column(ForeignKey("department.id"))
    assignee_openid: Mapped[str | None] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16), default="new")
    media: Mapped[list[Any]] = mapped_column(default=list)
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("work_order.id"))
    rating: Mapped[str | None] = mapped_column(String(16))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    # How far the timers have gone in the current phase (waiting to be accepted, resolved or rated):
    # 0 nothing yet; each reminder or escalation moves it on once. A new phase starts it again at 0.
    timer_step: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    accept_due: Mapped[datetime | None]
    resolve_due: Mapped[datetime | None]
    rate_due: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class OrderFollower(Base):
    """A resident who reported the same problem again: linked to the open order, told of its progress."""

    __tablename__ = "order_follower"
    __table_args__ = (UniqueConstraint("order_id", "openid"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_order.id"), index=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkOrderEvent(Base):
    """One step of an order's life: who, when, what, and the state change it made."""

    __tablename__ = "work_order_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_order.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, default="")
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class InboundMessage(Base):
    """Everything a person sent, stored before it is handled, with the reply it got.

    `dedupe_key` is the MsgId (events: sender + CreateTime); a redelivery finds this row and gets `reply`.
    """

    __tablename__ = "inbound_message"
    __table_args__ = (
        UniqueConstraint("channel", "dedupe_key"),
        # the media worker's look for photos and voice not yet kept (partial: text messages cost nothing)
        Index(
            "ix_inbound_message_media",
            "received_at",
            postgresql_where=text(MEDIA_KINDS_SQL),
            sqlite_where=text(MEDIA_KINDS_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str] = mapped_column(String(128))
    sender: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sent_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    handled_at: Mapped[datetime | None]
    reply: Mapped[str | None] = mapped_column(Text)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("work_order.id"))


class OutboxMessage(Base):
    """A message to a person other than the one being answered, written with the state change it reports."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    send_key: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32), default="text")
    text: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("work_order.id"))
    status: Mapped[str] = mapped_column(String(24), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class MediaFile(Base):
    """A photo or voice message a person sent, kept for good: WeChat drops its media after 3 days.

    One row per inbound message; the media worker claims `pending` rows with a lease (`next_attempt_at`
    moved forward, `attempts` bumped as the fencing token), downloads the file and stores it by its
    sha256 in the media store: `stored`, or `failed` with the reason.
    """

    __tablename__ = "media_file"
    __table_args__ = (
        UniqueConstraint("inbound_id"),
        Index("ix_media_file_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    inbound_id: Mapped[int] = mapped_column(ForeignKey("inbound_message.id"))
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # image or voice
    media_id: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    content_type: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    stored_at: Mapped[datetime | None]


class DashboardLogin(Base):
    """A one-time login link to the dashboard: only its sha256 is kept; taken once, before it expires."""

    __tablename__ = "dashboard_login"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    openid: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]


class Registration(Base):
    """双报到: an in-service Party member asks to serve in a community's grid; its admin agrees or not.

    Approved registrations are people of the org beside the org file's (a party_member of `grid_id`);
    `gridbot org import` never touches them. `active_key` is the openid while the registration is pending
    or approved and NULL once refused, so a person has at most one of those at a time.
    """

    __tablename__ = "registration"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    community_id: Mapped[str] = mapped_column(ForeignKey("unit.id"))
    grid_id: Mapped[str | None] = mapped_column(ForeignKey("unit.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | approved | rejected
    active_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")


class HotSpot(Base):
    """主动治理: reports of one category piling up in one grid. Opened once (the unique `open_key`,
    "grid|category" while open, NULL once it has cooled down), which is what makes the alert go once."""

    __tablename__ = "hotspot"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("unit.id"), index=True)
    category: Mapped[str] = mapped_column(String(32))
    open_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    reports: Mapped[int] = mapped_column(Integer)  # in the window when it opened
    usual: Mapped[float] = mapped_column(Float, default=0.0)  # the grid's usual reports per window
    bar: Mapped[float] = mapped_column(Float)  # the count that made it hot
    order_ids: Mapped[list[Any]] = mapped_column(default=list)
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


__all__ = [
    "Base",
    "DashboardLogin",
    "Department",
    "HotSpot",
    "InboundMessage",
    "MediaFile",
    "OrderFollower",
    "OutboxMessage",
    "Person",
    "Place",
    "PlaceAlias",
    "Registration",
    "Resident",
    "Unit",
    "WorkOrder",
    "WorkOrderEvent",
    "utcnow",
]
