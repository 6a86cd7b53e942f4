"""Where a report is about: a place named in the words, a location sent just before, the place the
resident bound — kept in its most specific form (estate + 号楼/栋 + 单元 + 室, or road + number), also when
the estate comes from one message and the building from another."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from handlers.context import Context
from nlp.places import building_in
from storage.repo import ResidentInfo


@dataclass(frozen=True)
class Where:
    place_id: int | None
    grid: str
    label: str  # how the place reads in messages
    detail: str = ""
    location: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for a pending question."""
        return {**asdict(self), "location": list(self.location) if self.location else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Where:
        location = data.get("location")
        return cls(
            place_id=data.get("place_id"),
            grid=str(data["grid"]),
            label=str(data.get("label", "")),
            detail=str(data.get("detail", "")),
            location=(float(location[0]), float(location[1])) if location else None,
        )

    def with_building(self, *texts: str, instead: bool = False) -> Where:
        """This place with the building the resident wrote in `texts` (the first that has one):
        筱塘新村 + “3号楼有燃气味” → 筱塘新村3号楼. A detail the place already has stays, unless `instead`
        (a bound 3号楼 gives way to the 5号楼 of today's report)."""
        if self.place_id is None or (self.detail and not instead):
            return self
        for text in texts:
            building = building_in(text)
            if building:
                base = self.label[: len(self.label) - len(self.detail)] if self.detail else self.label
                return replace(self, label=base + building, detail=building)
        return self


def named_in(ctx: Context, text: str) -> Where | None:
    """The place the words name (a name, an alias, a house number in a range, a one-letter slip)."""
    directory = ctx.services.directory
    match = directory.index.find(text)
    if match is None:
        return None
    place_id = int(match.key)
    name = directory.places[place_id][0]
    return Where(place_id, match.grid, name + match.detail, match.detail).with_building(text)


def from_location(ctx: Context, pending: dict[str, Any]) -> Where | None:
    """The location the resident sent just before this report (kept in the pending record)."""
    if not pending.get("location") or str(pending.get("grid", "")) not in ctx.services.directory.units:
        return None
    grid = str(pending["grid"])
    lat, lng = pending["location"]
    label = str(pending.get("label") or ctx.services.directory.unit_name(grid))
    return Where(None, grid, label, location=(float(lat), float(lng)))


def from_hint(ctx: Context, pending: dict[str, Any]) -> Where | None:
    """The bare place the resident sent just before (“万辉国际城” → “这里遇到了什么问题？”)."""
    hint = pending.get("place")
    if not isinstance(hint, dict) or str(hint.get("grid", "")) not in ctx.services.directory.units:
        return None
    return Where.from_dict(hint)


def bound(ctx: Context, resident: ResidentInfo) -> Where | None:
    """The place the resident bound (绑定), or the grid of the location they bound."""
    directory = ctx.services.directory
    detail = resident.place_detail or ""
    place = directory.places.get(resident.place_id or -1)
    if place is not None:
        return Where(resident.place_id, place[1], place[0] + detail, detail)
    if resident.unit_id in directory.units:  # bound by a location: the grid, and the label WeChat gave
        return Where(None, str(resident.unit_id), detail or directory.unit_name(resident.unit_id))
    return None
