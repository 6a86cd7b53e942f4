"""Server-side dashboard sessions: aiohttp-session with its data in our state store (Redis or memory).

The cookie holds only a random key; the session itself is a record in the state store that lives 8
hours from login. Logging out deletes the record, so the cookie is worth nothing afterwards even if
someone kept a copy.
"""

from __future__ import annotations

import secrets
import time

from aiohttp import web
from aiohttp_session import AbstractStorage, Session

from bot import keys

SESSION_SECONDS = 8 * 3600
COOKIE = "gridbot_dashboard"


def _record_key(key: str) -> str:
    return f"dashboard-session:{key}"


class StateSessionStorage(AbstractStorage):
    def __init__(self, *, secure: bool, max_age: int = SESSION_SECONDS) -> None:
        super().__init__(
            cookie_name=COOKIE,
            max_age=max_age,
            path="/dashboard",
            secure=secure,
            httponly=True,
            samesite="Lax",
        )

    async def load_session(self, request: web.Request) -> Session:
        key = self.load_cookie(request)
        record = await request.config_dict[keys.STATE].get_record(_record_key(key)) if key else None
        if record is None:
            return Session(None, data=None, new=True, max_age=self.max_age)
        return Session(key, data=record, new=False, max_age=self.max_age)

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        state = request.config_dict[keys.STATE]
        key = session.identity
        if session.empty:  # invalidated: logged out
            if key is not None:
                await state.delete_record(_record_key(str(key)))
            self.save_cookie(response, "", max_age=session.max_age)
            return
        if key is None:
            key = secrets.token_urlsafe(32)
        # A session ends 8 hours after login however often it is written (a flash message, say).
        until = float(session.get("until", time.time() + (self.max_age or SESSION_SECONDS)))
        left = max(1, int(until - time.time()))
        await state.put_record(_record_key(str(key)), dict(self._get_session_data(session)), left)
        self.save_cookie(response, str(key), max_age=left)
