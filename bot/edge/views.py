"""HTTP handlers: the WeChat and WeCom push endpoints, health and metrics. Thin: the edge and the inbox do the work."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from aiohttp import web

from bot import keys
from bot.edge.wechat import MAX_BODY, Channel, EdgeError
from handlers.workflow import OPEN_DEADLINES
from storage.db import ping
from storage.gauges import live_gauges

log = logging.getLogger(__name__)


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise EdgeError(413, "body too large")
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise EdgeError(413, "body too large")
    return body


def _refuse(request: web.Request, error: EdgeError, endpoint: str = "wechat") -> web.Response:
    request.app[keys.METRICS].inc("gridbot_requests_total", endpoint=endpoint, status=str(error.status))
    log.info("refused %s %s: %s", request.method, request.path, error.reason)
    return web.Response(status=error.status, text=error.reason)


async def _verify(request: web.Request, key: web.AppKey[Channel]) -> web.Response:
    """URL verification for either account: the echostr to answer (WeCom's decrypted)."""
    channel = request.app[key]
    try:
        echo = channel.verify_url(request.query)
    except EdgeError as error:
        return _refuse(request, error, channel.name)
    return web.Response(text=echo)


async def _push(
    request: web.Request, key: web.AppKey[Channel], *, agent_id: str | None = None
) -> web.Response:
    """A pushed message for either account: decode, handle once, answer (encrypted when it came so).

    `agent_id`: the WeCom app's AgentID; a push (signed with our token, so from our corp) for another
    app of the corp is refused."""
    started = time.perf_counter()
    channel = request.app[key]
    try:
        incoming = channel.decode(request.query, await _read_body(request))
        if agent_id is not None and incoming.agent_id != agent_id:
            raise EdgeError(403, "unexpected AgentID")
    except EdgeError as error:
        return _refuse(request, error, channel.name)
    reply = await request.app[keys.INBOX].receive(incoming)
    body = channel.render_reply(incoming, reply, request.query)
    metrics = request.app[keys.METRICS]
    metrics.inc("gridbot_requests_total", endpoint=channel.name, status="200")
    metrics.observe(time.perf_counter() - started)
    return web.Response(text=body, content_type="application/xml" if body.startswith("<") else "text/plain")


async def wechat_verify(request: web.Request) -> web.Response:
    return await _verify(request, keys.WECHAT)


async def wechat_push(request: web.Request) -> web.Response:
    return await _push(request, keys.WECHAT)


async def wecom_verify(request: web.Request) -> web.Response:
    return await _verify(request, keys.WECOM)


async def wecom_push(request: web.Request) -> web.Response:
    return await _push(request, keys.WECOM, agent_id=str(request.app[keys.SETTINGS].wecom.agent_id))


async def healthz(request: web.Request) -> web.Response:
    database = await ping(request.app[keys.ENGINE])
    state = await request.app[keys.STATE].ping()
    status = 200 if database and state else 503
    return web.json_response({"database": database, "state": state}, status=status)


async def metrics(request: web.Request) -> web.Response:
    gauges: dict[str, float] = {}
    now = datetime.fromtimestamp(request.app[keys.CLOCK](), UTC)
    try:
        async with request.app[keys.SESSIONS]() as session:
            gauges = await live_gauges(session, OPEN_DEADLINES, now)
    except Exception:  # the database may be down: the counters are still worth scraping
        log.exception("metrics: the gauges could not be read")
    text = request.app[keys.METRICS].render(gauges)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")
