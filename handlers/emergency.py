"""Emergencies first: what the resident is told to do now, and an urgent report that cannot wait for
its place.

The advice depends on the kind of emergency the classifier found (its ``[urgent.<kind>]`` rules): fire,
smoke or gas → 119; violence or a crime going on → 110; a person collapsed, hurt or not answering →
120; water, sparks or something giving way → get away, then the property or utility line.

An urgent report whose place the words do not give is recorded at once as an order (not left in the
state store), the admins are alerted with 地点待确认 — of the resident's bound grid, else the district's —
and the bot asks where; the answer then dispatches the order to its grid.
"""

from __future__ import annotations

from collections.abc import Sequence

from handlers import texts
from handlers.context import Context
from handlers.directory import StaffInfo
from handlers.notices import notify
from handlers.views import short
from storage.models import WorkOrder

__all__ = ["advice", "alert_unplaced", "first_responders"]

_WORDS = 60  # characters of the resident's words in an alert


def advice(kinds: Sequence[str]) -> str:
    """What to do now, for these kinds of emergency (the first found leads; a second that calls a
    different number is named too)."""
    first = kinds[0] if kinds and kinds[0] in texts.EMERGENCY else "any"
    text = texts.EMERGENCY[first]
    number = texts.EMERGENCY_NUMBER.get(first)
    for kind in kinds[1:]:
        other = texts.EMERGENCY_NUMBER.get(kind)
        if other and other != number and other not in text:
            return text + texts.EMERGENCY_ALSO[kind]
    return text


def first_responders(ctx: Context, grid: str | None) -> list[StaffInfo]:
    """Who is alerted to an urgent order that has no place yet: the community admins of the resident's
    bound grid, else every district admin."""
    directory = ctx.services.directory
    community = directory.ancestor(grid, "community") if grid else None
    admins = directory.people_in(community, ("community_admin",)) if community else []
    if admins:
        return admins
    districts = [unit.id for unit in directory.units.values() if unit.level == "district"]
    return [person for unit in districts for person in directory.people_in(unit, ("district_admin",))]


async def alert_unplaced(ctx: Context, order: WorkOrder, bound_grid: str | None) -> None:
    """Tell the first responders an urgent order is waiting for its place (地点待确认)."""
    near = ctx.services.directory.unit_name(bound_grid) if bound_grid else None
    message = texts.urgent_unplaced(order.id, order.category, short(order.text, _WORDS), near)
    for admin in first_responders(ctx, bound_grid):
        await notify(ctx, admin.openid, message, order_id=order.id, reason="alert-unplaced")
