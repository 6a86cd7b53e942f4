"""The aiohttp application factory. Each resource is opened and closed in its own cleanup context."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import aiohttp
from aiohttp import web

from bot import keys
from bot.config import Settings, parse_duration, public_base
from bot.dashboard import setup_dashboard
from bot.demo.fake_wechat import create_fake_wechat_app
from bot.demo.sample_photo import sample_png
from bot.edge import views
from bot.edge.dispatcher import Dispatcher
from bot.edge.inbox import Inbox
from bot.edge.wechat import MAX_BODY, Channel
from bot.metrics import Metrics
from bot.open311 import views as open311
from bot.tencent.wechat_api import WeChatAPI
from bot.tencent.wecom_api import WeComAPI, WeComSender
from bot.workers.hotspots import HotspotWatch
from bot.workers.media import MediaWorker
from bot.workers.org_watch import OrgWatcher
from bot.workers.outbox import ChannelSender, OutboxWorker, Sender, WeChatSender
from bot.workers.timers import TimerService
from handlers.context import Services
from handlers.directory import Directory
from handlers.workflow import Limits
from nlp.classifier import Classifier
from storage.db import (
    create_engine,
    current_revision,
    head_revision,
    session_factory,
    single_statement_sessions,
    upgrade,
)
from storage.media_store import MediaStore
from storage.org import apply_org, load_org_file, org_revision
from storage.state import StateStore, open_state

log = logging.getLogger(__name__)

DEMO_APP_ID = "wxdemo0000000000"
DEMO_APP_SECRET = "demo-app-secret"
FAKE_PREFIX = "/fake-wechat"


class StartupError(RuntimeError):
    """The server cannot start; the message says what to do."""


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    state: StateStore | None = None,
) -> web.Application:
    """The whole server. `clock` and `state` are injectable for tests (a fixed clock, a prefixed Redis)."""
    if settings.demo:
        settings = demo_wechat(settings)
    app = web.Application(client_max_size=MAX_BODY)
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock
    app[keys.METRICS] = Metrics()
    app[keys.MEDIA_STORE] = MediaStore(settings.storage.media_root)
    app[keys.WECHAT] = Channel(
        name="wechat",
        token=settings.wechat.token,
        aes_key=settings.wechat.encoding_aes_key,
        app_id=settings.wechat.app_id,
        clock=clock,
    )
    if settings.wecom.enabled:
        app[keys.WECOM] = Channel(
            name="wecom",
            token=settings.wecom.token,
            aes_key=settings.wecom.encoding_aes_key,
            app_id=settings.wecom.corp_id,
            clock=clock,
        )
    app.cleanup_ctx.append(_classifier)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_state(state))
    app.cleanup_ctx.append(_services)
    app.cleanup_ctx.append(_outbox)
    app.cleanup_ctx.append(_timers)
    app.cleanup_ctx.append(_media)
    app.cleanup_ctx.append(_hotspots)
    app.cleanup_ctx.append(_inbox)
    app.router.add_get("/wechat", views.wechat_verify)
    app.router.add_post("/wechat", views.wechat_push)
    if settings.wecom.enabled:
        app.router.add_get("/wecom", views.wecom_verify)
        app.router.add_post("/wecom", views.wecom_push)
    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/metrics", views.metrics)
    setup_dashboard(app, settings)
    app.router.add_routes(open311.routes)  # /open311/v2/… (GeoReport v2)
    if settings.demo:
        # The demo plays the WeChat (and WeCom) send API itself, so `gridbot chat` can show what the bot
        # pushes and nothing reaches the real platform.
        fake = create_fake_wechat_app(
            app_id=DEMO_APP_ID,
            app_secret=DEMO_APP_SECRET,
            corp_id=settings.wecom.corp_id,
            corp_secret=settings.wecom.secret,
            agent_id=settings.wecom.agent_id,
            default_media=("image/png", sample_png()),
        )
        app.add_subapp(FAKE_PREFIX, fake)
    return app


def freeze_startup_heap(app: web.Application) -> web.Application:
    """For a server process: once started, keep what start-up loaded out of the garbage collector's walks.

    The modules, SQLAlchemy's metadata, the segmenter and the org snapshot live as long as the process,
    about 140,000 tracked objects; each full collection would walk them all, a 50–80 ms stall of every
    request in flight (measured on the 2-core development host). Not for tests, which start many apps
    in one process: what is frozen is never collected.
    """
    app.on_startup.append(_freeze_heap)  # runs after every cleanup context has started
    return app


async def _freeze_heap(app: web.Application) -> None:
    gc.collect()
    gc.freeze()


def demo_wechat(settings: Settings) -> Settings:
    """The demo's WeChat settings: its own fake WeChat API, mounted on the demo server."""
    server = settings.server
    api_base = f"http://{server.host}:{server.port}{FAKE_PREFIX}"
    wechat = replace(settings.wechat, api_base=api_base, app_id=DEMO_APP_ID, app_secret=DEMO_APP_SECRET)
    return replace(settings, wechat=wechat, wecom=replace(settings.wecom, api_base=api_base))


async def _classifier(app: web.Application) -> AsyncIterator[None]:
    """Load the rules and the segmenter's dictionary in a thread while the database starts."""
    rules = app[keys.SETTINGS].nlp.rules
    app[keys.CLASSIFIER] = asyncio.create_task(asyncio.to_thread(_load_classifier, rules))
    yield
    app[keys.CLASSIFIER].cancel()


def _load_classifier(rules: str) -> Classifier:
    classifier = Classifier.load(rules or None)
    classifier.warm_up()
    return classifier


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
    app[keys.STATEMENT_SESSIONS] = single_statement_sessions(engine)
    yield
    await engine.dispose()


def _state(given: StateStore | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        storage = app[keys.SETTINGS].storage
        store = given if given is not None else open_state(storage.redis_url, prefix=storage.redis_prefix)
        app[keys.STATE] = store
        yield
        if given is None:
            await store.close()

    return context


async def _services(app: web.Application) -> AsyncIterator[None]:
    """Load `[org] file` (one process at a time), then the org snapshot, classifier and time limits; keep
    the snapshot current while the server runs."""
    settings = app[keys.SETTINGS]
    if settings.org.file:
        spec = load_org_file(settings.org.file)
        state, owner = app[keys.STATE], uuid.uuid4().hex
        while not await state.acquire("org-import", owner, 60):  # noqa: ASYNC110 - a shared lease, no event to await
            await asyncio.sleep(0.1)
        try:
            async with app[keys.SESSIONS]() as session, session.begin():
                summary = await apply_org(session, spec)
        finally:
            await state.release("org-import", owner)
        log.info("organisation loaded from %s: %s", settings.org.file, summary)
    async with app[keys.SESSIONS]() as session:
        revision = await org_revision(session)
        directory = await Directory.load(session)
    try:
        classifier = await app[keys.CLASSIFIER]
    except ValueError as exc:  # a bad rules file
        raise StartupError(str(exc)) from None
    classifier.add_words(directory.names())
    app[keys.SERVICES] = Services(
        classifier,
        directory,
        limits(settings.sla, classifier),
        wecom=settings.wecom.enabled,
        weights=settings.report.weights,
        dashboard_url=public_base(settings.server),
    )
    watcher = OrgWatcher(app[keys.SESSIONS], app[keys.SERVICES], revision, metrics=app[keys.METRICS])
    app[keys.ORG_WATCH] = watcher
    async with watcher.running(stop_within=10):
        yield


def limits(sla: Limits, classifier: Classifier) -> Limits:
    """Config first, then the rules file's per-category limits, then the config defaults."""
    category: dict[str, dict[str, int]] = {}
    for label in classifier.labels:
        rule = classifier.rule(label)
        own = {
            k: parse_duration(v, f"{label}.{k}")
            for k, v in (("accept", rule.accept), ("resolve", rule.resolve))
            if v
        }
        own.update(sla.category.get(label, {}))
        if own:
            category[label] = own
    for label, values in sla.category.items():
        category.setdefault(label, dict(values))
    return replace(sla, category=category)


async def _outbox(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    async with aiohttp.ClientSession() as http:
        api = WeChatAPI(
            http,
            api_base=settings.wechat.api_base,
            app_id=settings.wechat.app_id,
            app_secret=settings.wechat.app_secret,
            state=app[keys.STATE],
            clock=app[keys.CLOCK],
        )
        senders: dict[str, Sender] = {"wechat": WeChatSender(api, settings.wechat.template_id)}
        if settings.wecom.enabled:
            wecom = WeComAPI(
                http,
                api_base=settings.wecom.api_base,
                corp_id=settings.wecom.corp_id,
                secret=settings.wecom.secret,
                agent_id=settings.wecom.agent_id,
                state=app[keys.STATE],
                clock=app[keys.CLOCK],
            )
            senders["wecom"] = WeComSender(wecom)
        worker = OutboxWorker(
            app[keys.STATEMENT_SESSIONS],
            ChannelSender(senders),
            clock=app[keys.CLOCK],
            metrics=app[keys.METRICS],
        )
        app[keys.OUTBOX] = worker
        async with worker.running(stop_within=worker.lease):  # a send cut off is re-sent after its lease
            yield


async def _media(app: web.Application) -> AsyncIterator[None]:
    """Photos and voice messages, downloaded and kept (an HTTP session and API client of its own; the
    access token is shared with the outbox through the state store)."""
    settings = app[keys.SETTINGS]
    async with aiohttp.ClientSession() as http:
        api = WeChatAPI(
            http,
            api_base=settings.wechat.api_base,
            app_id=settings.wechat.app_id,
            app_secret=settings.wechat.app_secret,
            state=app[keys.STATE],
            clock=app[keys.CLOCK],
            timeout=30.0,
        )
        worker = MediaWorker(
            app[keys.SESSIONS],
            {"wechat": api},
            app[keys.MEDIA_STORE],
            clock=app[keys.CLOCK],
            metrics=app[keys.METRICS],
        )
        app[keys.MEDIA] = worker
        async with worker.running(stop_within=5):
            yield


async def _timers(app: web.Application) -> AsyncIterator[None]:
    timers = TimerService(
        app[keys.SESSIONS],
        app[keys.STATE],
        app[keys.SERVICES],
        clock=app[keys.CLOCK],
        max_sleep=app[keys.SETTINGS].timers.max_sleep,
        on_queued=app[keys.OUTBOX].wake,
        metrics=app[keys.METRICS],
    )
    app[keys.TIMERS] = timers
    async with timers.running(stop_within=10):
        yield


async def _hotspots(app: web.Application) -> AsyncIterator[None]:
    rules = app[keys.SETTINGS].hotspots
    if not rules.enabled:
        yield
        return
    watch = HotspotWatch(
        app[keys.SESSIONS],
        app[keys.STATE],
        app[keys.SERVICES],
        rules,
        clock=app[keys.CLOCK],
        on_queued=app[keys.OUTBOX].wake,
    )
    app[keys.HOTSPOTS] = watch
    async with watch.running(stop_within=10):
        yield


async def _inbox(app: web.Application) -> AsyncIterator[None]:
    dispatcher = Dispatcher(
        app[keys.SESSIONS],
        app[keys.STATE],
        app[keys.SERVICES],
        clock=app[keys.CLOCK],
        on_queued=app[keys.OUTBOX].wake,
        on_deadline=app[keys.TIMERS].hint,  # a deadline written: the timers may have to wake sooner
    )
    app[keys.INBOX] = Inbox(
        app[keys.STATEMENT_SESSIONS], dispatcher, app[keys.METRICS], clock=app[keys.CLOCK]
    )
    yield
