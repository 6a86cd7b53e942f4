"""主动治理: catching a surge of reports before residents pile up complaints.

A grid and category is *hot* when the reports of the last `window` (new orders, and residents who
reported an open order again) reach the bar: `threshold` (default 5 in 2 hours), or `factor` times
the grid's usual rate for that category over the `baseline` before the window (default three times
the last 28 days' rate, and never fewer than `minimum` = 3 reports) — whichever is lower. The
community and street admins are alerted once, with the orders listed; the hot spot is recorded and
closes when the window holds fewer than half the bar that opened it. `热点` lists the open ones of an
admin's units.

Exactly once with any number of processes: a hot spot is inserted under a unique key (grid and
category while open), and only the insert that succeeds queues the alerts, in its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import texts
from handlers.admin import grids_under
from handlers.context import Context, Services
from handlers.notices import address_of
from handlers.views import local_time, order_line
from handlers.workflow import describe_duration
from storage.hotspots import (
    Reports,
    close_hotspot,
    counts_between,
    grow_hotspot,
    open_hotspot,
    open_hotspots,
    orders_by_id,
    reports_between,
)
from storage.outbox import enqueue

ALERT_ORDERS = 8  # orders listed in one alert; the rest are counted
LISTED = 10  # hot spots shown by 热点 (a phone screen)
ALERTED = ("community_admin", "street_admin")


@dataclass(frozen=True)
class HotspotRules:
    """`[hotspots]` in config.toml (durations in seconds here, written 2h / 28d there)."""

    enabled: bool = True
    threshold: int = 5
    window: int = 7200
    factor: int = 3
    minimum: int = 3
    baseline: int = 28 * 86400

    def bar(self, usual: float) -> float:
        """The reports in a window that make a grid and category hot, given its usual count per window."""
        return min(self.threshold, max(self.minimum, self.factor * usual))


async def usual_rates(
    session: AsyncSession, rules: HotspotRules, pairs: list[tuple[str, str]], now: datetime
) -> dict[tuple[str, str], float]:
    """Reports per window over the baseline before the window: each grid and category's usual rate."""
    until = now - timedelta(seconds=rules.window)
    counts = await counts_between(session, pairs, until - timedelta(seconds=rules.baseline), until)
    return {pair: count * rules.window / rules.baseline for pair, count in counts.items()}


async def check(session: AsyncSession, services: Services, rules: HotspotRules, now: datetime) -> list[str]:
    """One pass: open the grids and categories that have become hot (queueing their alerts), update
    and close the open ones. The send keys queued."""
    window = await reports_between(session, now - timedelta(seconds=rules.window), now)
    current = {(r.unit_id, r.category): r for r in window}
    spots = {(s.unit_id, s.category): s for s in await open_hotspots(session)}
    queued: list[str] = []
    # Only those with enough reports to be hot at all, not hot already, in a grid we know.
    candidates = [
        r
        for r in window
        if r.count >= min(rules.threshold, rules.minimum)
        and (r.unit_id, r.category) not in spots
        and r.unit_id in services.directory.units
    ]
    usual_of = await usual_rates(session, rules, [(r.unit_id, r.category) for r in candidates], now)
    for reports in candidates:
        usual = usual_of[(reports.unit_id, reports.category)]
        bar = rules.bar(usual)
        if reports.count < bar:
            continue
        values = {
            "unit_id": reports.unit_id,
            "category": reports.category,
            "reports": reports.count,
            "usual": round(usual, 3),
            "bar": bar,
            "order_ids": sorted(reports.order_ids),
            "opened_at": now,
        }
        hotspot_id = await open_hotspot(session, values)
        if hotspot_id is not None:
            queued += await _alert(session, services, rules, hotspot_id, reports, usual, now)
    for key, spot in spots.items():
        now_reports = current.get(key)
        count = now_reports.count if now_reports else 0
        if count < spot.bar / 2:
            await close_hotspot(session, spot.id, now)
        elif now_reports is not None:
            seen = sorted(set(spot.order_ids) | now_reports.order_ids)
            if count > spot.reports or seen != sorted(spot.order_ids):
                await grow_hotspot(session, spot.id, max(count, spot.reports), seen)
    return queued


async def _alert(
    session: AsyncSession,
    services: Services,
    rules: HotspotRules,
    hotspot_id: int,
    reports: Reports,
    usual: float,
    now: datetime,
) -> list[str]:
    """Tell the community and street admins over the grid, once (the send key names the hot spot)."""
    directory = services.directory
    orders = await orders_by_id(session, reports.order_ids)
    lines = [order_line(order) for order in orders[:ALERT_ORDERS]]
    if len(orders) > len(lines):
        lines.append(f"…等 {len(orders)} 张")
    text = texts.hotspot_alert(
        directory.unit_name(reports.unit_id),
        reports.category,
        reports.count,
        describe_duration(rules.window),
        usual,
        lines,
    )
    recipients = [
        person
        for level, role in (("community", ALERTED[0]), ("street", ALERTED[1]))
        for person in directory.people_in(directory.ancestor(reports.unit_id, level), (role,))
    ]
    queued: list[str] = []
    for person in recipients:
        channel, recipient = address_of(services, person.openid)
        key = f"hotspot:{hotspot_id}:{person.openid}"
        payload = {"notice": "hotspot", "hotspot": hotspot_id}
        if await enqueue(
            session, send_key=key, channel=channel, recipient=recipient, text=text, payload=payload, now=now
        ):
            queued.append(key)
    return queued


async def listing(ctx: Context) -> str:
    """热点: the open hot spots of the grids the admin oversees, with their orders."""
    directory = ctx.services.directory
    spots = await open_hotspots(ctx.session, grids_under(ctx, ctx.speaker.unit_id))
    if not spots:
        return texts.NO_HOTSPOTS
    lines = [f"当前热点 {len(spots)} 个："]
    for number, spot in enumerate(spots[:LISTED], 1):
        ids = sorted(spot.order_ids)
        shown = " ".join(f"#{n}" for n in ids[:ALERT_ORDERS]) + (
            f" 等 {len(ids)} 张" if len(ids) > ALERT_ORDERS else ""
        )
        lines.append(
            f"{number}. {directory.unit_name(spot.unit_id)} · {spot.category}："
            f"{spot.reports} 条反映，{local_time(spot.opened_at)} 起\n   {shown}"
        )
    if len(spots) > LISTED:
        lines.append(f"……另有 {len(spots) - LISTED} 个未列出")
    lines.append("回复“状态 号”看详情，“督办 号”督促办理。")
    return "\n".join(lines)
