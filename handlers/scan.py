"""What the official account's own buttons do: a scanned place code (扫码报事) and a menu click.

Every place of the org has a permanent QR code whose scene is `place_scene(name)`: a hash of the place's
name, so the code on a poster stays valid across org re-imports and even a rebuilt database, as long as
the place keeps its name. A scan, as the `subscribe` of a new follower or the `SCAN` of one already
following, binds the resident to that place: their next report opens there without asking where. A
scene we do not know (a renamed place, someone else's code) gets the normal welcome.
"""

from __future__ import annotations

import hashlib

from handlers import commands, conversation, texts
from handlers.context import Context
from handlers.directory import Directory
from handlers.resident import my_orders
from handlers.staff import todo
from storage.repo import bind_resident, touch_resident

SCENE_PREFIX = "p:"
# The menu's click keys and what each button does (`gridbot menu set` refuses any other key).
MENU_KEYS = {
    "REPORT": "怎样报事",
    "MY_ORDERS": "我的工单（工作人员：待办）",
    "HELP": "帮助",
    "HOTLINES": "便民电话",
}


def place_scene(name: str) -> str:
    """The stable scene_str of a place's permanent code (18 characters, WeChat allows 64)."""
    return SCENE_PREFIX + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def place_of_scene(directory: Directory, scene: str | None) -> int | None:
    """The active place whose code this is, or None."""
    if not scene or not scene.startswith(SCENE_PREFIX):
        return None
    return next((pid for pid, (name, _) in directory.places.items() if place_scene(name) == scene), None)


def is_scan(ctx: Context) -> bool:
    """A scanned code: a follow through a code (its key is the scene) or a scan by a follower."""
    return ctx.msg.kind == "event" and (
        ctx.msg.event == "scan" or (ctx.msg.event == "subscribe" and bool(ctx.msg.event_key))
    )


async def scanned(ctx: Context) -> str:
    directory = ctx.services.directory
    place_id = place_of_scene(directory, ctx.msg.event_key)
    if place_id is None:
        return await conversation.welcome(ctx)
    name, grid = directory.places[place_id]
    if ctx.speaker.is_staff:
        return texts.SCANNED_BY_STAFF.format(place=name, grid=directory.unit_name(grid))
    await touch_resident(ctx.session, ctx.speaker.openid, ctx.now, subscribed=True)
    await bind_resident(ctx.session, ctx.speaker.openid, place_id=place_id, detail=None, unit_id=grid)
    await ctx.state.clear_pending(ctx.pending_key)  # a question asked before the scan no longer applies
    reply = texts.SCANNED.format(place=name, branch=directory.branch_name(grid))
    return texts.SCANNED_WELCOME + reply if ctx.msg.event == "subscribe" else reply


def is_click(ctx: Context) -> bool:
    return ctx.msg.kind == "event" and ctx.msg.event == "click"


async def click(ctx: Context) -> str | None:
    """A menu button: the same as the command it stands for. An unknown key is stored, not answered."""
    key = ctx.msg.event_key or ""
    if key not in MENU_KEYS:
        return None
    if not ctx.speaker.is_staff:
        await touch_resident(ctx.session, ctx.speaker.openid, ctx.now)
    if key == "REPORT":
        return texts.HOW_TO_REPORT
    if key == "MY_ORDERS":
        return await (todo(ctx) if ctx.speaker.is_staff else my_orders(ctx))
    if key == "HELP":
        return await commands.help_reply(ctx)
    return texts.HOTLINES
