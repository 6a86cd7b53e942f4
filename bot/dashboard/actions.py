"""派单, 督办 and 延期 from the page: each is the chat command itself, handled by the inbox.

The form becomes the words an admin would send (`派单 12 筱塘社区第二网格`) from the admin's openid on the
channel `dashboard`; the inbox stores it, the dispatcher identifies the admin and routes it to the same
handler with the same authorisation, which records the same events and queues the same notices. Its
reply is what the page shows.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from bot import keys
from bot.dashboard.auth import current, flash, refusal
from handlers.commands import MAX_EXTENSION_DAYS
from handlers.incoming import Incoming
from storage import dashboard as queries

CHANNEL = "dashboard"


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join(str(text).split())[:limit]


def command_text(action: str, number: int, form: dict[str, str]) -> str | None:
    """The chat command for this form, or None when the form is incomplete."""
    if action == "supervise":
        return f"督办 {number}"
    if action == "dispatch":
        target = _one_line(form.get("person", "")) or _one_line(form.get("grid", ""))
        return f"派单 {number} {target}" if target else None
    if action == "extend":
        days, reason = form.get("days", "").strip(), _one_line(form.get("reason", ""))
        if not days.isdigit() or not 1 <= int(days) <= MAX_EXTENSION_DAYS or not reason:
            return None
        return f"延期 {number} {int(days)} {reason}"
    return None


async def run_command(request: web.Request, text: str) -> str:
    """Send `text` as the logged-in admin through the inbox; the reply."""
    clock = request.config_dict[keys.CLOCK]
    msg = Incoming(
        channel=CHANNEL,
        sender=current(request).openid,
        account=CHANNEL,
        kind="text",
        create_time=int(clock()),
        msg_id=f"dashboard-{uuid.uuid4().hex}",
        text=text,
    )
    return await request.config_dict[keys.INBOX].receive(msg) or ""


async def order_action(request: web.Request) -> web.StreamResponse:
    """POST /dashboard/orders/{number}/{action}: run it, then show the order with the reply."""
    admin = current(request)
    number_text, action = request.match_info["number"], request.match_info["action"]
    number = int(number_text) if number_text.isdigit() and len(number_text) < 10 else 0
    async with request.config_dict[keys.SESSIONS]() as session:
        order = await queries.order_in_scope(session, admin.grids, number) if number else None
    if order is None:
        return refusal(request, "not_found", 404)
    form = {key: str(value) for key, value in (await request.post()).items()}
    text = command_text(action, number, form)
    if text is None:
        await flash(request, "请把表单填写完整：派单要选网格或写同志姓名，延期要写 1–30 天和原因。")
    else:
        await flash(request, await run_command(request, text))
    raise web.HTTPSeeOther(f"/dashboard/orders/{number}")
