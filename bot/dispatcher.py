"""Who is speaking and which handler answers: an explicit route table where the first match wins.

The dispatcher knows nothing of HTTP or XML. `feed` runs one handler in one transaction and stores the
reply on the inbound row in that same transaction, so a redelivery after a crash either finds the reply
or handles the message afresh — never half of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers import conversation, texts
from handlers.commands import command_word
from handlers.context import Context, Speaker
from handlers.incoming import Incoming
from storage.repo import active_person, mark_handled, person_by_wecom_userid
from storage.state import StateStore

Handler = Callable[[Context], Awaitable[str | None]]
Filter = Callable[[Context], bool]


def event(name: str | None = None) -> Filter:
    return lambda ctx: ctx.msg.kind == "event" and (name is None or ctx.msg.event == name)


def kind(*kinds: str) -> Filter:
    return lambda ctx: ctx.msg.kind in kinds


def command(word: str) -> Filter:
    return lambda ctx: ctx.msg.kind in ("text", "voice") and command_word(ctx.msg.text) == word


def always(ctx: Context) -> bool:
    return True


@dataclass(frozen=True)
class Route:
    when: Filter
    handler: Handler


ROUTES: tuple[Route, ...] = (
    Route(event("subscribe"), conversation.welcome),
    Route(event("unsubscribe"), conversation.goodbye),
    Route(event(), conversation.ignore),
    Route(command("帮助"), conversation.help_text),
    Route(kind("text", "voice", "image", "location", "link"), conversation.acknowledge),
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
        *,
        clock: Callable[[], float],
        routes: Sequence[Route] = ROUTES,
        rate_limit: RateLimit = RateLimit(),
    ) -> None:
        self.sessions = sessions
        self.state = state
        self.clock = clock
        self.routes = tuple(routes)
        self.rate_limit = rate_limit

    async def feed(self, msg: Incoming, inbound_id: int) -> str | None:
        now = datetime.fromtimestamp(self.clock(), UTC)
        async with self.sessions() as session, session.begin():
            speaker = await identify(session, msg)
            if msg.kind != "event" and not await self.state.allow(
                f"{msg.channel}:{msg.sender}", self.rate_limit.limit, self.rate_limit.window
            ):
                reply: str | None = texts.THROTTLED
            else:
                ctx = Context(msg=msg, speaker=speaker, session=session, state=self.state, now=now)
                reply = await self.route(ctx)(ctx)
            await mark_handled(session, inbound_id, reply or "", now)
        return reply

    def route(self, ctx: Context) -> Handler:
        for route in self.routes:
            if route.when(ctx):
                return route.handler
        return conversation.unsupported


async def identify(session: AsyncSession, msg: Incoming) -> Speaker:
    if msg.channel == "wecom":
        person = await person_by_wecom_userid(session, msg.sender)
    else:
        person = await active_person(session, msg.sender)
    return Speaker(openid=person.openid if person else msg.sender, person=person)
