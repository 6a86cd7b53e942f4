"""Places: which grid a message is about, from the place names residents use.

`PlaceIndex.find` looks, in order, for

1. an exact place name or alias (the longest wins; then the earliest),
2. a house number inside a range place such as ``南门路1-19号`` (``南门路12号`` matches it,
   ``南门路25号`` does not; a bare ``南门路`` matches only when every range of that street is in
   the same grid),
3. a name of three or more characters written with one wrong character (``小塘新村`` → ``筱塘新村``).

The building / unit / number written right after the place (``3号楼2单元``, ``8栋``, ``12号``) is
returned as `detail`. Texts and names are normalised first (traditional, full-width, spacing).
`nearest_grid` picks the grid whose centre is closest to a location (haversine).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nlp.matcher import KeywordMatcher
from nlp.normalize import normalize

__all__ = ["PlaceEntry", "PlaceIndex", "PlaceMatch", "building_in", "haversine_km", "nearest_grid"]

_NUM = "0-9零〇一二三四五六七八九十百两"
_DETAIL = re.compile(rf"\s*的?\s*((?:[{_NUM}]+\s*(?:号楼|号院|栋|幢|座|单元|号|弄|楼|室|层|期|区|户)\s*)+)")
_RANGE = re.compile(r"^(?P<base>.*?\D)(?P<lo>\d+)\s*[-~～—–到至]\s*(?P<hi>\d+)\s*(?P<unit>号|弄|栋|幢)?$")
_HOUSE_NUMBER = re.compile(r"\s*(?P<n>\d+)\s*(?P<unit>号|弄|栋|幢)?")
# A building, unit or room written on its own (3号楼, 8栋2单元, 502室): the detail of a report whose
# estate comes from elsewhere (an answer, a bound place). A bare 号 or 楼 alone (5楼 is a floor) is not.
_BUILDING = re.compile(
    rf"(?<![{_NUM}])((?:[{_NUM}]+\s*(?:号楼|号院|栋|幢|座)\s*)(?:[{_NUM}]+\s*(?:单元|层|楼|室|户|号)\s*)*"
    rf"|(?:[{_NUM}]+\s*单元\s*)(?:[{_NUM}]+\s*(?:层|楼|室|户|号)\s*)*|[{_NUM}]+\s*室)"
)


@dataclass(frozen=True)
class PlaceEntry:
    key: str  # stable id of the place (e.g. "xiaotang-1:筱塘新村")
    name: str
    aliases: tuple[str, ...]
    grid: str  # unit id of the grid that covers the place


@dataclass(frozen=True)
class PlaceMatch:
    key: str
    grid: str
    matched: str  # the text that matched (normalised form)
    detail: str  # building / unit / number next to the place, "" if none


@dataclass(frozen=True)
class _Range:
    entry: PlaceEntry
    base: str
    lo: int
    hi: int
    unit: str


def _detail_at(text: str, pos: int) -> str:
    m = _DETAIL.match(text, pos)
    return re.sub(r"\s+", "", m.group(1)) if m else ""


class PlaceIndex:
    """An index of place names and aliases; immutable after construction."""

    def __init__(self, entries: Iterable[PlaceEntry]) -> None:
        self._names: dict[str, PlaceEntry] = {}
        self._ranges: list[_Range] = []
        self._fuzzy: dict[str, list[tuple[str, PlaceEntry]]] = {}
        for entry in entries:
            for raw in (entry.name, *entry.aliases):
                name = normalize(raw).lower()
                if not name:
                    continue
                rng = _RANGE.match(name)
                if rng:
                    lo, hi = int(rng["lo"]), int(rng["hi"])
                    self._ranges.append(
                        _Range(entry, rng["base"].strip(), min(lo, hi), max(lo, hi), rng["unit"] or "号")
                    )
                    continue
                self._names.setdefault(name, entry)
        for name, entry in self._names.items():
            if len(name) >= 3:
                for i in range(len(name)):
                    self._fuzzy.setdefault(name[:i] + "\0" + name[i + 1 :], []).append((name, entry))
        self._matcher = KeywordMatcher(self._names)
        self._bases = KeywordMatcher({r.base for r in self._ranges})
        self._fuzzy_lengths = sorted({len(n) for n in self._names if len(n) >= 3}, reverse=True)

    def __len__(self) -> int:
        return len(self._names) + len(self._ranges)

    def names(self) -> list[str]:
        """Every name, alias and range street (for teaching the segmenter)."""
        return [*self._names, *(r.base for r in self._ranges)]

    def find(self, text: str) -> PlaceMatch | None:
        """The place `text` talks about, or None."""
        norm = normalize(text).lower()
        if not norm:
            return None
        best: tuple[int, int, PlaceMatch] | None = None  # (-length, start, match)

        def offer(length: int, start: int, match: PlaceMatch) -> None:
            nonlocal best
            if best is None or (-length, start) < best[:2]:
                best = (-length, start, match)

        for name, start in self._matcher.find(norm):
            entry = self._names[name]
            end = start + len(name)
            offer(len(name), start, PlaceMatch(entry.key, entry.grid, name, _detail_at(norm, end)))
        for base, start in self._bases.find(norm):
            match = self._range_match(norm, base, start)
            if match is not None:
                offer(len(match.matched), start, match)
        if best is not None:
            return best[2]
        return self._fuzzy_find(norm)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every place name, alias and range street in `text` (normalised form), with
        the building or number written right after it."""
        norm = normalize(text).lower()
        found = []
        for name, start in [*self._matcher.find(norm), *self._bases.find(norm)]:
            end = start + len(name)
            number = _HOUSE_NUMBER.match(norm, end)
            if number and number.end() > end:
                end = number.end()
            detail = _DETAIL.match(norm, end)
            found.append((start, detail.end() if detail else end))
        return found

    def _range_match(self, text: str, base: str, start: int) -> PlaceMatch | None:
        end = start + len(base)
        ranges = [r for r in self._ranges if r.base == base]
        number = _HOUSE_NUMBER.match(text, end)
        if number:
            n = int(number["n"])
            for r in ranges:
                if r.lo <= n <= r.hi and (number["unit"] or r.unit) == r.unit:
                    tail = _detail_at(text, number.end())
                    detail = f"{n}{r.unit}{tail}"
                    return PlaceMatch(r.entry.key, r.entry.grid, text[start : number.end()].strip(), detail)
            return None
        grids = {r.entry.grid for r in ranges}
        if len(grids) == 1:
            r = ranges[0]
            return PlaceMatch(r.entry.key, r.entry.grid, base, _detail_at(text, end))
        return None

    def _fuzzy_find(self, text: str) -> PlaceMatch | None:
        for length in self._fuzzy_lengths:
            for start in range(len(text) - length + 1):
                window = text[start : start + length]
                if not all(ch.isalnum() for ch in window):
                    continue
                for i in range(length):
                    hits = self._fuzzy.get(window[:i] + "\0" + window[i + 1 :])
                    if hits:
                        _name, entry = hits[0]
                        detail = _detail_at(text, start + length)
                        return PlaceMatch(entry.key, entry.grid, window, detail)
        return None


def building_in(text: str) -> str:
    """The building / unit / room written anywhere in `text` (``3号楼2单元``), "" when there is none."""
    match = _BUILDING.search(normalize(text))
    return re.sub(r"\s+", "", match.group(1)) if match else ""


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in kilometres."""
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(a)))


def nearest_grid(centres: Mapping[str, tuple[float, float]], lat: float, lng: float) -> str | None:
    """The grid whose centre is nearest to (lat, lng); None when there are no centres."""
    best: tuple[float, str] | None = None
    for grid, (clat, clng) in centres.items():
        d = haversine_km(lat, lng, clat, clng)
        if best is None or (d, grid) < best:
            best = (d, grid)
    return best[1] if best else None
