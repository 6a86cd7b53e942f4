"""The organisation file: validation refuses bad files whole; import is idempotent on both backends."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import session_factory
from storage.models import Department, Person, Place, PlaceAlias, Unit
from storage.org import LEVELS, ROLES, OrgError, apply_org, load_org_file, org_revision, parse_org
from tests.conftest import DEMO_ORG

BASE = """
[[unit]]
id = "d"
name = "城厢区"
level = "district"

[[unit]]
id = "s"
name = "龙桥街道"
level = "street"
parent = "d"

[[unit]]
id = "c"
name = "筱塘社区"
level = "community"
parent = "s"

[[unit]]
id = "g1"
name = "第一网格"
level = "grid"
parent = "c"
branch = "第一网格党支部"
places = ["筱塘新村", "南门路1-19号"]
aliases = { "筱塘新村" = ["筱塘小区"] }
location = [25.43, 119.0]

[[person]]
openid = "oL"
name = "林文"
role = "grid_leader"
unit = "g1"

[[person]]
openid = "oP"
name = "物业王"
role = "department_contact"
unit = "c"

[[department]]
id = "wy"
name = "红色物业"
categories = ["物业服务"]
units = ["c"]
contacts = ["oP"]
"""


def base() -> dict[str, Any]:
    return tomllib.loads(BASE)


async def counts(engine: AsyncEngine) -> dict[str, int]:
    async with session_factory(engine)() as session:
        result = {}
        for model in (Unit, Place, PlaceAlias, Person, Department):
            result[model.__tablename__] = await session.scalar(select(func.count()).select_from(model))
        return result


async def run_import(engine: AsyncEngine, data: dict[str, Any]) -> int:
    async with session_factory(engine)() as session, session.begin():
        return (await apply_org(session, parse_org(data))).changed


class TestValidation:
    def test_demo_file_is_valid_and_believable(self) -> None:
        spec = load_org_file(DEMO_ORG)
        levels = [u.level for u in spec.units]
        assert levels.count("street") == 2
        assert levels.count("community") >= 4
        grids_per_community: dict[str, int] = {}
        for unit in spec.units:
            if unit.level == "grid":
                grids_per_community[unit.parent or ""] = grids_per_community.get(unit.parent or "", 0) + 1
                assert unit.branch and unit.branch.endswith("党支部") and unit.places and unit.location
        assert all(2 <= n <= 3 for n in grids_per_community.values())
        assert {p.role for p in spec.people} == set(ROLES)
        assert any("物业" in d.name for d in spec.departments)

    @pytest.mark.parametrize(
        ("mutate", "message"),
        [
            (lambda d: d["unit"][3].update(parent="nowhere"), "上级单位 'nowhere' 不存在"),
            (lambda d: d["unit"].append(dict(d["unit"][3])), "id 重复"),
            (lambda d: d["unit"][3].update(level="village"), "未知的层级 'village'"),
            (lambda d: d["person"][0].update(role="boss"), "未知的角色 'boss'"),
            (lambda d: d["unit"][3].pop("parent"), "网格必须有上级社区"),
            (lambda d: d["unit"][3].update(parent="s"), "应为社区"),
            (lambda d: d["person"][0].update(unit="zz"), "所属单位 'zz' 不存在"),
            (lambda d: d["person"].append(dict(d["person"][0])), "openid 重复"),
            (lambda d: d["department"][0].update(contacts=["oL"]), "department_contact"),
            (lambda d: d["department"][0].update(contacts=["oX"]), "未在 [[person]] 中列出"),
            (lambda d: d["department"][0].update(units=["q"]), "服务单位 'q' 不存在"),
            (lambda d: d["unit"][3].update(aliases={"别处": ["x"]}), "不在 places 中"),
            (lambda d: d["unit"][2].update(places=["x"]), "只有网格"),
            (lambda d: d["unit"][3].update(location=[200, 1]), "location"),
            (lambda d: d["unit"][3].update(colour="red"), "未知的字段 'colour'"),
            (lambda d: d["unit"][3].pop("name"), "缺少 name"),
            (lambda d: d.update(grid=[{}]), "未知的表"),
        ],
    )
    def test_bad_files_are_refused_with_a_clear_line(self, mutate: Any, message: str) -> None:
        data = base()
        mutate(data)
        with pytest.raises(OrgError) as error:
            parse_org(data)
        assert message in str(error.value)
        assert "\n" not in str(error.value)

    def test_a_place_name_used_twice_is_refused(self) -> None:
        data = base()
        second = dict(data["unit"][3], id="g2", name="第二网格", places=["筱塘小区"], aliases={})
        data["unit"].append(second)
        with pytest.raises(OrgError, match="重复"):
            parse_org(data)

    def test_unreadable_files(self, tmp_path: Path) -> None:
        with pytest.raises(OrgError, match="不存在"):
            load_org_file(tmp_path / "none.toml")
        bad = tmp_path / "bad.toml"
        bad.write_text("[[unit]\nid=", encoding="utf-8")
        with pytest.raises(OrgError, match="TOML"):
            load_org_file(bad)

    def test_levels_are_the_four_of_the_spec(self) -> None:
        assert LEVELS == ("district", "street", "community", "grid")


@pytest.mark.usefixtures("backend")
class TestImport:
    async def test_importing_twice_changes_nothing(self, engine: AsyncEngine) -> None:
        assert await run_import(engine, base()) > 0
        first = await counts(engine)
        assert first == {"unit": 4, "place": 2, "place_alias": 1, "person": 2, "department": 1}
        assert await run_import(engine, base()) == 0
        assert await counts(engine) == first

    async def test_only_an_import_that_changes_something_bumps_the_revision(
        self, engine: AsyncEngine
    ) -> None:
        async def revision() -> int:
            async with session_factory(engine)() as session:
                return await org_revision(session)

        assert await revision() == 0
        await run_import(engine, base())
        assert await revision() == 1
        await run_import(engine, base())
        assert await revision() == 1
        data = base()
        data["person"][0]["name"] = "林新"
        await run_import(engine, data)
        assert await revision() == 2

    async def test_demo_imports_twice_with_no_change(self, engine: AsyncEngine) -> None:
        spec = load_org_file(DEMO_ORG)
        for expected_changes in (None, 0):
            async with session_factory(engine)() as session, session.begin():
                summary = await apply_org(session, spec)
            if expected_changes is not None:
                assert summary.changed == expected_changes
        assert (await counts(engine))["person"] == len(spec.people)

    async def test_changing_a_role_updates_it(self, engine: AsyncEngine) -> None:
        await run_import(engine, base())
        data = base()
        data["person"][0]["role"] = "grid_member"
        assert await run_import(engine, data) == 1
        async with session_factory(engine)() as session:
            person = await session.get(Person, "oL")
        assert person is not None and person.role == "grid_member"

    async def test_removed_rows_become_inactive_and_come_back(self, engine: AsyncEngine) -> None:
        await run_import(engine, base())
        data = base()
        data["person"] = data["person"][1:]
        data["unit"][3]["places"] = ["南门路1-19号"]
        data["unit"][3]["aliases"] = {}
        await run_import(engine, data)
        async with session_factory(engine)() as session:
            person = await session.get(Person, "oL")
            place = await session.scalar(select(Place).where(Place.name == "筱塘新村"))
            aliases = await session.scalar(select(func.count()).select_from(PlaceAlias))
        assert person is not None and person.active is False
        assert place is not None and place.active is False
        assert aliases == 0
        await run_import(engine, base())
        async with session_factory(engine)() as session:
            person = await session.get(Person, "oL")
        assert person is not None and person.active is True

    async def test_an_alias_can_move_between_places(self, engine: AsyncEngine) -> None:
        await run_import(engine, base())
        data = base()
        data["unit"][3]["aliases"] = {"南门路1-19号": ["筱塘小区"]}
        await run_import(engine, data)
        async with session_factory(engine)() as session:
            alias = await session.scalar(select(PlaceAlias).where(PlaceAlias.alias == "筱塘小区"))
            place = await session.get(Place, alias.place_id) if alias else None
        assert place is not None and place.name == "南门路1-19号"
