"""A second report of the same problem: same grid, category and place, similar words, within 48 hours.

It is linked to the open order (the resident follows it and hears of its progress) instead of opening
another. Words are similar when the two share a strong keyword of the category (路灯, not 坏了), or enough
character pairs once place names, numbers and punctuation are taken out. A different building
("3号楼" / "5号楼") is never the same problem.
"""

from __future__ import annotations

from datetime import timedelta

from handlers import texts
from handlers.context import Context
from handlers.workflow import OPEN_STATES
from nlp.normalize import normalize
from nlp.similarity import similarity
from storage.db import insert_ignoring_conflicts
from storage.models import OrderFollower
from storage.orders import get_order, recent_orders_like

WINDOW = timedelta(hours=48)
TELLING_WEIGHT = 2.0  # a keyword this strong for the category names the thing itself
SIMILAR = 0.25  # Jaccard overlap of character pairs, when no keyword is shared


async def find_duplicate(
    ctx: Context, text: str, category: str, grid: str, place_id: int | None, detail: str
) -> int | None:
    candidates = await recent_orders_like(ctx.session, grid, category, ctx.now - WINDOW, tuple(OPEN_STATES))
    names = ctx.services.directory.names()
    strong = _strong_words(ctx, category, text)
    for order in candidates:
        if place_id and order.place_id and place_id != order.place_id:
            continue
        if detail and order.place_detail and detail != order.place_detail:
            continue
        if (
            strong & _strong_words(ctx, category, order.text)
            or similarity(text, order.text, names) >= SIMILAR
        ):
            return order.id
    return None


def _strong_words(ctx: Context, category: str, text: str) -> set[str]:
    """The category's keywords that name the thing (路灯 2.5, not 坏了 1.5) found in the text."""
    plain = normalize(text)
    weights = ctx.services.classifier.rule(category).keywords
    return {word for word, weight in weights.items() if weight >= TELLING_WEIGHT and word in plain}


async def follow(ctx: Context, order_id: int, text: str) -> str:
    """Link this resident to the open order; they will be told of its progress with the others."""
    order = await get_order(ctx.session, order_id)
    assert order is not None  # found a moment ago in this transaction
    ctx.order_id = order.id
    if order.resident_openid == ctx.speaker.openid:
        return texts.ALREADY_REPORTED.format(n=order.id)
    values = {"order_id": order.id, "openid": ctx.speaker.openid, "text": text, "created_at": ctx.now}
    added = await ctx.session.execute(insert_ignoring_conflicts(ctx.session, OrderFollower), values)
    if added.rowcount:  # type: ignore[attr-defined]
        ctx.step(order, "follow", text)
    return texts.DUPLICATE_LINKED.format(n=order.id, category=order.category)
