"""Who handles a new order: the grid leader of its grid, or the department or community its category's
rule names (物业服务 → the property company, with the grid leader informed). Urgent orders also alert
the community admin at once."""

from __future__ import annotations

from dataclasses import dataclass

from handlers import texts
from handlers.context import Context
from handlers.notices import notify
from storage.models import Person, WorkOrder
from storage.orders import people_in, person

GRID_ROLES = ("grid_leader", "grid_member")
ADMIN = ("community_admin",)


@dataclass(frozen=True)
class Assignment:
    assignee: Person | None
    handler_name: str  # who the resident is told will handle it
    summary: str  # the assign event's text


async def dispatch(ctx: Context, order: WorkOrder, place_label: str) -> Assignment:
    directory = ctx.services.directory
    grid = order.unit_id
    community = directory.ancestor(grid, "community")
    responder = ctx.services.classifier.rule(order.category).responder
    grid_staff = await people_in(ctx.session, grid, GRID_ROLES)
    admins = await people_in(ctx.session, community, ADMIN)
    informed: list[Person] = []

    assignee: Person | None = None
    handler_name = directory.branch_name(grid)
    if responder == "department":
        department = directory.department_for(order.category, grid)
        contact = (
            await person(ctx.session, department.contacts[0]) if department and department.contacts else None
        )
        if department is not None and contact is not None and contact.active:
            assignee, handler_name = contact, department.name
            order.department_id = department.id
            informed = grid_staff[:1]
    elif responder == "community" and admins:
        assignee, handler_name = admins[0], directory.unit_name(community)
        informed = grid_staff[:1]
    if assignee is None:
        assignee = (grid_staff or admins or [None])[0]
        if assignee is not None and assignee.role == "community_admin":
            handler_name = directory.unit_name(community)
    order.assignee_openid = assignee.openid if assignee else None

    words = order.text
    if assignee is not None:
        message = texts.new_order(order.id, order.category, place_label, words, order.urgent)
        await notify(ctx, assignee.openid, message, order_id=order.id, reason="assign")
    for other in informed:
        message = texts.informed(order.id, order.category, place_label, handler_name)
        await notify(ctx, other.openid, message, order_id=order.id, reason="inform")
    if order.urgent or assignee is None:
        who = assignee.name if assignee else "社区"
        for admin in admins:
            if admin is not assignee:
                message = texts.urgent_alert(order.id, order.category, place_label, words, who)
                await notify(ctx, admin.openid, message, order_id=order.id, reason="alert")
    summary = f"派给 {assignee.name}（{handler_name}）" if assignee else "待社区派单"
    return Assignment(assignee, handler_name, summary)
