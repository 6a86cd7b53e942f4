"""The command centre (指挥中心): a web dashboard for community, street and district admins, under
/dashboard. `setup_dashboard(app)` mounts it; it reads the main app's resources through
`request.config_dict` (database sessions, the state store, the org snapshot, the inbox, the media store).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import session_middleware

from bot.config import Settings
from bot.dashboard import actions, auth, export, views
from bot.dashboard.overview import RatesCache
from bot.dashboard.sessions import StateSessionStorage
from bot.dashboard.templating import FILTERS

HERE = Path(__file__).resolve().parent
PREFIX = "/dashboard"


def create_dashboard(settings: Settings) -> web.Application:
    secure = settings.server.public_url.startswith("https://")
    app = web.Application(
        middlewares=[auth.headers, session_middleware(StateSessionStorage(secure=secure)), auth.guard]
    )
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True
    )
    env.filters.update(FILTERS)
    app[views.RATES_CACHE] = RatesCache()
    app.on_cleanup.append(_stop_rates)
    app.router.add_get("/login/{token}", auth.login)
    app.router.add_post("/logout", auth.logout)
    app.router.add_get("/", views.overview_page)
    app.router.add_get("/api/overview", views.overview_json)
    app.router.add_get("/orders", views.orders_page)
    app.router.add_get("/orders.csv", export.export_csv)
    app.router.add_get("/orders/{number}", views.order_page)
    app.router.add_post("/orders/{number}/{action:dispatch|supervise|extend}", actions.order_action)
    app.router.add_get("/media/{media}", views.media_file)
    app.router.add_static("/static", HERE / "static")
    return app


async def _stop_rates(app: web.Application) -> None:
    await app[views.RATES_CACHE].close()


def setup_dashboard(app: web.Application, settings: Settings) -> None:
    """Mount the dashboard under /dashboard of the main app."""
    app.add_subapp(PREFIX, create_dashboard(settings))
