"""The dashboard's pages: the overview (态势) and its JSON, the orders list, an order, its media files."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from bot import keys
from bot.dashboard.auth import current, now_of, refusal, take_flash
from bot.dashboard.filters import PAGE_SIZE, STATE_CHOICES, read_query
from bot.dashboard.overview import RatesCache, overview
from handlers.views import place_label
from handlers.workflow import OPEN_STATES, STATE_NAMES
from storage import dashboard as queries
from storage.orders import events_of

RATES_CACHE = web.AppKey("dashboard_rates_cache", RatesCache)
EVENT_NAMES = {
    "create": "居民反映",
    "assign": "派单",
    "claim": "党员领单",
    "accept": "接单",
    "transfer": "转派",
    "return": "退单",
    "progress": "进展",
    "extend": "延期",
    "extend_request": "申请延期",
    "resolve": "办结",
    "rate": "评价",
    "reopen": "不满意重办",
    "close_unrated": "超时未评价关闭",
    "cancel": "居民撤销",
    "remind": "超时提醒",
    "escalate": "升级督办",
    "urge": "居民催办",
    "supervise": "督办",
    "photo": "补充照片",
    "follow": "其他居民反映",
}


async def _overview_data(request: web.Request) -> dict[str, object]:
    services = request.config_dict[keys.SERVICES]
    return await overview(
        request.config_dict[keys.SESSIONS],
        services.directory,
        current(request),
        now_of(request),
        services.weights,
        request.app[RATES_CACHE],
    )


@aiohttp_jinja2.template("overview.html")
async def overview_page(request: web.Request) -> dict[str, object]:
    return {"admin": current(request), "data": await _overview_data(request), "page": "overview"}


async def overview_json(request: web.Request) -> web.Response:
    return web.json_response(await _overview_data(request))


def _unit_choices(request: web.Request) -> list[tuple[str, str]]:
    """The units an admin may filter by: their own and every unit below it, in tree order."""
    directory = request.config_dict[keys.SERVICES].directory
    admin = current(request)
    found: list[tuple[str, str]] = []

    def walk(unit_id: str, depth: int) -> None:
        found.append((unit_id, "\u3000" * depth + directory.unit_name(unit_id)))
        for child in sorted(u.id for u in directory.units.values() if u.parent_id == unit_id):
            walk(child, depth + 1)

    walk(admin.unit_id, 0)
    return found


@aiohttp_jinja2.template("orders.html")
async def orders_page(request: web.Request) -> dict[str, object]:
    admin = current(request)
    services = request.config_dict[keys.SERVICES]
    query = read_query(request.query, services.directory, admin.grids, now_of(request))
    async with request.config_dict[keys.SESSIONS]() as session:
        page = await queries.find_orders(
            session, admin.grids, query.filter, offset=(query.page - 1) * PAGE_SIZE, limit=PAGE_SIZE
        )
    pages = max(1, -(-page.total // PAGE_SIZE))
    return {
        "admin": admin,
        "page": "orders",
        "query": query,
        "result": page,
        "pages": pages,
        "states": STATE_CHOICES,
        "state_names": STATE_NAMES,
        "categories": services.classifier.labels,
        "units": _unit_choices(request),
        "directory": services.directory,
    }


def _order_number(request: web.Request) -> int | None:
    text = request.match_info["number"]
    return int(text) if text.isdigit() and len(text) < 10 else None


async def order_page(request: web.Request) -> web.StreamResponse:
    admin = current(request)
    number = _order_number(request)
    services = request.config_dict[keys.SERVICES]
    async with request.config_dict[keys.SESSIONS]() as session:
        order = await queries.order_in_scope(session, admin.grids, number) if number else None
        if order is None:
            return refusal(request, "not_found", 404)
        events = await events_of(session, order.id)
        media = await queries.media_of_order(session, order.id)
        undelivered = await queries.undelivered_of_order(session, order.id)
    directory = services.directory
    people = {e.actor: directory.person(e.actor) for e in events}
    context = {
        "admin": admin,
        "page": "orders",
        "order": order,
        "state_name": STATE_NAMES.get(order.state, order.state),
        "place": place_label(order, directory),
        "grid": directory.unit_name(order.unit_id),
        "community": directory.unit_name(directory.ancestor(order.unit_id, "community")),
        "assignee": directory.person(order.assignee_openid),
        "events": events,
        "event_names": EVENT_NAMES,
        "people": people,
        "photos": [m for m in media if m.kind == "image"],
        "voices": [m for m in media if m.kind == "voice"],
        "undelivered": undelivered,
        "directory": directory,
        "grids": [(g, directory.unit_name(g)) for g in admin.grids],
        "is_open": order.state in OPEN_STATES,
        "now": now_of(request),
        "flash": await take_flash(request),
    }
    return aiohttp_jinja2.render_template("order.html", request, context)


async def media_file(request: web.Request) -> web.StreamResponse:
    """A stored photo or voice message, only for an admin whose scope holds its order."""
    admin = current(request)
    text = request.match_info["media"]
    if not text.isdigit() or len(text) > 12:
        return refusal(request, "not_found", 404)
    async with request.config_dict[keys.SESSIONS]() as session:
        found = await queries.media_in_scope(session, admin.grids, int(text))
    if found is None or found.sha256 is None:
        return refusal(request, "not_found", 404)
    data = await request.config_dict[keys.MEDIA_STORE].read(found.sha256)
    if data is None:
        return refusal(request, "not_found", 404)
    response = web.Response(body=data, content_type=found.content_type or "application/octet-stream")
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response
