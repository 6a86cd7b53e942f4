"""A read-only snapshot of the organisation: the unit tree, the place index for finding a grid in a
message, grid centres for locations, departments and staff.

Reading the org from memory keeps the database off the hot path. The org changes only by
`gridbot org import`; a running server then takes the new snapshot whole (`bot.workers.org_watch`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from nlp.places import PlaceEntry, PlaceIndex, nearest_grid
from storage.org import active_org
from storage.registrations import approved_registrations


@dataclass(frozen=True)
class UnitInfo:
    id: str
    name: str
    level: str
    parent_id: str | None
    branch: str | None
    location: tuple[float, float] | None


@dataclass(frozen=True)
class StaffInfo:
    """A person of the org: one role in one unit, from the org file or an approved 报到."""

    openid: str
    name: str
    role: str
    unit_id: str
    wecom_userid: str | None = None
    registration: int | None = None  # the approved 报到 that made them a Party member of the grid


REGISTERED_NAME = "报到党员"  # how a registered Party member who gave no name is called


@dataclass(frozen=True)
class DepartmentInfo:
    id: str
    name: str
    categories: tuple[str, ...]
    unit_ids: tuple[str, ...]
    contacts: tuple[str, ...]


def registered_member(openid: str, name: str, grid: str | None, registration: int) -> StaffInfo:
    """The Party member an approved 报到 makes of its person."""
    return StaffInfo(openid, name or REGISTERED_NAME, "party_member", str(grid), registration=registration)


class Directory:
    def __init__(
        self,
        units: Mapping[str, UnitInfo],
        places: Mapping[int, tuple[str, str]],  # place id → (name, grid id)
        aliases: Mapping[int, tuple[str, ...]],
        departments: tuple[DepartmentInfo, ...],
        people: tuple[StaffInfo, ...] = (),
    ) -> None:
        self.units = dict(units)
        self.people = {p.openid: p for p in people}
        self._by_wecom = {p.wecom_userid: p for p in people if p.wecom_userid}
        self._by_unit: dict[str, list[StaffInfo]] = {}
        for staff in sorted(people, key=lambda p: p.openid):
            self._by_unit.setdefault(staff.unit_id, []).append(staff)
        self.places = dict(places)
        self.departments = departments
        self.index = PlaceIndex(
            PlaceEntry(key=str(pid), name=name, aliases=aliases.get(pid, ()), grid=grid)
            for pid, (name, grid) in self.places.items()
        )
        self.centres = {u.id: u.location for u in self.units.values() if u.level == "grid" and u.location}

    @classmethod
    async def load(cls, session: AsyncSession) -> Directory:
        org = await active_org(session)
        units = {
            u.id: UnitInfo(
                u.id, u.name, u.level, u.parent_id, u.branch, (u.lat, u.lng) if u.lat is not None else None
            )
            for u in org.units
        }
        places = {p.id: (p.name, p.unit_id) for p in org.places}
        aliases = {p.id: tuple(a.alias for a in p.aliases) for p in org.places}
        departments = tuple(
            DepartmentInfo(d.id, d.name, tuple(d.categories), tuple(d.unit_ids), tuple(d.contacts))
            for d in org.departments
        )
        people = tuple(StaffInfo(p.openid, p.name, p.role, p.unit_id, p.wecom_userid) for p in org.people)
        listed = {p.openid for p in people}
        registered = tuple(
            registered_member(r.openid, r.name, r.grid_id, r.id)
            for r in await approved_registrations(session)
            if r.openid not in listed and r.grid_id in units  # the org file wins; a grid may be gone
        )
        return cls(units, places, aliases, departments, people + registered)

    def adopt(self, newer: Directory) -> None:
        """Become `newer`, in one step: everyone holding this directory sees the new org from now on."""
        vars(self).update(vars(newer))

    def add_person(self, person: StaffInfo) -> None:
        """One more person at once (an approved 报到); the next reload brings the same from the database."""
        if person.openid in self.people:
            return
        self.people[person.openid] = person
        self._by_unit[person.unit_id] = sorted(
            [*self._by_unit.get(person.unit_id, []), person], key=lambda p: p.openid
        )

    def drop_registered(self, openid: str) -> None:
        """A withdrawn 报到: no longer a Party member here (the org file's people are never dropped so)."""
        person = self.people.get(openid)
        if person is None or person.registration is None:
            return
        del self.people[openid]
        self._by_unit[person.unit_id] = [p for p in self._by_unit.get(person.unit_id, []) if p != person]

    def person(self, openid: str | None) -> StaffInfo | None:
        return self.people.get(openid or "")

    def by_wecom(self, userid: str) -> StaffInfo | None:
        return self._by_wecom.get(userid)

    def people_in(self, unit_id: str | None, roles: tuple[str, ...]) -> list[StaffInfo]:
        """People of a unit with one of these roles, in the order of `roles`, then by openid."""
        found = [p for p in self._by_unit.get(unit_id or "", []) if p.role in roles]
        return sorted(found, key=lambda p: roles.index(p.role))

    def named(self, text: str) -> list[StaffInfo]:
        """People whose openid or name is `text`."""
        return [p for p in self.people.values() if text in (p.openid, p.name)]

    def names(self) -> list[str]:
        """Every place name and alias, for the segmenter's dictionary."""
        return self.index.names()

    def lineage(self, unit_id: str | None) -> list[str]:
        """The unit and its ancestors, nearest first."""
        chain: list[str] = []
        while unit_id and unit_id in self.units and unit_id not in chain:
            chain.append(unit_id)
            unit_id = self.units[unit_id].parent_id
        return chain

    def ancestor(self, unit_id: str | None, level: str) -> str | None:
        return next((u for u in self.lineage(unit_id) if self.units[u].level == level), None)

    def contains(self, outer: str | None, inner: str | None) -> bool:
        return outer is not None and outer in self.lineage(inner)

    def grids_under(self, unit_id: str | None) -> list[str]:
        """The grids of a unit (a grid: itself), sorted."""
        return sorted(u.id for u in self.units.values() if u.level == "grid" and self.contains(unit_id, u.id))

    def grid_near(self, lat: float, lng: float) -> str | None:
        return nearest_grid(self.centres, lat, lng)

    def department_for(self, category: str, grid: str | None) -> DepartmentInfo | None:
        lineage = set(self.lineage(grid))
        for department in self.departments:
            if category in department.categories and lineage.intersection(department.unit_ids):
                return department
        return None

    def unit_name(self, unit_id: str | None) -> str:
        return self.units[unit_id].name if unit_id in self.units else "社区"

    def branch_name(self, grid: str | None) -> str:
        unit = self.units.get(grid or "")
        if unit is None:
            return "社区"
        return unit.branch or unit.name
