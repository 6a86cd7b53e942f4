"""The questions the bot may be waiting for a resident to answer (one at a time, in the state store)."""

from __future__ import annotations

from enum import StrEnum


class Ask(StrEnum):
    PLACE = "place"  # 在哪个小区/哪栋楼？ — the report waits for a place or a location
    CATEGORY = "category"  # the classifier was unsure: pick a numbered category
    RATE = "rate"  # 请评价: 1 满意 / 2 基本满意 / 3 不满意
    BIND = "bind"  # 绑定 without an address: waiting for one, or a location


WAIT = 3600.0  # seconds the bot waits for an answer (a rating waits as long as the order's rate limit)
