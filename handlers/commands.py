"""The command grammar: how a message is read as a command word, an order number and the rest.

People write `接单 12`, `接单#12`, `接單 ＃１２`, `  进展 12  已联系物业 `; all read the same. A command
with a missing or bad argument carries `error`, a specific Chinese hint saying how to write it.
"""

from __future__ import annotations

import re
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
    "撤销": "撤销",
    "撤回": "撤销",
    "催办": "催办",
    "催单": "催办",
    "绑定": "绑定",
    "待办": "待办",
    "接单": "接单",
    "领单": "领单",
    "进展": "进展",
    "办结": "办结",
    "转派": "转派",
    "退单": "退单",
    "延期": "延期",
    "状态": "状态",
    "列表": "列表",
    "逾期": "逾期",
    "统计": "统计",
    "派单": "派单",
    "督办": "督办",
    "排名": "排名",
    "后台": "后台",
    "指挥中心": "后台",
    "热点": "热点",
    "报到": "报到",
    "双报到": "报到",
    "同意": "同意",
    "拒绝": "拒绝",
}
NEEDS_NUMBER = frozenset(
    {"接单", "领单", "进展", "办结", "转派", "退单", "延期", "评价", "撤销", "催办", "状态", "派单", "督办"}
    | {"同意", "拒绝"}  # a Party member's 报到, by its number
)
NUMBER_NAMES = {"同意": "报到申请号", "拒绝": "报到申请号"}  # what the number is, when not an order's
NEEDS_TEXT = {
    "进展": "进展内容",
    "办结": "办理结果",
    "评价": "满意、基本满意或不满意",
    "转派": "转给哪个网格或哪位同志",
    "派单": "派给哪个网格或哪位同志",
    "退单": "退单原因",
    "延期": "延期天数和原因",
    "报到": "社区名称",
}
EXAMPLES = {
    "接单": "接单 12",
    "领单": "领单 12",
    "进展": "进展 12 已联系物业，明天上门",
    "办结": "办结 12 灯已更换",
    "转派": "转派 12 筱塘社区第二网格",
    "派单": "派单 12 筱塘社区第一网格",
    "退单": "退单 12 不属于本网格",
    "延期": "延期 12 3 等待配件",
    "评价": "评价 12 满意",
    "撤销": "撤销 12",
    "催办": "催办 12",
    "状态": "状态 12",
    "督办": "督办 12",
    "报到": "报到 筱塘社区 第一网格 张三",
    "同意": "同意 3",
    "拒绝": "拒绝 3 不是本社区党员",
}
# Commands that take nothing after the order number (or nothing at all): extra words get a hint.
NO_TEXT = frozenset({"接单", "领单", "撤销", "催办", "状态", "督办", "待办", "逾期", "后台", "热点"})
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


@dataclass(frozen=True)
class Command:
    word: str
    number: int | None = None
    rest: str = ""
    days: int | None = None  # 延期
    error: str | None = None  # set when the command is recognised but written wrongly: how to write it


# Full-width letters, digits and signs → ASCII; Chinese punctuation stays as people wrote it.
_KEEP = set("，。！？：；（）、")
_HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F) if chr(code) not in _KEEP} | {
    0x3000: 0x20
}


def clean(text: str) -> str:
    """Full-width → half-width (but not Chinese punctuation), traditional → simplified, spaces folded."""
    return " ".join(to_simplified(text.translate(_HALF_WIDTH)).split())


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
        return Command(word, error=f"请写上{NUMBER_NAMES.get(word, '工单号')}，例如：{EXAMPLES[word]}")
    if word in NEEDS_TEXT and not rest:
        return Command(word, number, error=f"请写上{NEEDS_TEXT[word]}，例如：{EXAMPLES[word]}")
    if word in NO_TEXT and rest:
        example = EXAMPLES.get(word, word)
        return Command(
            word,
            number,
            error=f"“{word}”后面只需写工单号，例如：{example}"
            if word in NEEDS_NUMBER
            else f"“{word}”后面不用写别的，直接回复“{word}”即可",
        )
    if word == "延期":
        return _extension(number, rest)
    if word == "统计" and rest and rest not in PERIODS:
        return Command(word, error="请写：统计、统计 今日、统计 本周、统计 本月、统计 上周 或 统计 上月")
    if word == "统计":
        return Command(word, rest=PERIODS.get(rest, "本月"))
    return Command(word=word, number=number, rest=rest)


def _extension(number: int | None, rest: str) -> Command:
    match = _DAYS.match(rest)
    days = _chinese_number(match.group(1)) if match else 0
    reason = match.group(2).strip() if match else ""
    if not match or not 1 <= days <= MAX_EXTENSION_DAYS:
        return Command(
            "延期", number, error=f"请写上延期天数（1–{MAX_EXTENSION_DAYS}）和原因，例如：{EXAMPLES['延期']}"
        )
    if not reason:
        return Command("延期", number, error=f"请写上延期原因，例如：{EXAMPLES['延期']}")
    return Command("延期", number, rest=reason, days=days)
