"""The command grammar: how a message is read as a command word, an order number and the rest.

People write `接单 12`, `接单#12`, `接單 ＃１２`, `  进展 12  已联系物业 `; all read the same. A command
with a missing or bad argument carries `error`, a specific Chinese hint.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from nlp.normalize import to_simplified

# The canonical command words, with the other ways people write them.
ALIASES: dict[str, str] = {
    "帮助": "帮助",
    "help": "帮助",
    "?": "帮助",
    "菜单": "帮助",
    "查询": "查询",
    "进度": "查询",
    "评价": "评价",
    "待办": "待办",
    "接单": "接单",
    "进展": "进展",
    "办结": "办结",
    "状态": "状态",
}
NEEDS_NUMBER = {"接单", "进展", "办结", "评价", "状态"}
NEEDS_TEXT = {"进展": "进展内容", "办结": "办理结果", "评价": "满意、基本满意或不满意"}
EXAMPLES = {
    "接单": "接单 12",
    "进展": "进展 12 已联系物业，明天上门",
    "办结": "办结 12 灯已更换",
    "评价": "评价 12 满意",
    "状态": "状态 12",
}

_WORD = re.compile(r"^([^\s#\d]+)\s*(.*)$", re.DOTALL)
_NUMBER = re.compile(r"^#?\s*(\d{1,9})(?!\d)\s*(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Command:
    word: str
    number: int | None = None
    rest: str = ""
    error: str | None = None  # set when the command is recognised but written wrongly: how to write it


def clean(text: str) -> str:
    """Full-width → half-width, traditional → simplified, spaces folded."""
    text = unicodedata.normalize("NFKC", text)
    return " ".join(to_simplified(text).split())


def parse(text: str) -> Command | None:
    """The command in this text, or None when it is not one."""
    match = _WORD.match(clean(text))
    if not match:
        return None
    word = ALIASES.get(match.group(1).lower())
    if word is None:
        return None
    tail = match.group(2).strip()
    number_match = _NUMBER.match(tail)
    number = int(number_match.group(1)) if number_match else None
    rest = number_match.group(2).strip() if number_match else tail
    if word in NEEDS_NUMBER and number is None:
        return Command(word, error=f"请写上工单号，例如：{EXAMPLES[word]}")
    if word in NEEDS_TEXT and not rest:
        return Command(word, number, error=f"请写上{NEEDS_TEXT[word]}，例如：{EXAMPLES[word]}")
    return Command(word=word, number=number, rest=rest)
