"""Who may act on an order: one place for the role-and-unit rules."""

from __future__ import annotations

from handlers.context import Context
from storage.models import WorkOrder


def may_work_on(ctx: Context, order: WorkOrder) -> bool:
    """Grid staff of the order's grid, or whoever it is assigned to."""
    speaker = ctx.speaker
    if order.assignee_openid == speaker.openid:
        return True
    return speaker.is_grid_staff and speaker.unit_id == order.unit_id


def may_oversee(ctx: Context, order: WorkOrder) -> bool:
    """Admins of the order's community, street or district."""
    return ctx.speaker.is_admin and ctx.services.directory.contains(ctx.speaker.unit_id, order.unit_id)


def works_or_oversees(ctx: Context, order: WorkOrder) -> bool:
    """转派 and 延期: the order's own staff, or an admin above it."""
    return may_work_on(ctx, order) or may_oversee(ctx, order)


def claims(ctx: Context, order: WorkOrder) -> bool:
    """党员领单: grid staff (a Party member, above all) of the order's grid."""
    return ctx.speaker.is_grid_staff and ctx.speaker.unit_id == order.unit_id


def owns(ctx: Context, order: WorkOrder) -> bool:
    """The resident who reported it."""
    return order.resident_openid == ctx.speaker.openid
