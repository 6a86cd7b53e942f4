"""The aiohttp application factory. Each resource is opened and closed in its own cleanup context."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from bot import keys
from bot import web as views
from bot.config import Settings
from bot.dispatcher import Dispatcher
from bot.inbox import Inbox
from bot.metrics import Metrics
from bot.wechat import MAX_BODY, Channel
from storage.db import create_engine, current_revision, head_revision, session_factory, upgrade
from storage.org import apply_org, load_org_file
from storage.state import StateStore, open_state

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The server cannot start; the message says what to do."""


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    state: StateStore | None = None,
) -> web.Application:
    """The whole server. `clock` and `state` are injectable for tests (a fixed clock, a prefixed Redis)."""
    app = web.Application(client_max_size=MAX_BODY)
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock
    app[keys.METRICS] = Metrics()
    app[keys.WECHAT] = Channel(
        name="wechat",
        token=settings.wechat.token,
        aes_key=settings.wechat.encoding_aes_key,
        app_id=settings.wechat.app_id,
        clock=clock,
    )
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_state(state))
    app.cleanup_ctx.append(_organisation)
    app.cleanup_ctx.append(_inbox)
    app.router.add_get("/wechat", views.wechat_verify)
    app.router.add_post("/wechat", views.wechat_push)
    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/metrics", views.metrics)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    url = app[keys.SETTINGS].storage.database_url
    engine = create_engine(url)
    try:
        if url.startswith("sqlite"):
            await upgrade(engine)  # the embedded database migrates itself
        elif await current_revision(engine) != head_revision():
            raise StartupError("数据库结构不是最新版本，请先运行 gridbot db upgrade")
    except BaseException:
        await engine.dispose()
        raise
    app[keys.ENGINE] = engine
    app[keys.SESSIONS] = session_factory(engine)
    yield
    await engine.dispose()


def _state(given: StateStore | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        store = given or open_state(app[keys.SETTINGS].storage.redis_url)
        app[keys.STATE] = store
        yield
        if given is None:
            await store.close()

    return context


async def _organisation(app: web.Application) -> AsyncIterator[None]:
    """Load `[org] file` at start, one process at a time (several workers may start together)."""
    path = app[keys.SETTINGS].org.file
    if path:
        spec = load_org_file(path)
        state, owner = app[keys.STATE], uuid.uuid4().hex
        while not await state.acquire("org-import", owner, 60):  # noqa: ASYNC110 - a shared lease, no event to await
            await asyncio.sleep(0.1)
        try:
            async with app[keys.SESSIONS]() as session, session.begin():
                summary = await apply_org(session, spec)
        finally:
            await state.release("org-import", owner)
        log.info("organisation loaded from %s: %s", path, summary)
    yield


async def _inbox(app: web.Application) -> AsyncIterator[None]:
    dispatcher = Dispatcher(app[keys.SESSIONS], app[keys.STATE], clock=app[keys.CLOCK])
    app[keys.INBOX] = Inbox(app[keys.SESSIONS], app[keys.STATE], dispatcher, app[keys.METRICS])
    yield
