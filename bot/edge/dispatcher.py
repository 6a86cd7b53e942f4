"""Who is speaking and which handler answers: an explicit route table where the first match wins.

The dispatcher knows nothing of HTTP or XML. `feed` runs one handler in one transaction and stores the
reply on the inbound row in that same transaction, so a redelivery after a crash either finds the reply
or handles the message afresh — never half of it. Notices the platform refused to deliver earlier
(45015/45047) ride along in front of this person's reply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers import commands, conversation, intake, open311, scan, texts
from handlers.commands import parse
from handlers.context import Context, Services, Speaker
from handlers.directory import Directory
from handlers.incoming import Incoming
from storage.outbox import take_deferred
from storage.repo import lock_inbound, mark_handled
from storage.state import StateStore

Handler = Callable[[Context], Awaitable[str | None]]
Filter = Callable[[Context], bool]

DEFERRED_PER_REPLY = 3  # with the reply itself this stays within WeChat's 2048 bytes; the rest wait


def event(name: str | None = None) -> Filter:
    return lambda ctx: ctx.msg.kind == "event" and (name is None or ctx.msg.event == name)


def kind(*kinds: str) -> Filter:
    return lambda ctx: ctx.msg.kind in kinds


def both(*filters: Filter) -> Filter:
    return lambda ctx: all(f(ctx) for f in filters)


def always(ctx: Context) -> bool:
    return True


def wecom_stranger(ctx: Context) -> bool:
    """Someone in the corp's WeCom who is not listed in the org file (events other than a follow aside)."""
    if ctx.msg.channel != "wecom" or ctx.speaker.is_staff:
        return False
    return ctx.msg.kind != "event" or ctx.msg.event == "subscribe"


async def wecom_staff_only(ctx: Context) -> str:
    return texts.WECOM_STAFF_ONLY


@dataclass(frozen=True)
class Route:
    when: Filter
    handler: Handler


def a_command(ctx: Context) -> bool:
    return ctx.command is not None


def staff(ctx: Context) -> bool:
    return ctx.speaker.is_staff


ROUTES: tuple[Route, ...] = (
    Route(open311.is_api, open311.submit),  # an Open311 client's service request: straight to intake
    Route(wecom_stranger, wecom_staff_only),  # the WeCom app never takes a report from a non-staff member
    Route(scan.is_scan, scan.scanned),  # a place's code (扫码报事): bind there, ask what is wrong
    Route(event("subscribe"), conversation.welcome),
    Route(event("unsubscribe"), conversation.goodbye),
    Route(scan.is_click, scan.click),  # a menu button
    Route(event(), conversation.ignore),
    # Every command, as handlers/commands.py declares it: who may use it, its hint when miswritten.
    Route(a_command, commands.run),
    Route(both(staff, kind("text", "voice")), commands.help_reply),  # staff writing what is not a command
    Route(both(kind("voice"), lambda ctx: not ctx.msg.text.strip()), intake.voice_unrecognised),
    Route(kind("text", "voice", "link"), intake.report),
    Route(kind("image"), intake.photo),
    Route(kind("location"), intake.location),
    Route(always, conversation.unsupported),
)


@dataclass(frozen=True)
class RateLimit:
    limit: int = 20
    window: float = 60.0


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        state: StateStore,
        services: Services,
        *,
        clock: Callable[[], float],
        routes: Sequence[Route] = ROUTES,
        rate_limit: RateLimit = RateLimit(),
        on_queued: Callable[[], None] | None = None,
        on_deadline: Callable[[datetime], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.state = state
        self.services = services
        self.clock = clock
        self.routes = tuple(routes)
        self.rate_limit = rate_limit
        self.on_queued = on_queued
        self.on_deadline = on_deadline

    async def feed(self, msg: Incoming, inbound_id: int) -> str | None:
        """Handle the stored message once; a copy handled meanwhile answers with the stored reply.

        One person's messages are handled one after the other (the per-person lock of the state store,
        across processes with Redis): a pending question, a rating or a place answer is read and
        settled by one message at a time. The lock is gone once released, so it costs no memory."""
        async with self.state.hold(f"person:{msg.channel}:{msg.sender}"):
            return await self._feed(msg, inbound_id)

    async def _feed(self, msg: Incoming, inbound_id: int) -> str | None:
        now = datetime.fromtimestamp(self.clock(), UTC)
        async with self.sessions() as session, session.begin():
            # Under the row's lock (PostgreSQL; SQLite's one connection serialises): a copy may be done already.
            stored = await lock_inbound(
                session, inbound_id, msg.channel, msg.sender, now - intake.PHOTO_WINDOW
            )
            if stored.handled:
                return stored.reply or None
            speaker = identify(self.services.directory, msg)
            ctx = Context(
                msg=msg,
                speaker=speaker,
                session=session,
                state=self.state,
                services=self.services,
                now=now,
                inbound_id=inbound_id,
                command=parse(msg.text) if msg.kind in ("text", "voice") else None,
                loose_images=stored.loose_images,
            )
            allowed = True
            if msg.kind != "event":
                limit, window = self.rate_limit.limit, self.rate_limit.window
                allowed, ctx.pending = await self.state.admit(ctx.pending_key, limit, window)
            reply = await self.route(ctx)(ctx) if allowed else texts.THROTTLED
            if stored.deferred and (msg.kind != "event" or msg.event == "subscribe"):
                reply = await _with_deferred(session, msg, reply, now, first=ctx.urgent)
            await mark_handled(session, inbound_id, reply or "", now, ctx.order_id)
        if ctx.queued and self.on_queued is not None:
            self.on_queued()
        if ctx.next_step is not None and self.on_deadline is not None:
            self.on_deadline(ctx.next_step)
        return reply

    def route(self, ctx: Context) -> Handler:
        for route in self.routes:
            if route.when(ctx):
                return route.handler
        return conversation.unsupported


async def _with_deferred(
    session: AsyncSession, msg: Incoming, reply: str | None, now: datetime, *, first: bool = False
) -> str | None:
    """The deferred notices and the reply in one message: the notices first, unless the reply must be
    read first (an emergency's advice)."""
    notices = await take_deferred(session, msg.channel, msg.sender, now, limit=DEFERRED_PER_REPLY)
    if not notices:
        return reply
    parts = [notice.text for notice in notices]
    if reply:
        parts.insert(0, reply) if first else parts.append(reply)
    return "\n——\n".join(parts)


def identify(directory: Directory, msg: Incoming) -> Speaker:
    """Staff by their openid (WeCom: their WeCom id); anyone else is a resident."""
    person = directory.by_wecom(msg.sender) if msg.channel == "wecom" else directory.person(msg.sender)
    return Speaker(openid=person.openid if person else msg.sender, person=person)
