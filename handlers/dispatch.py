"""Who handles a new order: the grid leader of its grid, or the department or community its category's
rule names (物业服务 → the property company, with the grid leader informed). Urgent orders also alert
the community admin at once."""

from __future__ import annotations

from dataclasses import dataclass

from handlers import texts
from handlers.context import Context
from handlers.directory import StaffInfo
from handlers.notices import notify
from handlers.workflow import COMMUNITY_ADMIN, DISPATCH_ROLES
from nlp.classifier import COMMUNITY, DEPARTMENT
from storage.models import WorkOrder


@dataclass(frozen=True)
class Assignment:
    assignee: StaffInfo | None
    handler_name: str  # who the resident is told will handle it
    department_id: str | None = None
    informed: tuple[StaffInfo, ...] = ()  # told, not asked (the grid leader when a department handles it)
    admins: tuple[StaffInfo, ...] = ()  # alerted when the order is urgent or nobody could be assigned

    @property
    def summary(self) -> str:
        """The assign event's text."""
        return f"派给 {self.assignee.name}（{self.handler_name}）" if self.assignee else "待社区派单"


def choose(ctx: Context, category: str, grid: str | None) -> Assignment:
    """Who takes a new order of this category in this grid (from the org snapshot, no I/O)."""
    directory = ctx.services.directory
    community = directory.ancestor(grid, "community")
    responder = ctx.services.classifier.rule(category).responder
    grid_staff = directory.people_in(grid, DISPATCH_ROLES)
    admins = tuple(directory.people_in(community, (COMMUNITY_ADMIN,)))
    if responder == DEPARTMENT:
        department = directory.department_for(category, grid)
        contact = directory.person(department.contacts[0]) if department and department.contacts else None
        if department is not None and contact is not None:
            return Assignment(contact, department.name, department.id, tuple(grid_staff[:1]), admins)
    elif responder == COMMUNITY and admins:
        return Assignment(admins[0], directory.unit_name(community), None, tuple(grid_staff[:1]), admins)
    assignee = (grid_staff or list(admins) or [None])[0]
    if assignee is not None and assignee.role == COMMUNITY_ADMIN:
        return Assignment(assignee, directory.unit_name(community), None, (), admins)
    return Assignment(assignee, directory.branch_name(grid), None, (), admins)


async def announce(ctx: Context, order: WorkOrder, assignment: Assignment, place_label: str) -> None:
    """Push the new order to its assignee, tell whoever is informed, alert admins when urgent."""
    assignee, words = assignment.assignee, order.text
    if assignee is not None:
        message = texts.new_order(
            order.id, order.category, place_label, words, order.urgent, **texts.media_counts(order.media)
        )
        await notify(ctx, assignee.openid, message, order_id=order.id, reason="assign")
    for other in assignment.informed:
        message = texts.informed(order.id, order.category, place_label, assignment.handler_name)
        await notify(ctx, other.openid, message, order_id=order.id, reason="inform")
    if order.urgent or assignee is None:
        who = assignee.name if assignee else "社区"
        for admin in assignment.admins:
            if admin != assignee:
                message = texts.urgent_alert(order.id, order.category, place_label, words, who)
                await notify(ctx, admin.openid, message, order_id=order.id, reason="alert")
