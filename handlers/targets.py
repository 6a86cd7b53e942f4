"""Reading "a grid or a person" (转派 / 派单 targets) within what the speaker may reach."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.context import Context
from handlers.directory import StaffInfo
from handlers.workflow import DISPATCH_ROLES


@dataclass(frozen=True)
class Target:
    grid: str | None  # the grid the order moves to; None keeps the order's grid (a person above the grids)
    person: StaffInfo  # who will be asked to accept it
    label: str  # how the target reads in messages


async def find_target(ctx: Context, text: str, scope: str | None) -> Target | str:
    """The grid (its leader takes the order) or person named by `text` inside unit `scope`, or why not."""
    directory = ctx.services.directory
    wanted = text.strip()
    grids = [
        unit.id
        for unit in directory.units.values()
        if unit.level == "grid"
        and wanted in (unit.id, unit.name, unit.branch)
        and directory.contains(scope, unit.id)
    ]
    if len(grids) == 1:
        leaders = directory.people_in(grids[0], DISPATCH_ROLES)
        if not leaders:
            return f"{directory.unit_name(grids[0])}还没有网格长，请改派给具体的人。"
        return Target(grids[0], leaders[0], f"{directory.unit_name(grids[0])}（{leaders[0].name}）")
    people = [p for p in directory.named(wanted) if directory.contains(scope, p.unit_id)]
    if len(people) == 1:
        person = people[0]
        unit = directory.units.get(person.unit_id)
        grid = person.unit_id if unit is not None and unit.level == "grid" else None
        return Target(grid, person, f"{person.name}（{directory.unit_name(person.unit_id)}）")
    if len(people) > 1:
        return f"有多位同志叫“{wanted}”，请写对方的 openid。"
    return f"在您管辖范围内没有找到“{wanted}”。请写网格名称（如“筱塘社区第一网格”）或同志的姓名。"
