"""CSV export of any filtered orders list, with FixMyStreet-like columns (its dashboard's export:
created, confirmed, acknowledged, fixed and closed times, state, category, area, place, rating)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from aiohttp import web

from bot import keys
from bot.dashboard.auth import current, now_of
from bot.dashboard.filters import read_query
from handlers.directory import Directory
from handlers.rates import CHINA
from handlers.views import place_label
from handlers.workflow import STATE_NAMES
from storage.dashboard import stream_orders
from storage.models import WorkOrder

COLUMNS = (
    "id",
    "created",
    "accepted",
    "resolved",
    "closed",
    "state",
    "state_name",
    "category",
    "urgent",
    "grid",
    "community",
    "place",
    "rating",
    "text",
    "latitude",
    "longitude",
    "url",
)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(CHINA).isoformat(timespec="seconds") if moment else ""


def row_of(order: WorkOrder, directory: Directory, base: str) -> list[str | int]:
    return [
        order.id,
        _when(order.created_at),
        _when(order.accepted_at),
        _when(order.resolved_at),
        _when(order.closed_at),
        order.state,
        STATE_NAMES.get(order.state, order.state),
        order.category,
        int(bool(order.urgent)),
        directory.unit_name(order.unit_id),
        directory.unit_name(directory.ancestor(order.unit_id, "community")),
        place_label(order, directory),
        order.rating or "",
        order.text,
        "" if order.lat is None else f"{order.lat:.6f}",
        "" if order.lng is None else f"{order.lng:.6f}",
        f"{base}/dashboard/orders/{order.id}",
    ]


def _lines(rows: list[list[str | int]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


async def export_csv(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/orders.csv?…filters…: every matching order in scope, oldest first, streamed.

    UTF-8 with a byte-order mark, so that spreadsheet programs read the Chinese right."""
    admin = current(request)
    services = request.config_dict[keys.SERVICES]
    now = now_of(request)
    query = read_query(request.query, services.directory, admin.grids, now)
    base = services.dashboard_url.rstrip("/")
    name = f"gridbot-orders-{now.astimezone(CHINA):%Y%m%d-%H%M}.csv"
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
        }
    )
    await response.prepare(request)
    await response.write("\ufeff".encode() + _lines([list(COLUMNS)]))
    async with request.config_dict[keys.SESSIONS]() as session:
        async for batch in stream_orders(session, admin.grids, query.filter):
            await response.write(_lines([row_of(order, services.directory, base) for order in batch]))
    await response.write_eof()
    return response
