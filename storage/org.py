"""The organisation file (spec §4): parse and validate it whole, then apply it idempotently.

`parse_org` refuses a bad file with one `OrgError` line before anything is written; `apply_org` upserts
units, places, aliases, people and departments inside the caller's transaction, and marks rows the file
no longer lists as inactive (work orders keep pointing at them). An import that changes anything bumps
the org revision, which running servers watch to reload their snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring_conflicts
from storage.models import Department, OrgRevision, Person, Place, PlaceAlias, Unit, utcnow
from storage.toml_files import read_toml

LEVELS = ("district", "street", "community", "grid")
PARENT_LEVEL = {"street": "district", "community": "street", "grid": "community"}
ROLES = (
    "grid_leader",
    "grid_member",
    "party_member",
    "community_admin",
    "street_admin",
    "district_admin",
    "department_contact",
)
LEVEL_NAMES = {"district": "区", "street": "街道", "community": "社区", "grid": "网格"}
ROLE_NAMES = {
    "grid_leader": "网格长",
    "grid_member": "网格员",
    "party_member": "党员",
    "community_admin": "社区管理员",
    "street_admin": "街道管理员",
    "district_admin": "区级管理员",
    "department_contact": "部门联系人",
}


class OrgError(ValueError):
    """A bad organisation file; the message is one line saying where and what."""


@dataclass(frozen=True)
class UnitSpec:
    id: str
    name: str
    level: str
    parent: str | None = None
    branch: str | None = None
    places: tuple[str, ...] = ()
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    location: tuple[float, float] | None = None


@dataclass(frozen=True)
class PersonSpec:
    openid: str
    name: str
    role: str
    unit: str
    wecom_userid: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class DepartmentSpec:
    id: str
    name: str
    categories: tuple[str, ...]
    units: tuple[str, ...]
    contacts: tuple[str, ...]


@dataclass(frozen=True)
class OrgSpec:
    units: tuple[UnitSpec, ...]
    people: tuple[PersonSpec, ...]
    departments: tuple[DepartmentSpec, ...]


@dataclass(frozen=True)
class ImportSummary:
    units: int
    places: int
    people: int
    departments: int
    changed: int

    def __str__(self) -> str:
        return (
            f"单位 {self.units} 个，地点 {self.places} 个，人员 {self.people} 人，部门 {self.departments} 个；"
            f"本次变更 {self.changed} 项"
        )


def load_org_file(path: str | Path) -> OrgSpec:
    return parse_org(read_toml(path, "组织文件", OrgError))


def parse_org(data: Mapping[str, Any]) -> OrgSpec:
    unknown = set(data) - {"unit", "person", "department"}
    if unknown:
        raise OrgError(f"未知的表 [[{sorted(unknown)[0]}]]，只允许 unit、person、department")
    units = tuple(_unit(i, raw) for i, raw in enumerate(_tables(data, "unit")))
    people = tuple(_person(i, raw) for i, raw in enumerate(_tables(data, "person")))
    departments = tuple(_department(i, raw) for i, raw in enumerate(_tables(data, "department")))
    spec = OrgSpec(units, people, departments)
    _check_references(spec)
    return spec


def _tables(data: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    tables = data.get(name, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise OrgError(f"{name} 应写作 [[{name}]] 表数组")
    return tables


class _Fields:
    """Typed access to one [[table]] with errors that say which entry and key."""

    def __init__(self, where: str, raw: dict[str, Any], allowed: set[str]) -> None:
        self.where = where
        self.raw = raw
        extra = set(raw) - allowed
        if extra:
            raise OrgError(f"{where}: 未知的字段 {sorted(extra)[0]!r}")

    def text(self, key: str, *, required: bool = True) -> str | None:
        value = self.raw.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise OrgError(f"{self.where}: 缺少 {key}")
            return None
        if not isinstance(value, str):
            raise OrgError(f"{self.where}: {key} 应为字符串")
        return value.strip()

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise OrgError(f"{self.where}: {key} 应为非空字符串的列表")
        return tuple(v.strip() for v in value)


def _unit(index: int, raw: dict[str, Any]) -> UnitSpec:
    fields_ = _Fields(
        f"unit[{index}] {raw.get('id', '')!s}".strip(),
        raw,
        {"id", "name", "level", "parent", "branch", "places", "aliases", "location"},
    )
    level = fields_.text("level")
    if level not in LEVELS:
        raise OrgError(f"{fields_.where}: 未知的层级 {level!r}，应为 {', '.join(LEVELS)}")
    places = fields_.texts("places")
    aliases_raw = raw.get("aliases", {})
    if not isinstance(aliases_raw, dict):
        raise OrgError(f'{fields_.where}: aliases 应为表，如 {{ "某小区" = ["别名"] }}')
    aliases: dict[str, tuple[str, ...]] = {}
    for place, names in aliases_raw.items():
        if place not in places:
            raise OrgError(f"{fields_.where}: 别名所属地点 {place!r} 不在 places 中")
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            raise OrgError(f"{fields_.where}: aliases.{place} 应为字符串列表")
        aliases[place] = tuple(n.strip() for n in names)
    if (places or aliases) and level != "grid":
        raise OrgError(f"{fields_.where}: 只有网格 (grid) 可以列出 places")
    return UnitSpec(
        id=str(fields_.text("id")),
        name=str(fields_.text("name")),
        level=level,
        parent=fields_.text("parent", required=False),
        branch=fields_.text("branch", required=False),
        places=places,
        aliases=aliases,
        location=_location(fields_.where, raw.get("location")),
    )


def _location(where: str, value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise OrgError(f"{where}: location 应为 [纬度, 经度]")
    lat, lng = float(value[0]), float(value[1])
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise OrgError(f"{where}: location 超出范围 (纬度 -90–90，经度 -180–180)")
    return lat, lng


def _person(index: int, raw: dict[str, Any]) -> PersonSpec:
    fields_ = _Fields(
        f"person[{index}] {raw.get('openid', '')!s}".strip(),
        raw,
        {"openid", "name", "role", "unit", "wecom_userid", "phone"},
    )
    role = fields_.text("role")
    if role not in ROLES:
        raise OrgError(f"{fields_.where}: 未知的角色 {role!r}，应为 {', '.join(ROLES)}")
    return PersonSpec(
        openid=str(fields_.text("openid")),
        name=str(fields_.text("name")),
        role=role,
        unit=str(fields_.text("unit")),
        wecom_userid=fields_.text("wecom_userid", required=False),
        phone=fields_.text("phone", required=False),
    )


def _department(index: int, raw: dict[str, Any]) -> DepartmentSpec:
    fields_ = _Fields(
        f"department[{index}] {raw.get('id', '')!s}".strip(),
        raw,
        {"id", "name", "categories", "units", "contacts"},
    )
    return DepartmentSpec(
        id=str(fields_.text("id")),
        name=str(fields_.text("name")),
        categories=fields_.texts("categories"),
        units=fields_.texts("units"),
        contacts=fields_.texts("contacts"),
    )


def _check_references(spec: OrgSpec) -> None:
    units: dict[str, UnitSpec] = {}
    for unit in spec.units:
        if unit.id in units:
            raise OrgError(f"unit {unit.id}: id 重复")
        units[unit.id] = unit
    for unit in spec.units:
        wanted = PARENT_LEVEL.get(unit.level)
        if unit.parent is None:
            if wanted:
                raise OrgError(
                    f"unit {unit.id}: {LEVEL_NAMES[unit.level]}必须有上级{LEVEL_NAMES[wanted]} (parent)"
                )
            continue
        parent = units.get(unit.parent)
        if parent is None:
            raise OrgError(f"unit {unit.id}: 上级单位 {unit.parent!r} 不存在")
        if parent.level != wanted:
            expected = LEVEL_NAMES[wanted] if wanted else "无"
            raise OrgError(f"unit {unit.id}: 上级 {parent.id} 是{LEVEL_NAMES[parent.level]}，应为{expected}")
    seen_names: dict[str, str] = {}
    for unit in spec.units:
        for name in (*unit.places, *(a for names in unit.aliases.values() for a in names)):
            if name in seen_names:
                raise OrgError(f"unit {unit.id}: 地点或别名 {name!r} 与 {seen_names[name]} 重复")
            seen_names[name] = unit.id
    people: dict[str, PersonSpec] = {}
    wecom_ids: set[str] = set()
    for person in spec.people:
        if person.openid in people:
            raise OrgError(f"person {person.openid}: openid 重复")
        people[person.openid] = person
        if person.unit not in units:
            raise OrgError(f"person {person.openid}: 所属单位 {person.unit!r} 不存在")
        if person.wecom_userid:
            if person.wecom_userid in wecom_ids:
                raise OrgError(f"person {person.openid}: wecom_userid {person.wecom_userid!r} 重复")
            wecom_ids.add(person.wecom_userid)
    department_ids: set[str] = set()
    for department in spec.departments:
        if department.id in department_ids:
            raise OrgError(f"department {department.id}: id 重复")
        department_ids.add(department.id)
        for unit_id in department.units:
            if unit_id not in units:
                raise OrgError(f"department {department.id}: 服务单位 {unit_id!r} 不存在")
        for openid in department.contacts:
            contact = people.get(openid)
            if contact is None:
                raise OrgError(f"department {department.id}: 联系人 {openid!r} 未在 [[person]] 中列出")
            if contact.role != "department_contact":
                raise OrgError(f"department {department.id}: 联系人 {openid} 的角色应为 department_contact")


async def apply_org(session: AsyncSession, spec: OrgSpec) -> ImportSummary:
    """Upsert the whole org in the caller's transaction; returns counts and how many rows changed."""
    changed = 0
    existing_units = {u.id: u for u in (await session.scalars(select(Unit))).all()}
    # Parents first, so foreign keys hold on every flush.
    for unit_spec in sorted(spec.units, key=lambda u: LEVELS.index(u.level)):
        values = {
            "name": unit_spec.name,
            "level": unit_spec.level,
            "parent_id": unit_spec.parent,
            "branch": unit_spec.branch,
            "lat": unit_spec.location[0] if unit_spec.location else None,
            "lng": unit_spec.location[1] if unit_spec.location else None,
            "active": True,
        }
        changed += _upsert(session, existing_units, Unit, unit_spec.id, values, key="id")
        await session.flush()
    changed += _deactivate(existing_units, {u.id for u in spec.units})

    changed += await _apply_places(session, spec)

    existing_people = {p.openid: p for p in (await session.scalars(select(Person))).all()}
    for person in existing_people.values():
        if person.wecom_userid and person.openid not in {p.openid for p in spec.people}:
            person.wecom_userid = None  # frees the id for whoever the file now gives it
    for person_spec in spec.people:
        values = {
            "name": person_spec.name,
            "role": person_spec.role,
            "unit_id": person_spec.unit,
            "wecom_userid": person_spec.wecom_userid,
            "phone": person_spec.phone,
            "active": True,
        }
        changed += _upsert(session, existing_people, Person, person_spec.openid, values, key="openid")
    changed += _deactivate(existing_people, {p.openid for p in spec.people})

    existing_departments = {d.id: d for d in (await session.scalars(select(Department))).all()}
    for dep in spec.departments:
        values = {
            "name": dep.name,
            "categories": list(dep.categories),
            "unit_ids": list(dep.units),
            "contacts": list(dep.contacts),
            "active": True,
        }
        changed += _upsert(session, existing_departments, Department, dep.id, values, key="id")
    changed += _deactivate(existing_departments, {d.id for d in spec.departments})
    await session.flush()
    if changed:
        await bump_revision(session)
    places = sum(len(u.places) for u in spec.units)
    return ImportSummary(len(spec.units), places, len(spec.people), len(spec.departments), changed)


async def org_revision(session: AsyncSession) -> int:
    """The revision of the org in the database: 0 before the first import."""
    return await session.scalar(select(OrgRevision.revision).where(OrgRevision.id == 1)) or 0


async def bump_revision(session: AsyncSession) -> None:
    """Tell running servers the org changed (an import, an approved 报到): they reload within seconds."""
    # Create-if-missing, then increment in place: two imports at once both count, neither fails.
    now = utcnow()
    await session.execute(
        insert_ignoring_conflicts(session, OrgRevision), {"id": 1, "revision": 0, "changed_at": now}
    )
    await session.execute(
        update(OrgRevision)
        .where(OrgRevision.id == 1)
        .values(revision=OrgRevision.revision + 1, changed_at=now)
    )


def _upsert(
    session: AsyncSession,
    existing: dict[str, Any],
    model: type,
    ident: str,
    values: dict[str, Any],
    *,
    key: str,
) -> int:
    row = existing.get(ident)
    if row is None:
        row = model(**{key: ident}, **values)
        session.add(row)
        existing[ident] = row
        return 1
    diff = {name: value for name, value in values.items() if getattr(row, name) != value}
    for name, value in diff.items():
        setattr(row, name, value)
    return 1 if diff else 0


def _deactivate(existing: Mapping[str, Any], keep: set[str]) -> int:
    changed = 0
    for ident, row in existing.items():
        if ident not in keep and row.active:
            row.active = False
            changed += 1
    return changed


async def _apply_places(session: AsyncSession, spec: OrgSpec) -> int:
    changed = 0
    places = {p.name: p for p in (await session.scalars(select(Place))).all()}
    wanted: dict[str, tuple[str, tuple[str, ...]]] = {}
    for unit in spec.units:
        for name in unit.places:
            wanted[name] = (unit.id, unit.aliases.get(name, ()))
    # Aliases are unique across places: drop the ones that are moving before adding them elsewhere.
    for place in places.values():
        keep = set(wanted.get(place.name, ("", ()))[1])
        for alias in list(place.aliases):
            if alias.alias not in keep:
                place.aliases.remove(alias)
                changed += 1
    await session.flush()
    for name, (unit_id, aliases) in wanted.items():
        place = places.get(name)
        if place is None:
            place = Place(name=name, unit_id=unit_id, active=True, aliases=[])
            session.add(place)
            places[name] = place
            changed += 1
        elif place.unit_id != unit_id or not place.active:
            place.unit_id, place.active = unit_id, True
            changed += 1
        present = {a.alias for a in place.aliases}
        for alias in aliases:
            if alias not in present:
                place.aliases.append(PlaceAlias(alias=alias))
                changed += 1
    for name, place in places.items():
        if name not in wanted and place.active:
            place.active = False
            changed += 1
    await session.flush()
    return changed


@dataclass(frozen=True)
class ActiveOrg:
    """The org rows in force (not marked inactive by an import), as a server keeps them in memory."""

    units: list[Unit]
    places: list[Place]  # with their aliases loaded
    departments: list[Department]
    people: list[Person]


async def active_org(session: AsyncSession) -> ActiveOrg:
    """Every active unit, place (with aliases), department and person."""
    return ActiveOrg(
        units=list((await session.scalars(select(Unit).where(Unit.active.is_(True)))).all()),
        places=list((await session.scalars(select(Place).where(Place.active.is_(True)))).all()),
        departments=list(
            (await session.scalars(select(Department).where(Department.active.is_(True)))).all()
        ),
        people=list((await session.scalars(select(Person).where(Person.active.is_(True)))).all()),
    )
