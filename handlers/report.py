"""`gridbot report` and the chat commands `统计` / `排名`: the three rates per unit, as a terminal table in
Chinese, as CSV, and as short replies for a phone. The numbers come from `handlers.rates` (definitions)
over `storage.stats` (rows); this module only picks units and periods and lays the numbers out.

It imports nothing from `bot/`, so a chat handler in `handlers/` may call it as well.
"""

from __future__ import annotations

import asyncio
import csv
import io
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.directory import Directory
from handlers.rates import (
    CHINA,
    DEFAULT_WEIGHTS,
    EVENT_KINDS,
    MIN_SAMPLE,
    Counts,
    Period,
    UnitNode,
    UnitRates,
    Weights,
    build_rows,
    parse_period,
    ranked,
    small,
    subtree,
)
from storage.registrations import claims_by
from storage.stats import order_rows

__all__ = [
    "CSV_HEADER",
    "DEFAULT_WEIGHTS",
    "REPLY_BYTES",
    "Period",
    "UnitRates",
    "Weights",
    "format_csv",
    "format_text",
    "parse_period",
    "party_claims",
    "ranking_reply",
    "render_report",
    "report_rows",
    "stats_reply",
]

REPLY_BYTES = 1000  # a chat reply fits a phone screen (WeChat's own cap is 2048 bytes)
SMALL = "（样本少）"  # after a chat rate or score built on fewer than MIN_SAMPLE orders or ratings
LEVEL_WORDS = {"district": "区", "street": "街道", "community": "社区", "grid": "网格"}


# --- the rows -----------------------------------------------------------------------------------


def _nodes(directory: Directory) -> dict[str, UnitNode]:
    return {u.id: UnitNode(u.id, u.name, u.level, u.parent_id) for u in directory.units.values()}


def _roots(units: dict[str, UnitNode]) -> list[str]:
    return sorted(u.id for u in units.values() if u.parent_id is None or u.parent_id not in units)


async def report_rows(
    session: AsyncSession,
    directory: Directory,
    period: Period,
    unit_id: str | None = None,
    *,
    now: datetime | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
) -> list[UnitRates]:
    """The unit (default: every top-level unit) and every unit below it, in tree order, each with the
    counts and rates of its whole subtree over `period` as of `now` (default: the clock). Two queries.
    An unknown unit is a ValueError with a one-line message."""
    units = _nodes(directory)
    if unit_id is not None and unit_id not in units:
        raise ValueError(f"未知单位：{unit_id}（gridbot org show 可列出全部单位）")
    cutoff = period.cutoff(now or datetime.now(UTC))
    rows: list[UnitRates] = []
    for root in [unit_id] if unit_id is not None else _roots(units):
        below = [unit for unit, _ in subtree(units, root)]
        orders = await order_rows(session, below, period.start, cutoff, kinds=EVENT_KINDS, end=period.end)
        # Pure computation over plain rows; in a thread, so a big unit's month does not hold the event loop.
        rows.extend(
            await asyncio.to_thread(
                build_rows, units, root, orders, period.start, cutoff, weights, end=period.end
            )
        )
    return rows


async def party_claims(
    session: AsyncSession, directory: Directory, rows: Sequence[UnitRates], start: datetime, cutoff: datetime
) -> dict[str, int]:
    """党员领单: orders claimed (领单) in [start, cutoff) by Party members (the org file's and those of an
    approved 报到), per unit of `rows`, each over its whole subtree. Counted beside the rates, not in them."""
    party = {p.openid for p in directory.people.values() if p.role == "party_member"}
    own = await claims_by(session, {row.unit_id for row in rows}, party, start, cutoff)
    return {
        row.unit_id: sum(n for unit, n in own.items() if directory.contains(row.unit_id, unit))
        for row in rows
    }


async def render_report(
    session: AsyncSession,
    directory: Directory,
    *,
    period: str | None = None,
    unit_id: str | None = None,
    fmt: str = "text",
    now: datetime | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
) -> str:
    """What `gridbot report [--period P] [--unit ID] [--format text|csv]` prints (default: this month).
    Bad period, unit or format: ValueError with a one-line message."""
    if fmt not in ("text", "csv"):
        raise ValueError(f"未知格式：{fmt}（可用 text 或 csv）")
    now = now or datetime.now(UTC)
    parsed = parse_period(period or "本月", now)
    rows = await report_rows(session, directory, parsed, unit_id, now=now, weights=weights)
    party = await party_claims(session, directory, rows, parsed.start, parsed.cutoff(now))
    if fmt == "csv":
        return format_csv(rows, parsed, party)
    return format_text(rows, parsed, cutoff=parsed.cutoff(now), weights=weights, party=party)


# --- numbers as text ----------------------------------------------------------------------------


# Shown numbers round half up (52.25 → 52.3) whatever the float error of the division below them.
_NUDGE = 1e-9


def fixed(value: float | None, digits: int, empty: str = "") -> str:
    return empty if value is None else f"{value + _NUDGE:.{digits}f}"


def percent(rate: float | None, digits: int = 1) -> str:
    return "—" if rate is None else fixed(rate * 100, digits) + "%"


def number(value: float | None, digits: int = 1) -> str:
    return fixed(value, digits, "—")


def _rate_cell(
    rate: float | None,
    numerator: int,
    denominator: int,
    running: int = 0,
    *,
    waiting: str = "未到期",
    mark: str = "*",
) -> str:
    """75.0% 3/4, with `mark` when the sample is small (under MIN_SAMPLE); with no rate yet, how many
    orders are still running (“3 单未到期”), else “—”."""
    if rate is None:
        return f"{running} 单{waiting}" if running else "—"
    return f"{percent(rate)} {numerator}/{denominator}" + (mark if small(denominator) else "")


def _marked(row: UnitRates, mark: str) -> str:
    """`mark` when the row's composite rests on a small sample, else nothing."""
    return mark if row.composite is not None and row.small_sample else ""


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, right: bool = False) -> str:
    gap = " " * max(0, width - _width(text))
    return gap + text if right else text + gap


def _when(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


TEXT_COLUMNS = (
    "受理",
    "派发",
    "响应率",
    "解决率",
    "满意率",
    "逾期",
    "均响应(时)",
    "均办结(时)",
    "综合",
    "名次",
)


def format_text(
    rows: Sequence[UnitRates],
    period: Period,
    *,
    cutoff: datetime,
    weights: Weights = DEFAULT_WEIGHTS,
    party: Mapping[str, int] | None = None,
) -> str:
    """A table that fits a terminal: one line per unit, indented by level; “—” where there is nothing
    to divide. Then, with `party`, the orders Party members claimed (党员领单) per unit that has any."""
    until = min(period.end, max(cutoff, period.start))
    running = "，本期未结束" if cutoff < period.end else ""
    lines = [
        f"三率统计 {period.title}：{_when(period.start)} 至 {_when(until)}（北京时间{running}）",
        "响应率 = 按时响应/应响应；解决率 = 已解决/应办结；满意率 = 满意与基本满意/评价",
        f"综合分 = {weights.describe()}；无数据（—）的率不计，其余权重按比例放大",
        f"* 样本少：不足 {MIN_SAMPLE} 单（满意率：{MIN_SAMPLE} 个评价）；未到期、待评价：时限未到，尚未计入",
    ]
    if not rows:
        lines.append("没有单位。请先运行 gridbot org import FILE")
        return "\n".join(lines)
    table = [
        [
            "  " * row.depth + row.name,
            str(row.counts.received),
            str(row.counts.dispatched),
            _rate_cell(
                row.response_rate, row.counts.responded, row.counts.response_due, row.counts.response_running
            ),
            _rate_cell(row.resolution_rate, row.counts.resolved, row.counts.due, row.counts.resolve_running),
            _rate_cell(
                row.satisfaction_rate,
                row.counts.satisfied,
                row.counts.rated,
                row.counts.awaiting_rating,
                waiting="待评价",
            ),
            str(row.counts.overdue),
            number(row.avg_accept_hours),
            number(row.avg_resolve_hours),
            number(row.composite) + _marked(row, "*"),
            str(row.rank) if row.composite is not None else "—",
        ]
        for row in rows
    ]
    header = ["单位", *TEXT_COLUMNS]
    widths = [max(_width(line[i]) for line in [header, *table]) for i in range(len(header))]
    for line in [header, *table]:
        cells = [_pad(line[0], widths[0])]
        cells += [_pad(cell, widths[i], right=True) for i, cell in enumerate(line[1:], start=1)]
        lines.append("  ".join(cells).rstrip())
    if party is not None:
        claimed = [
            f"{'  ' * row.depth}{row.name} {party[row.unit_id]}" for row in rows if party.get(row.unit_id)
        ]
        lines.append("党员领单（党员领办的工单数）：" + ("" if claimed else "本期没有"))
        lines.extend(claimed)
    return "\n".join(lines)


CSV_HEADER = (
    "period",
    "unit_id",
    "unit_name",
    "level",
    "parent_id",
    "depth",
    "received",
    "dispatched",
    "response_due",
    "responded",
    "response_rate",
    "due",
    "resolved",
    "resolution_rate",
    "rated",
    "satisfied",
    "satisfaction_rate",
    "overdue",
    "avg_accept_hours",
    "avg_resolve_hours",
    "composite",
    "rank",
    "response_running",
    "resolve_running",
    "awaiting_rating",
    "small_sample",
    "party_claims",
)


def format_csv(rows: Sequence[UnitRates], period: Period, party: Mapping[str, int] | None = None) -> str:
    """CSV with a header (`CSV_HEADER`): rates as fractions 0–1 to four places, hours and the composite
    to two; an empty cell where there is nothing to divide. `party_claims`: 党员领单 (empty without
    `party`)."""

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        c = row.counts
        writer.writerow(
            [
                period.label,
                row.unit_id,
                row.name,
                row.level,
                row.parent_id or "",
                row.depth,
                c.received,
                c.dispatched,
                c.response_due,
                c.responded,
                fixed(row.response_rate, 4),
                c.due,
                c.resolved,
                fixed(row.resolution_rate, 4),
                c.rated,
                c.satisfied,
                fixed(row.satisfaction_rate, 4),
                c.overdue,
                fixed(row.avg_accept_hours, 2),
                fixed(row.avg_resolve_hours, 2),
                fixed(row.composite, 2),
                row.rank if row.composite is not None else "",
                c.response_running,
                c.resolve_running,
                c.awaiting_rating,
                int(row.small_sample) if row.composite is not None else "",
                party.get(row.unit_id, 0) if party is not None else "",
            ]
        )
    return out.getvalue()


# --- chat: 统计 and 排名 ---------------------------------------------------------------------------

STATS_HINT = "统计时段请写 今日、本周、本月、上周 或 上月，例如：统计 本周"
RANKING_HINT = "排名时段请写 本月、上月、本周 或 上周，例如：排名 上月"


def _fits(lines: list[str], limit: int = REPLY_BYTES) -> bool:
    return len("\n".join(lines).encode()) <= limit


def _short(name: str, parent: str) -> str:
    """筱塘社区第一网格 under 筱塘社区 → 第一网格: enough on a phone."""
    return name[len(parent) :] if name.startswith(parent) and len(name) > len(parent) else name


def _heading(period: Period, cutoff: datetime) -> str:
    if cutoff < period.end:
        return f"{period.title}，截至 {cutoff.astimezone(CHINA):%m-%d %H:%M}"
    return period.title


def _brief(row: UnitRates) -> str:
    return f"响应{percent(row.response_rate, 0)} 解决{percent(row.resolution_rate, 0)} 满意{percent(row.satisfaction_rate, 0)}"


def _children_word(rows: Sequence[UnitRates]) -> str:
    levels = {row.level for row in rows}
    return LEVEL_WORDS.get(levels.pop(), "下级单位") if len(levels) == 1 else "下级单位"


def _with_limited(head: list[str], items: list[str], tail: list[str], more: str) -> str:
    """head + as many items as fit + tail, with a line saying how many were left out."""
    shown: list[str] = []
    for index, item in enumerate(items):
        rest = len(items) - index - 1
        candidate = [*head, *shown, item]
        note = [more.format(n=rest)] if rest else []
        if not _fits([*candidate, *note, *tail]):
            return "\n".join([*head, *shown, more.format(n=len(items) - index), *tail])
        shown.append(item)
    return "\n".join([*head, *shown, *tail])


async def stats_reply(
    session: AsyncSession,
    directory: Directory,
    unit_id: str,
    period_word: str = "今日",
    now: datetime | None = None,
    *,
    weights: Weights = DEFAULT_WEIGHTS,
) -> str:
    """`统计 [今日|本周|本月]`: the speaker's unit over the period, then one line per unit directly below
    it. Fits a phone screen (≤ REPLY_BYTES) and ends with what to type next."""
    now = now or datetime.now(UTC)
    try:
        period = parse_period(period_word or "今日", now)
    except ValueError:
        return STATS_HINT
    if unit_id not in directory.units:
        return "您不属于任何单位，无法统计。"
    rows = await report_rows(session, directory, period, unit_id, now=now, weights=weights)
    own, children = rows[0], [row for row in rows if row.depth == 1]
    claimed = (await party_claims(session, directory, rows, period.start, period.cutoff(now)))[unit_id]
    c = own.counts
    head = [
        f"{own.name} 统计 · {_heading(period, period.cutoff(now))}",
        f"受理 {c.received} 单，逾期 {c.overdue} 单",
        f"响应率 {_rate_cell(own.response_rate, c.responded, c.response_due, c.response_running, mark=SMALL)}",
        f"解决率 {_rate_cell(own.resolution_rate, c.resolved, c.due, c.resolve_running, mark=SMALL)}",
        "满意率 "
        + _rate_cell(
            own.satisfaction_rate, c.satisfied, c.rated, c.awaiting_rating, waiting="待评价", mark=SMALL
        ),
        f"综合 {number(own.composite)} 分{_marked(own, SMALL)}",
    ]
    if claimed:
        head.insert(2, f"党员领单 {claimed} 单")
    items = []
    for row in children:
        short = _short(row.name, own.name)
        if row.counts == Counts():
            items.append(f"{short} 无工单")
        else:
            late = f" 逾期{row.counts.overdue}" if row.counts.overdue else ""
            items.append(f"{short} 受理{row.counts.received} {_brief(row)}{late}")
    if items:
        head.append(f"各{_children_word(children)}：")
    next_steps = (
        "回复“排名”看名次，“统计 本周/上月”等换时段。" if children else "回复“统计 本周/上月”等换时段。"
    )
    return _with_limited(head, items, [next_steps], "……另有 {n} 个未列出")


async def ranking_reply(
    session: AsyncSession,
    directory: Directory,
    unit_id: str,
    period_word: str = "本月",
    now: datetime | None = None,
    *,
    weights: Weights = DEFAULT_WEIGHTS,
    top: int = 10,
) -> str:
    """`排名 [本月|上月|…]`: the units directly below the speaker's unit ranked by composite score, best
    first, top `top`; a unit with nothing below it sees its siblings, itself marked. Fits a phone screen."""
    now = now or datetime.now(UTC)
    try:
        period = parse_period(period_word or "本月", now)
    except ValueError:
        return RANKING_HINT
    unit = directory.units.get(unit_id)
    if unit is None:
        return "您不属于任何单位，无法排名。"
    has_children = any(u.parent_id == unit_id for u in directory.units.values())
    parent_id = unit_id if has_children or unit.parent_id is None else unit.parent_id
    rows = await report_rows(session, directory, period, parent_id, now=now, weights=weights)
    parent, children = rows[0], [row for row in rows if row.depth == 1]
    if not children:
        return f"{parent.name} 没有下级单位可排名。回复“统计 本月”看本单位数字。"
    order = ranked(children)
    scored = [row for row in order if row.composite is not None]
    unscored = [row for row in order if row.composite is None]
    head = [
        f"{parent.name} 各{_children_word(children)}排名 · {_heading(period, period.cutoff(now))}",
        f"综合分 = {weights.describe()}",
    ]
    items = []
    for row in scored[:top]:
        mine = "（本单位）" if row.unit_id == unit_id else ""
        items.append(
            f"{row.rank}. {_short(row.name, parent.name)}{mine} {number(row.composite)} 分"
            + f"（{_brief(row)}{_marked(row, '，样本少')}）"
        )
    tail = []
    if len(scored) > top:
        tail.append(f"共 {len(scored)} 个有分数，仅列前 {top}。")
    if unscored:
        names = "、".join(_short(row.name, parent.name) for row in unscored)
        tail.append(f"无数据：{names}")
    tail.append("回复“统计 本月”看明细，“排名 上月”看上月。")
    if not _fits([*head, *items, *tail]) and unscored:  # the list of names without data goes first
        tail = [line for line in tail if not line.startswith("无数据")]
        tail.insert(-1, f"无数据 {len(unscored)} 个")
    return _with_limited(head, items, tail, "……另有 {n} 个未列出")
