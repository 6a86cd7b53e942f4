"""A resident's words become a work order: the gate, the category, the place and grid, dispatch, answer.

Only a message that says what is wrong or what is wanted opens an order (`nlp.gate`); greetings, thanks,
digits, emoji, questions about the bot, chatter and a bare place get a short answer. When the place cannot
be found the bot asks for it and keeps the request as the resident's pending question; the answer (a place
name or a location) finishes the order. An urgent report never waits for that answer: the advice comes
first, the order is recorded at once and the admins are alerted (`handlers.emergency`). Photos sent within
ten minutes before or after a report are attached to it; a voice message WeChat could not recognise is
kept and attached to the report that follows it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from handlers import commands, texts
from handlers.context import Context
from handlers.dispatch import announce, choose
from handlers.duplicates import find_duplicate, follow
from handlers.emergency import advice, alert_unplaced
from handlers.questions import WAIT, Ask
from handlers.resident import bind_grid, bind_to, my_orders, rate, rating_of
from handlers.where import Where, bound, from_hint, from_location, named_in
from handlers.workflow import FINAL_STATES, OPEN_STATES, apply, create, describe_duration
from nlp.classifier import Classification
from nlp.gate import Verdict
from nlp.places import building_in
from storage.models import WorkOrder, WorkOrderEvent
from storage.orders import (
    attach_inbound,
    attach_loose_images,
    get_order,
    insert_order,
    recent_open_order,
    set_media,
)
from storage.repo import ResidentInfo, last_words_before, touch_resident

__all__ = ["CLARIFY_BELOW", "PHOTO_WINDOW", "location", "open_order", "photo", "report", "voice_unrecognised"]

CLARIFY_BELOW = 0.5  # classifier confidence under which the resident is asked to pick the category
PHOTO_WINDOW = timedelta(minutes=10)
_ASKS_PROGRESS = re.compile(r"进度|进展|怎么样了|处理了吗|修好了吗|办好了吗|有结果吗|到哪了")
_CANCEL = frozenset({"取消", "算了", "不用了", "没事了"})
_MENU = {"1": "report", "2": "orders", "3": "help"}


async def report(ctx: Context) -> str:
    """A resident's text (or voice, or link title): a new request, or the answer to our question."""
    resident = await touch_resident(ctx.session, ctx.speaker.openid, ctx.now)
    pending = ctx.pending or {}
    text = ctx.msg.text.strip()
    ask = pending.get("ask")
    if ask and text in _CANCEL:
        await ctx.state.clear_pending(ctx.pending_key)
        if pending.get("order"):
            return texts.URGENT_KEPT.format(n=pending["order"])
        return texts.REPORT_CANCELLED
    if ask == Ask.PLACE:
        return await _answer_place(ctx, pending, text)
    if ask == Ask.CATEGORY:
        return await _answer_category(ctx, pending, text)
    if ask == Ask.RATE and (rating := rating_of(text)):
        return await rate(ctx, int(pending["order"]), rating)
    if ask == Ask.BIND:
        return await bind_to(ctx, text)
    if ask == Ask.MENU and text in _MENU:
        return await _menu_choice(ctx, text)
    if ask == Ask.VOICE and (category := _voice_choice(text)):
        return await _report(ctx, texts.VOICE_ONLY_TEXT, pending, resident, category=category)
    if len(text) <= 12 and _ASKS_PROGRESS.search(text):
        return await my_orders(ctx)
    verdict = ctx.services.gate.check(text, ctx.services.directory.index.spans)
    if not verdict.report:
        return await _chat(ctx, verdict, text)
    return await _report(ctx, text, pending, resident)


async def _report(
    ctx: Context, text: str, pending: dict[str, Any], resident: ResidentInfo, *, category: str | None = None
) -> str:
    """A report: find where, then open the order, ask where, or — urgent — record it and ask."""
    result = ctx.services.classifier.classify(text)
    given = named_in(ctx, text) or from_location(ctx, pending) or from_hint(ctx, pending)
    media = _pending_media(pending) + _own_media(ctx)
    if given is None and result.urgent:
        return await _urgent_unplaced(ctx, text, result, resident, media)
    where = given or _bound(ctx, resident, text)
    if where is None:
        question = {
            "ask": Ask.PLACE,
            "text": text,
            "media": media,
            "category": category,
            "inbound": ctx.inbound_id,
        }
        await ctx.state.set_pending(ctx.pending_key, question, WAIT)
        return texts.ASK_PLACE
    if pending:
        await ctx.state.clear_pending(ctx.pending_key)
    return await open_order(
        ctx, text, where.with_building(text), category=category, media=media, result=result
    )


def _bound(ctx: Context, resident: ResidentInfo, text: str) -> Where | None:
    place = bound(ctx, resident)
    return place.with_building(text, instead=True) if place else None


async def _chat(ctx: Context, verdict: Verdict, text: str) -> str:
    """Not a report: a short answer, and no order. A digit gets the menu; a bare place is remembered."""
    if verdict.kind == "digits":
        await ctx.state.set_pending(ctx.pending_key, {"ask": Ask.MENU}, WAIT)
        return texts.MENU
    if verdict.kind == "place":
        where = named_in(ctx, text)
        if where is None:
            return texts.PLACE_UNKNOWN_ONLY
        forgotten = await _forgotten_question(ctx)
        if forgotten is not None:  # the answer to “在哪？” after a restart lost the question
            return await _placed(ctx, forgotten, where, text)
        await ctx.state.set_pending(ctx.pending_key, {"place": where.to_dict(), "said": text}, WAIT)
        return texts.PLACE_ONLY
    return texts.CHAT_REPLIES.get(verdict.kind, texts.GREETING)


async def _forgotten_question(ctx: Context) -> dict[str, Any] | None:
    """The place question of the resident's last message, when the bot asked it where and nothing has
    answered it: in-process state does not survive a restart, the stored messages do."""
    since = ctx.now - timedelta(seconds=WAIT)
    last = await last_words_before(ctx.session, ctx.msg.channel, ctx.speaker.openid, ctx.inbound_id, since)
    if last is None:
        return None
    inbound_id, words, reply, order_id = last
    if reply != texts.ASK_PLACE or order_id is not None or not words:
        return None
    return {"ask": Ask.PLACE, "text": words, "inbound": inbound_id}


async def _menu_choice(ctx: Context, digit: str) -> str:
    await ctx.state.clear_pending(ctx.pending_key)
    choice = _MENU[digit]
    if choice == "orders":
        return await my_orders(ctx)
    if choice == "help":
        return commands.HELP_RESIDENT
    return texts.MENU_REPORT


def _voice_choice(text: str) -> str | None:
    answer = text.strip().rstrip("。.")
    choices = texts.VOICE_CHOICES
    if answer.isdigit() and 1 <= int(answer) <= len(choices):
        return choices[int(answer) - 1]
    return answer if answer in choices else None


async def voice_unrecognised(ctx: Context) -> str:
    """A voice message WeChat could not turn into words: kept for the report that follows."""
    await touch_resident(ctx.session, ctx.speaker.openid, ctx.now)
    kept = {
        key: value
        for key, value in (ctx.pending or {}).items()
        if key in ("location", "grid", "label", "place")
    }
    voices = [*_pending_media(ctx.pending or {}), *_own_media(ctx)]
    await ctx.state.set_pending(ctx.pending_key, {**kept, "ask": Ask.VOICE, "media": voices}, WAIT)
    return texts.VOICE_UNRECOGNISED


async def location(ctx: Context) -> str:
    """A location: answers "where is it?", or is remembered for the report that follows."""
    await touch_resident(ctx.session, ctx.speaker.openid, ctx.now)
    if ctx.msg.location is None:
        return texts.LOCATION_RECEIVED
    lat, lng = ctx.msg.location
    pending = ctx.pending or {}
    grid = ctx.services.directory.grid_near(lat, lng)
    if grid is None:
        return texts.PLACE_NOT_FOUND
    if pending.get("ask") == Ask.PLACE:
        label = ctx.msg.label or ctx.services.directory.unit_name(grid)
        return await _placed(ctx, pending, Where(None, grid, label, location=(lat, lng)), label)
    if pending.get("ask") == Ask.BIND:
        return await bind_grid(ctx, grid, ctx.msg.label or "")
    remembered = {**pending, "location": [lat, lng], "grid": grid, "label": ctx.msg.label or ""}
    await ctx.state.set_pending(ctx.pending_key, remembered, WAIT)
    return texts.LOCATION_RECEIVED


async def photo(ctx: Context) -> str:
    """A photo: added to the order the resident just opened, or kept for the report that follows."""
    await touch_resident(ctx.session, ctx.speaker.openid, ctx.now)
    order = await recent_open_order(ctx.session, ctx.speaker.openid, ctx.now - PHOTO_WINDOW, OPEN_STATES)
    if order is None:
        return texts.IMAGE_RECEIVED
    order.media = [*order.media, _media("image", ctx.msg.media_id, pic_url=ctx.msg.pic_url)]
    ctx.order_id = order.id
    return texts.PHOTO_ADDED.format(n=order.id)


async def _answer_category(ctx: Context, pending: dict[str, Any], text: str) -> str:
    choices = [str(c) for c in pending.get("choices", [])]
    answer = text.strip().rstrip("。.")
    if answer.isdigit() and 1 <= int(answer) <= len(choices):
        category = choices[int(answer) - 1]
    elif answer in choices:
        category = answer
    else:
        return _clarify_text(choices)
    await ctx.state.clear_pending(ctx.pending_key)
    where = Where.from_dict(pending["where"])
    media = list(pending.get("media") or [])
    return await open_order(ctx, str(pending["text"]), where, category=category, media=media)


def _clarify_text(choices: list[str]) -> str:
    return texts.CLARIFY.format(choices="\n".join(f"{i} {label}" for i, label in enumerate(choices, 1)))


async def _answer_place(ctx: Context, pending: dict[str, Any], text: str) -> str:
    """The answer to “在哪个小区/哪栋楼？”: a place finishes the waiting report (or dispatches the urgent
    order recorded without one); anything else is asked again — with the advice first when urgent."""
    where = named_in(ctx, text)
    if where is None:
        if pending.get("order"):
            return await _still_unplaced(ctx, pending, text)
        return texts.PLACE_NOT_FOUND
    return await _placed(ctx, pending, where, text)


async def _placed(ctx: Context, pending: dict[str, Any], where: Where, answer: str) -> str:
    await ctx.state.clear_pending(ctx.pending_key)
    original = str(pending.get("text", ""))
    where = where.with_building(answer, original)
    if pending.get("order"):
        placed = await _place_urgent(ctx, int(pending["order"]), where, answer)
        if placed is not None:
            return placed
    words = f"{original}（地点：{answer}）" if original else answer
    category = pending.get("category") or None
    reply = await open_order(ctx, words, where, category=category, media=list(pending.get("media") or []))
    if pending.get("inbound") and ctx.order_id is not None:  # the report that waited belongs to it
        await attach_inbound(ctx.session, [int(pending["inbound"])], ctx.order_id)
    return reply


async def _still_unplaced(ctx: Context, pending: dict[str, Any], text: str) -> str:
    """While an urgent order waits for its place: the advice again, and the question again."""
    number = int(pending["order"])
    order = await get_order(ctx.session, number, for_update=True)
    if order is not None and order.state not in FINAL_STATES:
        ctx.step(order, "follow", text)
        ctx.order_id = order.id
    ctx.urgent = True
    kinds = list(pending.get("kinds") or ()) or list(ctx.services.classifier.classify(text).urgent_kinds)
    return advice(kinds) + "\n" + texts.URGENT_STILL_WAITING.format(n=number)


async def _urgent_unplaced(
    ctx: Context, text: str, result: Classification, resident: ResidentInfo, media: list[dict[str, Any]]
) -> str:
    """An urgent report with no place in its words: recorded now, admins alerted, then asked where."""
    home = bound(ctx, resident)
    grid = home.grid if home else None
    order = WorkOrder(
        resident_openid=ctx.speaker.openid,
        text=text,
        category=result.label,
        confidence=round(result.confidence, 4),
        keywords=list(result.keywords),
        urgent=True,
        place_id=None,
        place_detail=building_in(text) or None,
        unit_id=grid,
        media=[],
        department_id=None,
    )
    events = [create(order, actor=ctx.speaker.openid, text=text, at=ctx.now, limits=ctx.services.limits)]
    ctx.timers_from(order)
    order.id = await _insert(ctx, order, events)
    await _attach_media(ctx, order, media)
    await alert_unplaced(ctx, order, grid)
    question = {"ask": Ask.PLACE, "text": text, "order": order.id, "kinds": list(result.urgent_kinds)}
    await ctx.state.set_pending(ctx.pending_key, question, WAIT)
    ctx.urgent = True
    return advice(result.urgent_kinds) + "\n" + texts.URGENT_RECORDED.format(n=order.id)


async def _place_urgent(ctx: Context, number: int, where: Where, answer: str) -> str | None:
    """Dispatch the urgent order that waited for its place; None when it is gone (then a new report)."""
    order = await get_order(ctx.session, number, for_update=True)
    if order is None or order.state in FINAL_STATES:
        return None
    ctx.order_id = order.id
    order.place_id = where.place_id
    order.place_detail = where.detail or order.place_detail
    order.unit_id = where.grid
    if where.location:
        order.lat, order.lng = where.location
    order.text = f"{order.text}（地点：{answer}）"
    ctx.step(order, "follow", f"补充地点：{answer}")
    assignment = choose(ctx, order.category, where.grid)
    order.department_id = assignment.department_id
    if assignment.assignee is not None and order.state in ("new", "returned"):
        limits = ctx.services.limits
        to = assignment.assignee.openid
        event = apply(
            order, "assign", actor="system", text=assignment.summary, at=ctx.now, limits=limits, assignee=to
        )
        ctx.session.add(event)
        ctx.timers_from(order)
    await announce(ctx, order, assignment, _label(ctx, where))
    ctx.urgent = True
    kinds = ctx.services.classifier.classify(f"{order.text} {answer}").urgent_kinds
    within = describe_duration(ctx.services.limits.seconds("accept", order.category, True))
    reply = texts.accepted_reply(order.id, order.category, assignment.handler_name, within, True)
    return advice(kinds) + "\n" + reply


def _label(ctx: Context, where: Where) -> str:
    return where.label or ctx.services.directory.unit_name(where.grid)


async def open_order(
    ctx: Context,
    text: str,
    where: Where,
    *,
    category: str | None = None,
    media: list[dict[str, Any]] | None = None,
    result: Classification | None = None,
) -> str:
    """Create, dispatch and announce the order; the reply gives its number, handler and time limit.

    When the classifier is unsure the resident picks the category from numbered choices first (never
    for an urgent report); a report of a problem already open in the grid joins that order instead.
    An urgent reply always starts with what to do now.
    """
    result = result or ctx.services.classifier.classify(text)
    media = list(media or [])
    first = advice(result.urgent_kinds) + "\n" if result.urgent else ""
    ctx.urgent = result.urgent
    fallback = ctx.services.classifier.fallback
    if (
        category is None
        and not result.urgent
        and result.label != fallback
        and result.confidence < CLARIFY_BELOW
    ):
        likeliest = [label for label, _ in result.candidates if label != fallback][:3]
        choices = [*likeliest, fallback or "其他"]
        question = {
            "ask": Ask.CATEGORY,
            "text": text,
            "where": where.to_dict(),
            "choices": choices,
            "media": media,
        }
        await ctx.state.set_pending(ctx.pending_key, question, WAIT)
        return _clarify_text(choices)
    label = category or result.label
    duplicate = await find_duplicate(ctx, text, label, where.grid, where.place_id, where.detail)
    if duplicate is not None:
        return first + await follow(ctx, duplicate, text)
    assignment = choose(ctx, label, where.grid)
    order = WorkOrder(
        resident_openid=ctx.speaker.openid,
        text=text,
        category=label,
        confidence=round(result.confidence, 4),
        keywords=list(result.keywords),
        urgent=result.urgent,
        place_id=where.place_id,
        place_detail=where.detail or None,
        unit_id=where.grid,
        media=[],
        lat=where.location[0] if where.location else None,
        lng=where.location[1] if where.location else None,
        department_id=assignment.department_id,
    )
    # The opening steps (state, first deadline, assignee) are the policy's, decided before the row is
    # written, so it is written once.
    limits = ctx.services.limits
    events = [create(order, actor=ctx.speaker.openid, text=text, at=ctx.now, limits=limits)]
    if assignment.assignee is not None:
        to = assignment.assignee.openid
        events.append(
            apply(
                order,
                "assign",
                actor="system",
                text=assignment.summary,
                at=ctx.now,
                limits=limits,
                assignee=to,
            )
        )
    ctx.timers_from(order)
    order.id = await _insert(ctx, order, events)
    await _attach_media(ctx, order, media)
    await announce(ctx, order, assignment, _label(ctx, where))
    within = describe_duration(limits.seconds("accept", order.category, order.urgent))
    return first + texts.accepted_reply(
        order.id, order.category, assignment.handler_name, within, order.urgent
    )


async def _insert(ctx: Context, order: WorkOrder, events: list[WorkOrderEvent]) -> int:
    """Write the order with plain statements (this runs for every report); `order` stays a detached value."""
    columns = {
        column.key: getattr(order, column.key) for column in WorkOrder.__table__.columns if column.key != "id"
    }
    number = await insert_order(ctx.session, columns, events)
    ctx.order_id = number
    return number


async def _attach_media(ctx: Context, order: WorkOrder, media: list[dict[str, Any]]) -> None:
    """The photos sent around the report and the voice kept for it become the order's media."""
    found = list(media)
    kept_inbound = [int(m["inbound"]) for m in media if m.get("inbound")]
    if kept_inbound:
        await attach_inbound(ctx.session, kept_inbound, order.id)
    if ctx.loose_images:
        since = ctx.now - PHOTO_WINDOW
        photos = await attach_loose_images(ctx.session, ctx.msg.channel, ctx.speaker.openid, since, order.id)
        found += [_media("image", p.get("media_id"), pic_url=p.get("pic_url")) for p in photos]
    if found:
        order.media = [{k: v for k, v in m.items() if k != "inbound"} for m in found]  # the push counts them
        await set_media(ctx.session, order.id, order.media)


def _own_media(ctx: Context) -> list[dict[str, Any]]:
    """The voice of this message itself, when it is a voice message."""
    if ctx.msg.kind != "voice" or not ctx.msg.media_id:
        return []
    return [_media("voice", ctx.msg.media_id, format=ctx.msg.extra.get("format"), inbound=ctx.inbound_id)]


def _pending_media(pending: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(m) for m in pending.get("media") or [] if isinstance(m, dict)]


def _media(kind: str, media_id: str | None, **more: Any) -> dict[str, Any]:
    item = {"kind": kind, "media_id": media_id, **more}
    return {key: value for key, value in item.items() if value is not None}
