"""One-time links that log an admin into the dashboard (指挥中心): asked for with `后台` in chat, or
printed by `gridbot dashboard link --as OPENID`. A link is good for one use within 10 minutes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.directory import Directory, StaffInfo
from handlers.workflow import ADMIN_ROLES
from storage.logins import add_login, purge_logins

LOGIN_TTL = timedelta(minutes=10)
LOGIN_PATH = "/dashboard/login/"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def admin_of(directory: Directory, openid: str) -> StaffInfo | None:
    """The person if they are a community, street or district admin; else None."""
    person = directory.person(openid)
    return person if person is not None and person.role in ADMIN_ROLES else None


async def new_login_link(session: AsyncSession, openid: str, base_url: str, now: datetime) -> str:
    """A fresh link for this admin (recorded in the caller's transaction; expired ones are purged)."""
    token = secrets.token_urlsafe(32)
    await purge_logins(session, now - LOGIN_TTL)
    await add_login(session, token_hash(token), openid, now, now + LOGIN_TTL)
    return base_url.rstrip("/") + LOGIN_PATH + token
