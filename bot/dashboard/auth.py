"""Who is looking at the dashboard: login by a one-time link, the session, CSRF, and the refusals.

Every page but the login link and the static files needs a logged-in admin whose role still allows it
(the org may have changed since login); every POST also needs the session's CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session

from bot import keys
from bot.dashboard.sessions import SESSION_SECONDS
from handlers.directory import Directory
from handlers.login_links import admin_of, token_hash
from storage.logins import take_login
from storage.models import DashboardLogin

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = ("/dashboard/login/", "/dashboard/static/")
LEVEL_NAMES = {"community_admin": "社区管理员", "street_admin": "街道管理员", "district_admin": "区管理员"}

GET_A_LINK = "请在微信中向服务号发送“后台”，获取新的登录链接。"
REFUSALS = {
    "forged": ("链接无效", "这个登录链接不存在或已被改动。" + GET_A_LINK),
    "used": ("链接已使用", "每个登录链接只能使用一次，这个链接已经用过了。" + GET_A_LINK),
    "expired": ("链接已过期", "登录链接 10 分钟内有效，这个链接已经过期。" + GET_A_LINK),
    "not_admin": ("无权访问", "指挥中心仅供社区、街道和区管理员使用。如有需要，请联系上级管理员。"),
    "login": ("请先登录", GET_A_LINK),
    "csrf": ("页面已过期", "为了安全，请返回上一页刷新后再提交。"),
    "not_found": ("没有找到", "没有这个页面，或者它不在您管辖的范围内。"),
}


@dataclass(frozen=True)
class Admin:
    """The logged-in admin and the grids they oversee (their whole scope, everywhere)."""

    openid: str
    name: str
    role: str
    unit_id: str
    unit_name: str
    grids: tuple[str, ...]
    csrf: str

    @property
    def title(self) -> str:
        return f"{self.unit_name} · {LEVEL_NAMES.get(self.role, '')} {self.name}"


ADMIN = web.RequestKey("dashboard_admin", Admin)  # the logged-in admin, set by `guard`


def admin_in(directory: Directory, openid: str, csrf: str = "") -> Admin | None:
    person = admin_of(directory, openid)
    if person is None:
        return None
    grids = tuple(directory.grids_under(person.unit_id))
    return Admin(
        person.openid,
        person.name,
        person.role,
        person.unit_id,
        directory.unit_name(person.unit_id),
        grids,
        csrf,
    )


def refusal(request: web.Request, reason: str, status: int) -> web.Response:
    title, text = REFUSALS[reason]
    response = aiohttp_jinja2.render_template(
        "refused.html", request, {"title": title, "text": text}, status=status
    )
    return response


def current(request: web.Request) -> Admin:
    return request[ADMIN]


def now_of(request: web.Request) -> datetime:
    return datetime.fromtimestamp(request.config_dict[keys.CLOCK](), UTC)


async def login(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/login/{token}: take the link once, start a fresh session, go to the overview."""
    hashed = token_hash(request.match_info["token"])
    now = now_of(request)
    async with request.config_dict[keys.SESSIONS]() as db, db.begin():
        openid = await take_login(db, hashed, now)
        if openid is None:
            link = await db.get(DashboardLogin, hashed)
    if openid is None:
        reason = "forged" if link is None else "used" if link.used_at is not None else "expired"
        return refusal(request, reason, 403 if reason != "forged" else 404)
    admin = admin_in(request.config_dict[keys.SERVICES].directory, openid)
    if admin is None:
        return refusal(request, "not_admin", 403)
    session = await new_session(request)  # a new key: a session id known before login is worth nothing
    session["openid"] = openid
    session["csrf"] = secrets.token_urlsafe(24)
    session["until"] = time.time() + SESSION_SECONDS
    raise web.HTTPSeeOther("/dashboard/")


async def logout(request: web.Request) -> web.StreamResponse:
    session = await get_session(request)
    session.invalidate()
    return aiohttp_jinja2.render_template(
        "refused.html", request, {"title": "已退出", "text": "您已退出指挥中心。" + GET_A_LINK}
    )


def _csrf_ok(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Logged-in admins only (login link and static files aside); a POST also carries the CSRF token."""
    if request.path.startswith(OPEN_PATHS):
        return await handler(request)
    session = await get_session(request)
    openid, until = session.get("openid"), float(session.get("until", 0))
    if not openid or until < time.time():
        return refusal(request, "login", 401)
    admin = admin_in(request.config_dict[keys.SERVICES].directory, str(openid), str(session.get("csrf", "")))
    if admin is None:
        return refusal(request, "not_admin", 403)
    if request.method == "POST":
        form = await request.post()
        given = str(form.get("csrf", "")) or request.headers.get("X-CSRF-Token", "")
        if not _csrf_ok(given, admin.csrf):
            return refusal(request, "csrf", 403)
    request[ADMIN] = admin
    return await handler(request)


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No caching of pages, no framing, no referrer (a login URL must not leak), scripts from here only."""
    response = await handler(request)
    if not request.path.startswith("/dashboard/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "media-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    return response


async def flash(request: web.Request, text: str) -> None:
    """A line to show on the next page (the result of an action)."""
    (await get_session(request))["flash"] = text


async def take_flash(request: web.Request) -> str:
    session = await get_session(request)
    return str(session.pop("flash", "")) if "flash" in session else ""
