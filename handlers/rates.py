"""The three rates (响应率, 解决率, 满意率), the counts beside them and the composite score: defined once,
here, as pure functions over plain rows (`storage.stats.OrderRow`). `docs/rates.md` says the same in
words; keep the two together.

For a period [start, end) the *cut-off* is min(end, now): only what had happened by then counts, so a
month's numbers stop changing once it is over. Every order contributes to a unit's counts on its own
(`order_facts`), and a unit's counts are the sum over the orders of every unit below it, so a
community's numbers are exactly the sum of its grids'.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handlers.workflow import (
    ACTIONS,
    CANCELLED,
    OPEN_STATES,
    RATING_STATES,
    RATINGS,
    RESOLVED_STATES,
    STATE_TABLE,
    TRANSITIONS,
)
from storage.stats import EventRow, OrderRow

try:
    CHINA: tzinfo = ZoneInfo("Asia/Shanghai")
except ZoneInfoNotFoundError:  # pragma: no cover - no tz database (e.g. Windows without tzdata)
    CHINA = timezone(timedelta(hours=8), "CST")  # China has kept UTC+8 without DST since 1991

SATISFIED = frozenset({"满意", "基本满意"})
ACCEPTS = frozenset(name for name, action in ACTIONS.items() if "accepted_at" in action.stamps)  # 接单, 领单
DISPATCHES = frozenset({"assign", "claim"})
REDISPATCHES = frozenset({"assign", "transfer"})  # each gives the order a new accept deadline
MIN_SAMPLE = 5  # a rate (or a score built on one) over fewer orders or ratings than this is 样本少
# The events the rates read: everything that moves an order (for its state at the cut-off) and the ratings;
# not the progress notes and extensions, which leave the state as it was.
EVENT_KINDS = frozenset({"create"} | {action for _, action in TRANSITIONS} - {"progress", "extend"})


# --- weights and the composite ------------------------------------------------------------------


@dataclass(frozen=True)
class Weights:
    """How much each rate counts in the composite score (relative; they need not add up to 100)."""

    response: float = 30
    resolution: float = 35
    satisfaction: float = 35

    @classmethod
    def from_sequence(cls, values: Sequence[float]) -> Weights:
        """From the config's `[report] weights = [30, 35, 35]`; anything else is a one-line ValueError."""
        if not isinstance(values, Sequence) or isinstance(values, str | bytes) or len(values) != 3:
            raise ValueError(
                "report.weights 应为三个数，依次是响应率、解决率、满意率的权重，例如 [30, 35, 35]"
            )
        numbers: list[float] = []
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValueError(f"report.weights 中的 {value!r} 不是非负数")
            numbers.append(float(value))
        if sum(numbers) <= 0:
            raise ValueError("report.weights 不能全为 0")
        return cls(*numbers)

    def describe(self) -> str:
        total = self.response + self.resolution + self.satisfaction
        parts = zip(
            ("响应", "解决", "满意"), (self.response, self.resolution, self.satisfaction), strict=True
        )
        return " + ".join(f"{name}{weight / total * 100:g}%" for name, weight in parts)


DEFAULT_WEIGHTS = Weights()


def ratio(numerator: int, denominator: int) -> float | None:
    """numerator / denominator, or None when there is nothing to divide (shown as “—”)."""
    return numerator / denominator if denominator else None


def composite(
    response: float | None, resolution: float | None, satisfaction: float | None, weights: Weights
) -> float | None:
    """The weighted mean of the rates that exist, × 100. A rate with a zero denominator (None) is left
    out and the other weights are renormalised; with no rate at all (or only zero weights) there is no
    score."""
    pairs = [
        (weight, rate)
        for weight, rate in (
            (weights.response, response),
            (weights.resolution, resolution),
            (weights.satisfaction, satisfaction),
        )
        if rate is not None and weight > 0
    ]
    total = sum(weight for weight, _ in pairs)
    if not total:
        return None
    return sum(weight * rate for weight, rate in pairs) / total * 100


# --- periods ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """[start, end) in China time. `label` is canonical ('2026-11', '2026-W47', '2026-11-05'); `word` is
    the relative word it was asked as (本月), if any."""

    label: str
    start: datetime
    end: datetime
    word: str = ""

    @property
    def title(self) -> str:
        return f"{self.word}（{self.label}）" if self.word else self.label

    def cutoff(self, now: datetime) -> datetime:
        """What counts is what had happened by the end of the period, or by now if it is not over."""
        return max(self.start, min(self.end, now))


_MONTH = re.compile(r"(\d{4})-(\d{1,2})")
_WEEK = re.compile(r"(\d{4})-?W(\d{1,2})", re.IGNORECASE)
_DAY = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
RELATIVE = {
    "今日": "day",
    "今天": "day",
    "昨日": "-day",
    "昨天": "-day",
    "本周": "week",
    "上周": "-week",
    "本月": "month",
    "上月": "-month",
}
PERIOD_HELP = "请写 2026-11（月）、2026-W47（周）、2026-11-05（日），或 今日、本周、本月、上周、上月"


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=CHINA)


def _month(year: int, month: int) -> Period:
    if not 1 <= month <= 12:
        raise ValueError(f"没有 {month} 月")
    following = date(year + month // 12, month % 12 + 1, 1)
    return Period(f"{year}-{month:02d}", _midnight(date(year, month, 1)), _midnight(following))


def _week(year: int, week: int) -> Period:
    monday = date.fromisocalendar(year, week, 1)  # ValueError for week 0, 54, or 53 in a 52-week year
    return Period(f"{year}-W{week:02d}", _midnight(monday), _midnight(monday + timedelta(days=7)))


def _day(day: date) -> Period:
    return Period(day.isoformat(), _midnight(day), _midnight(day + timedelta(days=1)))


def parse_period(text: str, now: datetime) -> Period:
    """'2026-11', '2026-W47', '2026-11-05', or 今日/本周/本月/昨日/上周/上月 relative to `now` (aware).

    Days begin at 00:00 and weeks on Monday, China time (Asia/Shanghai). Anything else is a ValueError
    with a one-line Chinese message saying what to write.
    """
    word = text.strip()
    today = now.astimezone(CHINA).date()
    try:
        if word in RELATIVE:
            kind = RELATIVE[word]
            if kind == "day":
                period = _day(today)
            elif kind == "-day":
                period = _day(today - timedelta(days=1))
            elif kind in ("week", "-week"):
                monday = today - timedelta(days=today.weekday() + (7 if kind == "-week" else 0))
                year, week, _ = monday.isocalendar()
                period = _week(year, week)
            else:
                year, month = (today.year, today.month) if kind == "month" else _previous_month(today)
                period = _month(year, month)
            return replace(period, word=word)
        if match := _DAY.fullmatch(word):
            return _day(date(int(match[1]), int(match[2]), int(match[3])))
        if match := _WEEK.fullmatch(word):
            return _week(int(match[1]), int(match[2]))
        if match := _MONTH.fullmatch(word):
            return _month(int(match[1]), int(match[2]))
    except ValueError as exc:
        raise ValueError(f"统计周期 “{word}” 不存在（{exc}）；{PERIOD_HELP}") from None
    raise ValueError(f"无法识别的统计周期 “{word}”；{PERIOD_HELP}")


def _previous_month(today: date) -> tuple[int, int]:
    return (today.year - 1, 12) if today.month == 1 else (today.year, today.month - 1)


# --- one order ----------------------------------------------------------------------------------


@dataclass
class Counts:
    """Additive counts of one unit (or of one order): a unit's counts are the sum over its orders."""

    received: int = 0  # created in the period
    dispatched: int = 0  # … and assigned or claimed by the cut-off
    response_due: int = 0  # 应响应: accept deadline in the period (not cancelled before it)
    responded: int = 0  # … first accepted or claimed by that deadline
    due: int = 0  # 应办结: resolve deadline in the period (not cancelled)
    resolved: int = 0  # … resolved or closed at the cut-off, never reopened
    rated: int = 0  # ratings given in the period (a reopen is a 不满意)
    satisfied: int = 0  # … 满意 or 基本满意
    overdue: int = 0  # open at the cut-off and past its current deadline
    accepts: int = 0  # orders first accepted in the period …
    accept_hours: float = 0.0  # … and the hours from creation to that acceptance, summed
    resolves: int = 0  # orders resolved in the period …
    resolve_hours: float = 0.0  # … and the hours from creation to their last resolution in it, summed
    response_running: int = 0  # accept deadline later in the period, not yet accepted: not judged yet
    resolve_running: int = 0  # resolve deadline later in the period: not judged yet
    awaiting_rating: int = 0  # resolved at the cut-off, the resident's rating still to come

    def __iadd__(self, other: Counts) -> Counts:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))
        return self


def _hours(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 3600


def _rating(event: EventRow, order: OrderRow) -> str:
    if event.kind == "reopen":
        return "不满意"
    text = event.text.strip()
    return text if text in RATINGS else (order.rating or "")


def state_at(order: OrderRow, cutoff: datetime) -> str | None:
    """The order's state at the cut-off: where its last state-changing event before then left it."""
    if order.created_at >= cutoff:
        return None
    state = "new"
    for event in sorted(order.events, key=lambda e: e.at):  # stable: same-moment events keep their order
        if event.at < cutoff and event.to_state:
            state = event.to_state
    return state


def order_facts(order: OrderRow, start: datetime, cutoff: datetime, end: datetime | None = None) -> Counts:
    """What one order adds to its unit's counts for the period [start, end) as of `cutoff` (≤ end; the
    period is over when they are equal, the default). The definitions, in code."""
    end = cutoff if end is None else end
    events = sorted((e for e in order.events if e.at < cutoff), key=lambda e: e.at)  # stable on ties
    in_period = [e for e in events if e.at >= start]
    first_accept = next((e.at for e in events if e.kind in ACCEPTS), None)
    cancelled_at = next((e.at for e in events if e.kind == "cancel"), None)
    state = state_at(order, cutoff)
    facts = Counts()

    if start <= order.created_at < cutoff:
        facts.received = 1
        facts.dispatched = int(any(e.kind in DISPATCHES for e in events))

    # 响应: judged in the period its accept deadline falls in. The stored deadline is the one of the last
    # 派单/转派, so the acceptance that answers it is the first one at or after that dispatch. An order
    # accepted in time is judged at once, even while its deadline is still ahead; one not accepted yet
    # whose deadline is still ahead is running.
    accept_due = order.accept_due
    if accept_due is not None and start <= accept_due < end and state is not None:
        dispatched_at = next((e.at for e in reversed(events) if e.kind in REDISPATCHES), None)
        answer = next(
            (e.at for e in events if e.kind in ACCEPTS and (dispatched_at is None or e.at >= dispatched_at)),
            None,
        )
        in_time = answer is not None and answer <= accept_due
        withdrawn = not in_time and cancelled_at is not None and cancelled_at <= accept_due
        if accept_due < cutoff or in_time:
            if not withdrawn:
                facts.response_due = 1
                facts.responded = int(in_time)
        elif not withdrawn:
            facts.response_running = 1

    # 解决: judged in the period its resolve deadline falls in, once that has passed (a resolved order may
    # still be reopened by the resident until then); an order nobody accepted by the cut-off was due when
    # its acceptance was (it cannot be resolved without being accepted).
    resolve_by = order.resolve_due if first_accept is not None and order.resolve_due else accept_due
    if resolve_by is not None and start <= resolve_by < end and state not in (None, CANCELLED):
        if resolve_by < cutoff:
            facts.due = 1
            reopened = any(e.kind == "reopen" for e in events)
            facts.resolved = int(state in RESOLVED_STATES and not reopened)
        else:
            facts.resolve_running = 1

    # 满意: every rating given in the period; a reopen is the resident saying 不满意.
    for event in in_period:
        if event.kind in ("rate", "reopen"):
            facts.rated += 1
            facts.satisfied += int(_rating(event, order) in SATISFIED)

    # 逾期: open at the cut-off and past the deadline of the phase it is in.
    if state in OPEN_STATES:
        phase = STATE_TABLE[state].phase
        deadline = getattr(order, phase.deadline) if phase else None
        facts.overdue = int(deadline is not None and deadline < cutoff)
    facts.awaiting_rating = int(state in RATING_STATES)

    if first_accept is not None and first_accept >= start:
        facts.accepts = 1
        facts.accept_hours = _hours(first_accept, order.created_at)
    last_resolve = next((e.at for e in reversed(in_period) if e.kind == "resolve"), None)
    if last_resolve is not None:
        facts.resolves = 1
        facts.resolve_hours = _hours(last_resolve, order.created_at)
    return facts


# --- units --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitNode:
    """What the report needs of a unit (handlers.directory.UnitInfo has these fields)."""

    id: str
    name: str
    level: str
    parent_id: str | None


@dataclass(frozen=True)
class UnitRates:
    """One row of the report: a unit (with everything below it) over one period."""

    unit_id: str
    name: str
    level: str
    parent_id: str | None
    depth: int  # 0 for the unit the report is about, 1 for its children, …
    counts: Counts
    response_rate: float | None  # 响应率
    resolution_rate: float | None  # 解决率
    satisfaction_rate: float | None  # 满意率
    avg_accept_hours: float | None
    avg_resolve_hours: float | None
    composite: float | None
    rank: int  # among the units with the same parent in this report (1 = best)
    small_sample: bool = False  # the composite rests on a rate of fewer than MIN_SAMPLE orders or ratings


def small(denominator: int) -> bool:
    """A rate over so few orders (or ratings) that one more would swing it: 样本少."""
    return 0 < denominator < MIN_SAMPLE


def unit_rates(unit: UnitNode, depth: int, counts: Counts, weights: Weights, rank: int = 1) -> UnitRates:
    response = ratio(counts.responded, counts.response_due)
    resolution = ratio(counts.resolved, counts.due)
    satisfaction = ratio(counts.satisfied, counts.rated)
    parts = (
        (weights.response, counts.response_due),
        (weights.resolution, counts.due),
        (weights.satisfaction, counts.rated),
    )
    return UnitRates(
        unit_id=unit.id,
        name=unit.name,
        level=unit.level,
        parent_id=unit.parent_id,
        depth=depth,
        counts=counts,
        response_rate=response,
        resolution_rate=resolution,
        satisfaction_rate=satisfaction,
        avg_accept_hours=counts.accept_hours / counts.accepts if counts.accepts else None,
        avg_resolve_hours=counts.resolve_hours / counts.resolves if counts.resolves else None,
        composite=composite(response, resolution, satisfaction, weights),
        rank=rank,
        small_sample=any(weight > 0 and small(n) for weight, n in parts),
    )


def ranking_key(row: UnitRates) -> tuple[bool, float, str]:
    """Best first: highest composite; units with no score last; ties by unit id (stable, not by luck)."""
    return (row.composite is None, -round(row.composite or 0.0, 9), row.unit_id)


def ranked(rows: Iterable[UnitRates]) -> list[UnitRates]:
    return sorted(rows, key=ranking_key)


def subtree(units: Mapping[str, UnitNode], root: str) -> list[tuple[str, int]]:
    """The root and every unit below it, depth first in id order, with their depth."""
    children: dict[str, list[str]] = {}
    for unit in units.values():
        if unit.parent_id is not None:
            children.setdefault(unit.parent_id, []).append(unit.id)
    out: list[tuple[str, int]] = []
    stack = [(root, 0)]
    seen: set[str] = set()
    while stack:
        unit_id, depth = stack.pop()
        if unit_id in seen:
            continue
        seen.add(unit_id)
        out.append((unit_id, depth))
        stack.extend((child, depth + 1) for child in sorted(children.get(unit_id, ()), reverse=True))
    return out


def build_rows(
    units: Mapping[str, UnitNode],
    root: str,
    orders: Iterable[OrderRow],
    start: datetime,
    cutoff: datetime,
    weights: Weights = DEFAULT_WEIGHTS,
    end: datetime | None = None,
) -> list[UnitRates]:
    """The report for `root` and every unit below it, in tree order; each unit's counts are the sum of
    the orders of its whole subtree. Orders of units outside the subtree are ignored. `end` is the end
    of the period (default: the cut-off, a period that is over)."""
    tree = subtree(units, root)
    inside = {unit_id for unit_id, _ in tree}
    counts = {unit_id: Counts() for unit_id in inside}
    for order in orders:
        unit_id: str | None = order.unit_id
        if unit_id not in inside:
            continue
        facts = order_facts(order, start, cutoff, end)
        while unit_id is not None and unit_id in inside:
            counts[unit_id] += facts
            if unit_id == root:
                break
            unit_id = units[unit_id].parent_id
    rows = [unit_rates(units[unit_id], depth, counts[unit_id], weights) for unit_id, depth in tree]
    ranks: dict[str, int] = {}
    siblings: dict[str | None, list[UnitRates]] = {}
    for row in rows:
        siblings.setdefault(row.parent_id if row.unit_id != root else None, []).append(row)
    for group in siblings.values():
        for place, row in enumerate(ranked(group), start=1):
            ranks[row.unit_id] = place
    return [replace(row, rank=ranks[row.unit_id]) for row in rows]
