"""The orders list's filters, read from the query string (the same for the page and the CSV export)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from multidict import MultiMapping

from handlers.directory import Directory
from handlers.rates import CHINA
from handlers.workflow import OPEN_DEADLINES, OPEN_STATES, STATE_NAMES
from storage.dashboard import OrderFilter

PAGE_SIZE = 50
STATE_CHOICES = {"open": "办理中（全部未结）", **STATE_NAMES}
FIELDS = ("state", "category", "unit", "urgent", "overdue", "from", "to", "q")


@dataclass(frozen=True)
class Query:
    """The filters as the admin wrote them (for the form and the links) and as the query runs them."""

    values: dict[str, str]
    filter: OrderFilter
    page: int

    def link(self, **changes: str | int) -> str:
        """This query string with some fields changed (empty values dropped)."""
        values = {**self.values, **{k: str(v) for k, v in changes.items()}}
        return urlencode({k: v for k, v in values.items() if v})


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=CHINA)


def read_query(
    query: MultiMapping[str], directory: Directory, scope: tuple[str, ...], now: datetime
) -> Query:
    values = {name: query.get(name, "").strip()[:100] for name in FIELDS}
    state = values["state"]
    states = tuple(sorted(OPEN_STATES)) if state == "open" else (state,) if state in STATE_NAMES else ()
    if state not in STATE_CHOICES:
        values["state"] = ""
    unit = values["unit"]
    grids: tuple[str, ...] = ()
    if unit:
        grids = tuple(g for g in directory.grids_under(unit) if g in scope)
        if not grids:  # not a unit of theirs: nothing, rather than everything
            grids = ("",)
    start, end = _day(values["from"]), _day(values["to"])
    try:
        page = max(1, int(query.get("page", "1")))
    except ValueError:
        page = 1
    flt = OrderFilter(
        states=states,
        categories=(values["category"],) if values["category"] else (),
        grids=grids,
        urgent=values["urgent"] == "1",
        overdue=values["overdue"] == "1",
        created_from=_midnight(start) if start else None,
        created_before=_midnight(end) + timedelta(days=1) if end else None,
        text=values["q"],
        now=now,
        deadlines=OPEN_DEADLINES,
    )
    return Query(values, flt, page)
