"""Every typed key of the aiohttp application, in one module (never constructed inline)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.edge.inbox import Inbox
from bot.edge.wechat import Channel
from bot.metrics import Metrics
from bot.workers.hotspots import HotspotWatch
from bot.workers.media import MediaWorker
from bot.workers.org_watch import OrgWatcher
from bot.workers.outbox import OutboxWorker
from bot.workers.timers import TimerService
from handlers.context import Services
from nlp.classifier import Classifier
from storage.media_store import MediaStore
from storage.state import StateStore

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Callable[[], float])
METRICS = web.AppKey("metrics", Metrics)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
# one statement per unit of work (storage.db.single_statement_sessions)
STATEMENT_SESSIONS = web.AppKey("statement_sessions", async_sessionmaker[AsyncSession])
STATE = web.AppKey("state", StateStore)
WECHAT = web.AppKey("wechat", Channel)
WECOM = web.AppKey("wecom", Channel)  # set only when `[wecom]` is configured
INBOX = web.AppKey("inbox", Inbox)
SERVICES = web.AppKey("services", Services)
ORG_WATCH = web.AppKey("org_watch", OrgWatcher)
OUTBOX = web.AppKey("outbox", OutboxWorker)
TIMERS = web.AppKey("timers", TimerService)
HOTSPOTS = web.AppKey("hotspots", HotspotWatch)  # set only when `[hotspots] enabled`
CLASSIFIER = web.AppKey("classifier", asyncio.Task[Classifier])  # loading while the database starts
MEDIA_STORE = web.AppKey("media_store", MediaStore)  # photos and voice kept by content hash
MEDIA = web.AppKey("media", MediaWorker)
