"""双报到: an in-service Party member registers with a community and, once its admin agrees, serves as
a party_member of a grid (can 领单 there).

`报到 社区名 [网格] [姓名]` by anyone not yet in the org stores a pending registration and tells the
community's admins (the street's when the community has none), who answer `同意 N [网格]` or
`拒绝 N [原因]` (which also withdraws an approved one). An approval bumps the org revision, so every server process takes the new member into
its snapshot (this one at once); the org file never erases them.
"""

from __future__ import annotations

from handlers import texts
from handlers.context import Context
from handlers.directory import Directory, UnitInfo, registered_member
from handlers.notices import notify
from storage.models import Registration
from storage.org import ROLE_NAMES, bump_revision
from storage.registrations import (
    APPROVED,
    PENDING,
    REJECTED,
    active_registration,
    add_registration,
    get_registration,
)

NAME_MAX = 32
STATUS_NAMES = {PENDING: "待审核", APPROVED: "同意", REJECTED: "拒绝或撤销"}


def find_community(directory: Directory, word: str) -> UnitInfo | None:
    """A community by id or name (筱塘社区, or 筱塘 for short)."""
    for unit in directory.units.values():
        if unit.level == "community" and word in (unit.id, unit.name, unit.name.removesuffix("社区")):
            return unit
    return None


def find_grid(directory: Directory, community: UnitInfo, word: str) -> UnitInfo | None:
    """A grid of the community by id, full name (筱塘社区第一网格) or short name (第一网格)."""
    for unit in directory.units.values():
        if unit.level != "grid" or unit.parent_id != community.id:
            continue
        if word in (unit.id, unit.name, unit.name.removeprefix(community.name)):
            return unit
    return None


def _community_and_grid(directory: Directory, word: str) -> tuple[UnitInfo | None, UnitInfo | None]:
    community = find_community(directory, word)
    if community is not None:
        return community, None
    grid = directory.units.get(word) or next(
        (u for u in directory.units.values() if u.level == "grid" and u.name == word), None
    )
    if grid is not None and grid.level == "grid" and grid.parent_id in directory.units:
        return directory.units[grid.parent_id], grid
    return None, None


def _where(directory: Directory, community_id: str, grid_id: str | None) -> str:
    return directory.unit_name(grid_id) if grid_id else directory.unit_name(community_id)


def _who(registration: Registration) -> str:
    return registration.name or texts.NAMELESS.format(tail=registration.openid[-4:])


async def register(ctx: Context) -> str:
    """报到 社区名 [网格] [姓名]."""
    assert ctx.command is not None
    directory = ctx.services.directory
    if ctx.speaker.person is not None:
        person = ctx.speaker.person
        if person.registration is not None:
            return texts.REGISTER_DONE.format(grid=directory.unit_name(person.unit_id))
        role = ROLE_NAMES.get(person.role, person.role)
        return texts.REGISTER_STAFF.format(unit=directory.unit_name(person.unit_id), role=role)
    existing = await active_registration(ctx.session, ctx.speaker.openid)
    if existing is not None:
        if existing.status == APPROVED:
            return texts.REGISTER_DONE.format(grid=directory.unit_name(existing.grid_id))
        return texts.REGISTER_PENDING.format(n=existing.id)
    first, *rest = ctx.command.rest.split()
    community, grid = _community_and_grid(directory, first)
    if community is None:
        names = "、".join(sorted(u.name for u in directory.units.values() if u.level == "community")[:8])
        return texts.REGISTER_NO_COMMUNITY.format(word=first, names=names or "（暂无）")
    words = list(rest)
    if grid is None and words and (found := find_grid(directory, community, words[0])) is not None:
        grid, words = found, words[1:]
    name = "".join(words)[:NAME_MAX]
    number = await add_registration(
        ctx.session,
        openid=ctx.speaker.openid,
        name=name,
        community_id=community.id,
        grid_id=grid.id if grid else None,
        now=ctx.now,
    )
    if number is None:  # another message of theirs registered a moment ago
        again = await active_registration(ctx.session, ctx.speaker.openid)
        return texts.REGISTER_PENDING.format(n=again.id if again else "")
    where = _where(directory, community.id, grid.id if grid else None)
    admins = directory.people_in(community.id, ("community_admin",)) or directory.people_in(
        community.parent_id, ("street_admin",)
    )
    who = name or texts.NAMELESS.format(tail=ctx.speaker.openid[-4:])
    for admin in admins:
        notice = texts.register_notice(number, who, where, grid is not None)
        await notify(ctx, admin.openid, notice, order_id=None, reason=f"register-{number}")
    return (texts.REGISTERED if admins else texts.REGISTERED_NO_ADMIN).format(n=number, where=where)


async def _decidable(ctx: Context, *states: str) -> Registration | str:
    """The registration the admin's 同意/拒绝 names, locked, or the reason it cannot be decided."""
    assert ctx.command is not None and ctx.command.number is not None
    number = ctx.command.number
    registration = await get_registration(ctx.session, number, for_update=True)
    if registration is None:
        return texts.NO_SUCH_REGISTRATION.format(n=number)
    if not ctx.services.directory.contains(ctx.speaker.unit_id, registration.community_id):
        return texts.REGISTRATION_NOT_YOURS.format(n=number)
    if registration.status not in states:
        return texts.REGISTRATION_DECIDED.format(n=number, state=STATUS_NAMES[registration.status])
    return registration


async def approve(ctx: Context) -> str:
    """同意 N [网格]: the person becomes a party_member of the grid, in every server's snapshot."""
    registration = await _decidable(ctx, PENDING)
    if isinstance(registration, str):
        return registration
    assert ctx.command is not None
    directory = ctx.services.directory
    community = directory.units[registration.community_id]
    grid_id = registration.grid_id
    if ctx.command.rest:
        grid = find_grid(directory, community, ctx.command.rest)
        if grid is None:
            example = _example(directory, community)
            return texts.APPROVE_UNKNOWN_GRID.format(
                word=ctx.command.rest, community=community.name, n=registration.id, example=example
            )
        grid_id = grid.id
    if grid_id is None or grid_id not in directory.units:
        return texts.APPROVE_NEEDS_GRID.format(n=registration.id, example=_example(directory, community))
    registration.grid_id = grid_id
    registration.status = APPROVED
    registration.decided_at, registration.decided_by = ctx.now, ctx.speaker.openid
    await bump_revision(ctx.session)
    # This process knows at once; the others reload within seconds (the revision moved).
    directory.add_person(registered_member(registration.openid, registration.name, grid_id, registration.id))
    notice = texts.APPROVED_NOTICE.format(branch=directory.branch_name(grid_id))
    await notify(ctx, registration.openid, notice, order_id=None, reason=f"registered-{registration.id}")
    return texts.APPROVED.format(n=registration.id, who=_who(registration), grid=directory.unit_name(grid_id))


async def reject(ctx: Context) -> str:
    """拒绝 N [原因]: a pending registration is refused; an approved one is withdrawn (the member has
    moved away, say), and every server drops them from its snapshot."""
    registration = await _decidable(ctx, PENDING, APPROVED)
    if isinstance(registration, str):
        return registration
    assert ctx.command is not None
    reason = f"：{ctx.command.rest}" if ctx.command.rest else ""
    withdrawn = registration.status == APPROVED
    registration.status, registration.active_key = REJECTED, None
    registration.decided_at, registration.decided_by = ctx.now, ctx.speaker.openid
    registration.note = ctx.command.rest
    if withdrawn:
        await bump_revision(ctx.session)
        ctx.services.directory.drop_registered(registration.openid)
    notice = (texts.WITHDRAWN_NOTICE if withdrawn else texts.REJECTED_NOTICE).format(
        n=registration.id, reason=reason
    )
    await notify(ctx, registration.openid, notice, order_id=None, reason=f"refused-{registration.id}")
    return (texts.WITHDRAWN if withdrawn else texts.REJECTED).format(
        n=registration.id, who=_who(registration)
    )


def _example(directory: Directory, community: UnitInfo) -> str:
    grids = sorted(
        u.name for u in directory.units.values() if u.level == "grid" and u.parent_id == community.id
    )
    return grids[0].removeprefix(community.name) if grids else "第一网格"
