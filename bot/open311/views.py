"""The HTTP side of Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2), JSON only.

GET discovery.json, services.json, requests.json (filters service_request_id, service_code,
start_date/end_date — W3C datetimes with a time zone, at most 90 days apart, the last 90 days by
default — and status open/closed) and requests/{id}.json; POST requests.json with an `api_key` of
`[open311] api_keys` (one per client) opens an order through the chat's own inbox and intake. Errors
are `[{"code": …, "description": …}]` with the same HTTP status: 400 a bad or missing argument, 403 no
valid api_key, 404 an unknown service_code or request, 429 the client is sending too fast.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot import keys
from bot.open311 import fields
from handlers import texts
from handlers.incoming import Incoming
from handlers.open311 import CHANNEL, sender_of, where_for
from storage.models import WorkOrder
from storage.open311 import find_orders, last_changed, order_of_inbound
from storage.orders import get_order

log = logging.getLogger(__name__)

PREFIX = "/open311/v2"
MAX_SPAN = timedelta(days=90)
DESCRIPTION_MAX = 4000
URL_MAX = 1024
_FORMAT = r"{fmt:[A-Za-z]+}"

routes = web.RouteTableDef()


class Open311Error(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda obj: json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    )


def _error(status: int, description: str) -> web.Response:
    return _json([{"code": status, "description": description}], status)


def _endpoint(
    handler: Callable[[web.Request], Any],
) -> Callable[[web.Request], Any]:
    """JSON only; an Open311Error becomes the spec's error list."""

    async def wrapped(request: web.Request) -> web.Response:
        if request.match_info.get("fmt", "json").lower() != "json":
            return _error(400, "本接口只提供 JSON，请用 .json")
        try:
            return await handler(request)
        except Open311Error as exc:
            return _error(exc.status, exc.description)

    wrapped.__name__ = handler.__name__
    return wrapped


def _client(request: web.Request, given: str | None) -> str | None:
    """The client whose api_key this is (compared in constant time), or None."""
    match = None
    for client, key in request.app[keys.SETTINGS].open311.api_keys.items():
        if given and hmac.compare_digest(key.encode(), given.encode()):
            match = client
    return match


def _check_read(request: web.Request) -> None:
    if request.app[keys.SETTINGS].open311.read_key_required and not _client(
        request, request.query.get("api_key")
    ):
        raise Open311Error(403, "api_key 无效或缺失")


def _now(request: web.Request) -> datetime:
    return datetime.fromtimestamp(request.app[keys.CLOCK](), UTC)


def _base_url(request: web.Request) -> str:
    public = request.app[keys.SETTINGS].server.public_url.rstrip("/")
    return (public or f"{request.scheme}://{request.host}") + PREFIX


@routes.get(PREFIX + "/discovery." + _FORMAT)
@_endpoint
async def discovery(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS].open311
    return _json(fields.discovery(_base_url(request), settings.contact, settings.key_service))


@routes.get(PREFIX + "/services." + _FORMAT)
@_endpoint
async def services(request: web.Request) -> web.Response:
    _check_read(request)
    return _json(fields.services(request.app[keys.SERVICES]))


def _w3c(name: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise Open311Error(400, f"{name} 应为 W3C 时间，如 2026-11-05T08:15:30+08:00") from None
    if moment.tzinfo is None:
        raise Open311Error(400, f"{name} 需要时区（Z 或 +08:00）")
    return moment.astimezone(UTC)


def _listed(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _ids(value: str | None) -> list[int] | None:
    listed = _listed(value)
    if listed is None:
        return None
    if not all(part.isdigit() and len(part) <= 18 for part in listed):
        raise Open311Error(400, "service_request_id 应为逗号分隔的工单号")
    return [int(part) for part in listed]


async def _answer(request: web.Request, session: AsyncSession, orders: list[WorkOrder]) -> web.Response:
    changed = await last_changed(session, [o.id for o in orders])
    services_ = request.app[keys.SERVICES]
    return _json([fields.service_request(o, services_, changed.get(o.id)) for o in orders])


@routes.get(PREFIX + "/requests." + _FORMAT)
@_endpoint
async def list_requests(request: web.Request) -> web.Response:
    _check_read(request)
    query = request.query
    ids = _ids(query.get("service_request_id"))
    if ids is not None:  # overrides every other argument
        async with request.app[keys.SESSIONS]() as session:
            return await _answer(request, session, await find_orders(session, ids=ids))
    codes = _listed(query.get("service_code"))
    wanted = _listed(query.get("status"))
    if wanted is not None and not set(wanted) <= {"open", "closed"}:
        raise Open311Error(400, "status 只能是 open 或 closed（可逗号分隔）")
    start = _w3c("start_date", query["start_date"]) if query.get("start_date") else None
    end = _w3c("end_date", query["end_date"]) if query.get("end_date") else None
    if start is None and end is None:
        end = _now(request)
    if start is None:
        start = (end or _now(request)) - MAX_SPAN
    if end is None:
        end = min(start + MAX_SPAN, max(_now(request), start))
    if end < start:
        raise Open311Error(400, "end_date 早于 start_date")
    if end - start > MAX_SPAN:
        raise Open311Error(400, "start_date 与 end_date 最多相隔 90 天")
    states: set[str] | None = None
    if wanted is not None:
        states = set()
        if "open" in wanted:
            states |= set(fields.OPEN_STATES)
        if "closed" in wanted:
            states |= set(fields.CLOSED_STATES)
    async with request.app[keys.SESSIONS]() as session:
        orders = await find_orders(session, categories=codes, start=start, end=end, states=states)
        return await _answer(request, session, orders)


@routes.get(PREFIX + r"/requests/{id:[^/.]+}." + _FORMAT)
@_endpoint
async def one_request(request: web.Request) -> web.Response:
    _check_read(request)
    ident = request.match_info["id"]
    if not ident.isdigit() or len(ident) > 18:
        raise Open311Error(404, f"没有服务请求 {ident}")
    async with request.app[keys.SESSIONS]() as session:
        orders = await find_orders(session, ids=[int(ident)])
        if not orders:
            raise Open311Error(404, f"没有服务请求 {ident}")
        return await _answer(request, session, orders)


def _location(params: Mapping[str, str]) -> tuple[float, float] | None:
    lat, lng = params.get("lat", "").strip(), params.get("long", "").strip()
    if not lat and not lng:
        return None
    try:
        point = (float(lat), float(lng))
    except ValueError:
        raise Open311Error(400, "lat 与 long 应同时给出，为 WGS84 十进制度数") from None
    if not (-90 <= point[0] <= 90 and -180 <= point[1] <= 180):
        raise Open311Error(400, "lat 或 long 超出范围")
    return point


@routes.post(PREFIX + "/requests." + _FORMAT)
@_endpoint
async def create_request(request: web.Request) -> web.Response:
    form = await request.post()
    params = {k: v for k, v in {**request.query, **form}.items() if isinstance(v, str)}
    client = _client(request, params.get("api_key"))
    if client is None:
        raise Open311Error(403, "api_key 无效或缺失")
    services_ = request.app[keys.SERVICES]
    code = params.get("service_code", "").strip()
    if not code:
        raise Open311Error(400, "缺少 service_code")
    if code not in services_.classifier.labels:
        raise Open311Error(404, f"没有服务 {code}（见 services.json）")
    location = _location(params)
    address = params.get("address_string", "").strip()[:256] or None
    if location is None and address is None:
        raise Open311Error(400, "需要 lat/long 或 address_string")
    if where_for(services_.directory, address, location) is None:
        raise Open311Error(400, "地点不在本服务的网格范围内")
    description = params.get("description", "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise Open311Error(400, f"description 最多 {DESCRIPTION_MAX} 个字符")
    media_url = params.get("media_url", "").strip() or None
    if media_url and (not media_url.startswith(("https://", "http://")) or len(media_url) > URL_MAX):
        raise Open311Error(400, "media_url 应为 http(s) 地址")
    sender = sender_of(client)
    incoming = Incoming(
        channel=CHANNEL,
        sender=sender,
        account=CHANNEL,
        kind="text",
        create_time=int(request.app[keys.CLOCK]()),
        msg_id=uuid.uuid4().hex,
        text=description or f"{code}（由 {client} 经 Open311 提交）",
        location=location,
        label=address,
        extra={
            "service_code": code,
            **({"address": address} if address else {}),
            **({"media_url": media_url} if media_url else {}),
        },
    )
    reply = await request.app[keys.INBOX].receive(incoming)
    async with request.app[keys.SESSIONS]() as session:
        number = await order_of_inbound(session, CHANNEL, incoming.dedupe_key)
        order = await get_order(session, number) if number is not None else None
    if order is None:
        if reply == texts.THROTTLED:
            raise Open311Error(429, "提交太快，请一分钟后再试")
        log.warning("open311 request from %s opened no order", client)
        raise Open311Error(503, "暂时无法受理，请稍后再试")
    return _json([fields.posted(order, sender, services_)])
