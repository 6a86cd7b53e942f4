"""One timer pass in a process of its own, for the two-process test: `python -m tests.timer_pass
DATABASE_URL REDIS_URL PREFIX NOW` prints how many steps it took."""

from __future__ import annotations

import asyncio
import sys

from bot.app import _load_classifier, limits
from bot.config import demo_settings
from bot.workers.timers import TimerService
from handlers.context import Services
from handlers.directory import Directory
from storage.db import create_engine, session_factory
from storage.state import RedisState


async def main(database_url: str, redis_url: str, prefix: str, now: float) -> int:
    engine = create_engine(database_url)
    state = RedisState.from_url(redis_url, prefix=prefix)
    try:
        sessions = session_factory(engine)
        async with sessions() as session:
            directory = await Directory.load(session)
        classifier = _load_classifier("")
        classifier.add_words(directory.names())
        services = Services(classifier, directory, limits(demo_settings().sla, classifier))
        timers = TimerService(sessions, state, services, clock=lambda: now)
        return await timers.run_once()
    finally:
        await state.close()
        await engine.dispose()


if __name__ == "__main__":
    print(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))))
