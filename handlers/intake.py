"""A resident's words become a work order: classify, find the place and grid, dispatch, answer.

When the place cannot be found the bot asks for it and keeps the request as the resident's pending
question; the answer (a place name or a location) finishes the order. Photos sent within ten minutes
before or after a report are attached to it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from handlers import texts
from handlers.context import Context
from handlers.dispatch import announce, choose
from handlers.duplicates import find_duplicate, follow
from handlers.questions import WAIT, Ask
from handlers.resident import bind_grid, bind_to, my_orders, rate, rating_of
from handlers.workflow import OPEN_STATES, apply, create, describe_duration
from nlp.classifier import Classification
from storage.models import WorkOrder
from storage.orders import attach_loose_images, insert_order, recent_open_order, set_media
from storage.repo import ResidentInfo, touch_resident

CLARIFY_BELOW = 0.5  # classifier confidence under which the resident is asked to pick the category
PHOTO_WINDOW = timedelta(minutes=10)
_GREETINGS = re.compile(
    r"^(你好|您好|在吗|在不在|谢谢|多谢|好的|嗯+|ok|hi|hello|哈喽|早上好|晚上好)[!！。.~～?？]*$", re.I
)
_ASKS_PROGRESS = re.compile(r"进度|进展|怎么样了|处理了吗|修好了吗|办好了吗|有结果吗|到哪了")
_CANCEL = frozenset({"取消", "算了", "不用了", "没事了"})
_FIRE = ("火", "烟", "燃气", "煤气", "天然气", "爆炸")
_MEDICAL = ("摔倒", "晕倒", "昏迷", "受伤", "流血", "不省人事", "心脏", "急病", "触电")
_POLICE = ("打架", "斗殴", "持刀", "抢劫", "偷", "盗", "闯入", "跳楼")


@dataclass(frozen=True)
class Where:
    place_id: int | None
    grid: str
    label: str  # how the place reads in messages
    detail: str = ""
    location: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for a pending question."""
        return {**asdict(self), "location": list(self.location) if self.location else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Where:
        location = data.get("location")
        return cls(
            place_id=data.get("place_id"),
            grid=str(data["grid"]),
            label=str(data.get("label", "")),
            detail=str(data.get("detail", "")),
            location=(float(location[0]), float(location[1])) if location else None,
        )


async def report(ctx: Context) -> str:
    """A resident's text (or voice, or link title): a new request, or the answer to our question."""
    resident = await touch_resident(ctx.session, ctx.speaker.openid, ctx.now)
    pending = ctx.pending or {}
    text = ctx.msg.text.strip()
    if pending.get("ask") and text in _CANCEL:
        await ctx.state.clear_pending(ctx.pending_key)
        return texts.REPORT_CANCELLED
    if pending.get("ask") == Ask.PLACE:
        return await _answer_place(ctx, pending, text)
    if pending.get("ask") == Ask.CATEGORY:
        return await _answer_category(ctx, pending, text)
    if pending.get("ask") == Ask.RATE and (rating := rating_of(text)):
        return await rate(ctx, int(pending["order"]), rating)
    if pending.get("ask") == Ask.BIND:
        return await bind_to(ctx, text)
    if _GREETINGS.match(text):
        return texts.GREETING
    if len(text) <= 12 and _ASKS_PROGRESS.search(text):
        return await my_orders(ctx)
    where = _find_place(ctx, text) or _from_location(ctx, pending) or _bound_place(ctx, resident)
    if where is None:
        await ctx.state.set_pending(ctx.pending_key, {"ask": Ask.PLACE, "text": text}, WAIT)
        return texts.ASK_PLACE
    if pending.get("location"):
        await ctx.state.clear_pending(ctx.pending_key)
    return await open_order(ctx, text, where)


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
        await ctx.state.clear_pending(ctx.pending_key)
        label = ctx.msg.label or ctx.services.directory.unit_name(grid)
        return await open_order(ctx, str(pending["text"]), Where(None, grid, label, location=(lat, lng)))
    if pending.get("ask") == Ask.BIND:
        return await bind_grid(ctx, grid, ctx.msg.label or "")
    remembered = {"location": [lat, lng], "grid": grid, "label": ctx.msg.label or ""}
    await ctx.state.set_pending(ctx.pending_key, remembered, WAIT)
    return texts.LOCATION_RECEIVED


async def photo(ctx: Context) -> str:
    """A photo: added to the order the resident just opened, or kept for the report that follows."""
    await touch_resident(ctx.session, ctx.speaker.openid, ctx.now)
    order = await recent_open_order(ctx.session, ctx.speaker.openid, ctx.now - PHOTO_WINDOW, OPEN_STATES)
    if order is None:
        return texts.IMAGE_RECEIVED
    order.media = [*order.media, _media(ctx.msg.media_id, ctx.msg.pic_url)]
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
    return await open_order(ctx, str(pending["text"]), Where.from_dict(pending["where"]), category=category)


def _clarify_text(choices: list[str]) -> str:
    return texts.CLARIFY.format(choices="\n".join(f"{i} {label}" for i, label in enumerate(choices, 1)))


async def _answer_place(ctx: Context, pending: dict[str, Any], text: str) -> str:
    where = _find_place(ctx, text)
    if where is None:
        return texts.PLACE_NOT_FOUND
    await ctx.state.clear_pending(ctx.pending_key)
    original = str(pending.get("text", ""))
    return await open_order(ctx, f"{original}（地点：{text}）", where)


def _find_place(ctx: Context, text: str) -> Where | None:
    directory = ctx.services.directory
    match = directory.index.find(text)
    if match is None:
        return None
    place_id = int(match.key)
    name = directory.places[place_id][0]
    return Where(place_id, match.grid, name + match.detail, match.detail)


def _from_location(ctx: Context, pending: dict[str, Any]) -> Where | None:
    if not pending.get("location") or str(pending.get("grid", "")) not in ctx.services.directory.units:
        return None
    grid = str(pending["grid"])
    lat, lng = pending["location"]
    label = str(pending.get("label") or ctx.services.directory.unit_name(grid))
    return Where(None, grid, label, location=(float(lat), float(lng)))


def _bound_place(ctx: Context, resident: ResidentInfo) -> Where | None:
    directory = ctx.services.directory
    detail = resident.place_detail or ""
    place = directory.places.get(resident.place_id or -1)
    if place is not None:
        return Where(resident.place_id, place[1], place[0] + detail, detail)
    if resident.unit_id in directory.units:  # bound by a location: the grid, and the label WeChat gave
        return Where(None, str(resident.unit_id), detail or directory.unit_name(resident.unit_id))
    return None


def _media(media_id: str | None, pic_url: str | None) -> dict[str, str]:
    return {key: value for key, value in (("media_id", media_id), ("pic_url", pic_url)) if value}


async def open_order(ctx: Context, text: str, where: Where, *, category: str | None = None) -> str:
    """Create, dispatch and announce the order; the reply gives its number, handler and time limit.

    When the classifier is unsure the resident picks the category from numbered choices first; a
    report of a problem already open in the grid joins that order instead.
    """
    result: Classification = ctx.services.classifier.classify(text)
    fallback = ctx.services.classifier.fallback
    if category is None and result.label != fallback and result.confidence < CLARIFY_BELOW:
        likeliest = [label for label, _ in result.candidates if label != fallback][:3]
        choices = [*likeliest, fallback or "其他"]
        question = {"ask": Ask.CATEGORY, "text": text, "where": where.to_dict(), "choices": choices}
        await ctx.state.set_pending(ctx.pending_key, question, WAIT)
        return _clarify_text(choices)
    label = category or result.label
    duplicate = await find_duplicate(ctx, text, label, where.grid, where.place_id, where.detail)
    if duplicate is not None:
        return await follow(ctx, duplicate, text)
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
    # Written with plain statements (this runs for every report); `order` stays a detached value.
    columns = {
        column.key: getattr(order, column.key) for column in WorkOrder.__table__.columns if column.key != "id"
    }
    order.id = await insert_order(ctx.session, columns, events)
    ctx.order_id = order.id
    photos: list[dict[str, Any]] = []
    if ctx.loose_images:
        since = ctx.now - PHOTO_WINDOW
        photos = await attach_loose_images(ctx.session, ctx.msg.channel, ctx.speaker.openid, since, order.id)
    if photos:
        await set_media(ctx.session, order.id, [_media(p.get("media_id"), p.get("pic_url")) for p in photos])
    await announce(ctx, order, assignment, where.label)
    within = describe_duration(limits.seconds("accept", order.category, order.urgent))
    reply = texts.accepted_reply(order.id, order.category, assignment.handler_name, within, order.urgent)
    if order.urgent:
        reply = _emergency_advice(result) + "\n" + reply
    return reply


def _emergency_advice(result: Classification) -> str:
    cues = "".join(result.urgent_keywords)
    if any(word in cues for word in _FIRE):
        return texts.EMERGENCY["fire"]
    if any(word in cues for word in _MEDICAL):
        return texts.EMERGENCY["medical"]
    if any(word in cues for word in _POLICE):
        return texts.EMERGENCY["police"]
    return texts.EMERGENCY["any"]
