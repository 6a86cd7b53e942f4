"""Jinja filters: times in China time, percentages, sizes."""

from __future__ import annotations

from datetime import datetime

from handlers.rates import CHINA


def china_time(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return moment.astimezone(CHINA).strftime(fmt) if moment else "—"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def size(value: int | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1024:.0f} KB" if value < 1024 * 1024 else f"{value / 1024 / 1024:.1f} MB"


FILTERS = {"china_time": china_time, "percent": percent, "size": size}
