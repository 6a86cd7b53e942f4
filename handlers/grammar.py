"""How a chat message reads as a command: a word, an optional number, and the rest.

People write `接单 12`, `接单#12`, `接單 ＃１２`, `  进展 12  已联系物业 `; all read the same. Which words
exist and what each takes is declared in `handlers.commands`; this module only reads text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nlp.normalize import to_simplified

__all__ = [
    "MAX_EXTENSION_DAYS",
    "PERIODS",
    "Command",
    "clean",
    "days_and_reason",
    "split",
]

PERIODS = {
    "今日": "今日",
    "今天": "今日",
    "本周": "本周",
    "这周": "本周",
    "本月": "本月",
    "这个月": "本月",
    "上周": "上周",
    "上月": "上月",
    "上个月": "上月",
}
MAX_EXTENSION_DAYS = 30

_WORD = re.compile(r"^([^\s#\d]+?)\s*(?=[\s#\d]|$)(.*)$", re.DOTALL)
_NUMBER = re.compile(r"^#?\s*(\d{1,9})(?!\d)\s*(.*)$", re.DOTALL)
_DAYS = re.compile(r"^(\d{1,3}|[一二两三四五六七八九十]{1,2})\s*(?:天|日)?\s*(.*)$", re.DOTALL)
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
# Full-width letters, digits and signs → ASCII; Chinese punctuation stays as people wrote it.
_KEEP = set("，。！？：；（）、")
_HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F) if chr(code) not in _KEEP} | {
    0x3000: 0x20
}


@dataclass(frozen=True)
class Command:
    word: str
    number: int | None = None
    rest: str = ""
    days: int | None = None  # 延期
    error: str | None = None  # set when the command is recognised but written wrongly: how to write it
    # Who may act on the order the number names (from the command's declaration); not part of equality.
    access: Callable[[Any, Any], bool] | None = field(default=None, compare=False, repr=False)


def clean(text: str) -> str:
    """Full-width → half-width (but not Chinese punctuation), traditional → simplified, spaces folded."""
    return " ".join(to_simplified(text.translate(_HALF_WIDTH)).split())


def split(text: str) -> tuple[str, int | None, str] | None:
    """(first word, the number after it, the rest), or None when the text does not start with a word."""
    match = _WORD.match(clean(text))
    if not match:
        return None
    tail = match.group(2).strip()
    number = _NUMBER.match(tail)
    if number:
        return match.group(1).lower(), int(number.group(1)), number.group(2).strip()
    return match.group(1).lower(), None, tail


def _chinese_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if text == "十":
        return 10
    if text.startswith("十"):
        return 10 + _CN_DIGITS.get(text[1:], 0)
    if text.endswith("十"):
        return _CN_DIGITS.get(text[0], 0) * 10
    return _CN_DIGITS.get(text, 0)


def days_and_reason(rest: str) -> tuple[int, str] | None:
    """`3 等配件`, `三天 等配件`, `十天材料未到` → (days, reason); None when no number of days starts it."""
    match = _DAYS.match(rest)
    if not match:
        return None
    return _chinese_number(match.group(1)), match.group(2).strip()
