"""The questions the bot may be waiting for a resident to answer (one at a time, in the state store)."""

from __future__ import annotations

from enum import StrEnum


class Ask(StrEnum):
    PLACE = "place"  # 在哪个小区/哪栋楼？ — the report waits for a place or a location
    CATEGORY = "category"  # the classifier was unsure: pick a numbered category
    RATE = "rate"  # 请评价: 1 满意 / 2 基本满意 / 3 不满意
    BIND = "bind"  # 绑定 without an address: waiting for one, or a location
    MENU = "menu"  # a bare digit got the numbered menu: 1 反映问题 / 2 查询 / 3 帮助
    VOICE = "voice"  # a voice message WeChat could not recognise: words or a numbered category, please


# Besides a question, a pending record may remember a place for the report that follows: a location
# ("location", "grid", "label") or a bare place name ("place": a Where as a dict).

WAIT = 3600.0  # seconds the bot waits for an answer (a rating waits as long as the order's rate limit)
