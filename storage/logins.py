"""One-time login links to the dashboard, kept in the database so that a link printed by one process
(`gridbot dashboard link`, or the chat command on any server process) is good on every other one.

Only the sha256 of a token is stored. Taking a link is one guarded UPDATE: it succeeds once, before the
link expires, and never again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DashboardLogin

__all__ = ["add_login", "purge_logins", "take_login"]

_TABLE = DashboardLogin.__table__


async def add_login(
    session: AsyncSession, token_hash: str, openid: str, now: datetime, expires_at: datetime
) -> None:
    """Record a new link in the caller's transaction."""
    values = {"token_hash": token_hash, "openid": openid, "created_at": now, "expires_at": expires_at}
    await session.execute(insert(_TABLE).values(**values))


async def take_login(session: AsyncSession, token_hash: str, now: datetime) -> str | None:
    """The openid the link was made for, marking it used; None if unknown, used or expired."""
    statement = (
        update(_TABLE)
        .where(
            _TABLE.c.token_hash == token_hash,
            _TABLE.c.used_at.is_(None),
            _TABLE.c.expires_at > now,
        )
        .values(used_at=now)
        .returning(_TABLE.c.openid)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def purge_logins(session: AsyncSession, before: datetime) -> int:
    """Forget links that expired before `before`; how many."""
    result = await session.execute(delete(_TABLE).where(_TABLE.c.expires_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
