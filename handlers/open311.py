"""An Open311 client's service request (POST /open311/v2/requests.json) opens an order through the same
intake as a resident's chat message.

The HTTP layer (`bot/open311/`) checks the request and hands it to the inbox as an `Incoming` of channel
`open311`, sender `open311:<client>`, kind `text`: the stored inbound row, exactly-once handling and
the reply are the chat's. Here the place comes from the request — `address_string` through the place
index, or `lat`/`long` to the nearest grid — and the category is the `service_code`, so the client is
never asked a question. API clients are not people: nobody sends them notices (they read their requests'
status back through GET).
"""

from __future__ import annotations

from handlers import texts
from handlers.context import Context
from handlers.directory import Directory
from handlers.intake import open_order
from handlers.notices import API_SENDER
from handlers.where import Where
from nlp.places import haversine_km
from storage.orders import get_order

CHANNEL = "open311"
MAX_KM = 3.0  # a location farther than this from every grid centre is outside our jurisdiction


def sender_of(client: str) -> str:
    return API_SENDER + client


def where_for(
    directory: Directory, address: str | None, location: tuple[float, float] | None
) -> Where | None:
    """The place of a request: a known place in `address_string`, else the grid nearest `lat`/`long`
    (within MAX_KM of its centre); None when neither says where in our grids it is."""
    if address:
        match = directory.index.find(address)
        if match is not None:
            name = directory.places[int(match.key)][0]
            return Where(int(match.key), match.grid, name + match.detail, match.detail, location)
    if location is not None:
        grid = directory.grid_near(*location)
        centre = directory.centres.get(grid or "")
        if grid is not None and centre is not None and haversine_km(*location, *centre) <= MAX_KM:
            return Where(None, grid, address or directory.unit_name(grid), location=location)
    return None


def is_api(ctx: Context) -> bool:
    return ctx.msg.channel == CHANNEL


async def submit(ctx: Context) -> str:
    """Open (or join) the order; the reply is stored on the inbound row with the order it made."""
    extra = ctx.msg.extra
    where = where_for(ctx.services.directory, extra.get("address"), ctx.msg.location)
    if where is None:  # the org changed between the HTTP check and here
        return texts.PLACE_NOT_FOUND
    category = str(extra.get("service_code") or "")
    if category not in ctx.services.classifier.labels:
        category = ctx.services.classifier.fallback or category
    reply = await open_order(ctx, ctx.msg.text, where, category=category)
    media_url = extra.get("media_url")
    if media_url and ctx.order_id is not None:  # the photo joins the order, new or the one it joined
        order = await get_order(ctx.session, ctx.order_id)
        if order is not None:
            order.media = [*order.media, {"pic_url": str(media_url)}]
    return reply
