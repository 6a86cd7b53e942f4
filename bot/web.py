"""HTTP handlers: the WeChat push endpoint, health and metrics. Thin: the edge and the inbox do the work."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from bot import keys
from bot.wechat import MAX_BODY, EdgeError
from storage.db import ping

log = logging.getLogger(__name__)


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise EdgeError(413, "body too large")
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise EdgeError(413, "body too large")
    return body


def _refuse(request: web.Request, error: EdgeError) -> web.Response:
    request.app[keys.METRICS].inc("gridbot_requests_total", endpoint="wechat", status=str(error.status))
    log.info("refused %s %s: %s", request.method, request.path, error.reason)
    return web.Response(status=error.status, text=error.reason)


async def wechat_verify(request: web.Request) -> web.Response:
    try:
        echo = request.app[keys.WECHAT].verify_url(request.query)
    except EdgeError as error:
        return _refuse(request, error)
    return web.Response(text=echo)


async def wechat_push(request: web.Request) -> web.Response:
    started = time.perf_counter()
    channel = request.app[keys.WECHAT]
    try:
        incoming = channel.decode(request.query, await _read_body(request))
    except EdgeError as error:
        return _refuse(request, error)
    reply = await request.app[keys.INBOX].receive(incoming)
    body = channel.render_reply(incoming, reply, request.query)
    metrics = request.app[keys.METRICS]
    metrics.inc("gridbot_requests_total", endpoint="wechat", status="200")
    metrics.observe(time.perf_counter() - started)
    return web.Response(text=body, content_type="application/xml" if body.startswith("<") else "text/plain")


async def healthz(request: web.Request) -> web.Response:
    database = await ping(request.app[keys.ENGINE])
    state = await request.app[keys.STATE].ping()
    status = 200 if database and state else 503
    return web.json_response({"database": database, "state": state}, status=status)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(text=request.app[keys.METRICS].render(), content_type="text/plain", charset="utf-8")
