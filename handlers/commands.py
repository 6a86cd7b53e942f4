"""Every chat command, declared once: its words, who may use it, its arguments and their hints, its
one-line help and its handler.

The dispatcher routes commands by this table (`run`), `parse` reads them by it, and each role's `帮助`
is built from it, so the help cannot disagree with what is accepted. A command from someone its `who`
does not admit gets a polite refusal (staff typing a resident's command get their own help); a command
written wrongly gets the hint of its first missing or wrong part, but only from someone who may use it.
Unit scope — which orders a person may act on — is the `access` rule of the command, applied when its
number is looked up (`handlers.staff.load_order`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from handlers import admin, hotspots, registration, resident, staff, texts
from handlers.access import claims, may_oversee, may_work_on, owns, works_or_oversees
from handlers.context import Context, Speaker
from handlers.grammar import MAX_EXTENSION_DAYS, PERIODS, Command, days_and_reason, split
from storage.models import WorkOrder

__all__ = [
    "COMMANDS",
    "HELP_ADMIN",
    "HELP_RESIDENT",
    "HELP_STAFF",
    "MAX_EXTENSION_DAYS",
    "Command",
    "CommandSpec",
    "Who",
    "help_for",
    "help_reply",
    "parse",
    "run",
    "spec_of",
]

Handler = Callable[[Context], Awaitable[str | None]]
Access = Callable[[Context, WorkOrder], bool]


class Who(StrEnum):
    """Who may use a command."""

    ANYONE = "anyone"
    RESIDENT = "resident"  # residents; staff who type it get their own help
    STAFF = "staff"  # everyone listed in the org file (grid staff, departments, admins)
    ADMIN = "admin"  # community, street and district admins


@dataclass(frozen=True)
class CommandSpec:
    word: str
    who: Who
    usage: str  # how it is written, as help and the README show it
    help: str  # one line
    handler: Handler
    aliases: tuple[str, ...] = ()
    number: str | None = None  # what the number after the word names, when it takes one
    number_optional: bool = False  # the number may be left out (查询 alone: my recent orders)
    text: str | None = None  # what must follow the number, when something must
    no_text: bool = False  # nothing may follow
    example: str = ""  # a correct use, for the hints
    access: Access | None = None  # who may act on the order the number names (unit scope)
    admins_too: bool = False  # a staff command also listed in the admins' help
    reads: Callable[[Command], Command] | None = None  # arguments read further (days, a period)

    @property
    def words(self) -> tuple[str, ...]:
        return (self.word, *self.aliases)

    def admits(self, speaker: Speaker) -> bool:
        if self.who == Who.ADMIN:
            return speaker.is_admin
        if self.who == Who.STAFF:
            return speaker.is_staff
        if self.who == Who.RESIDENT:
            return not speaker.is_staff
        return True


def _extension(command: Command) -> Command:
    """延期 号 天数 原因: 1–30 days, then why."""
    example = "延期 12 3 等待配件"
    read = days_and_reason(command.rest)
    if read is None or not 1 <= read[0] <= MAX_EXTENSION_DAYS:
        return replace(command, error=f"请写上延期天数（1–{MAX_EXTENSION_DAYS}）和原因，例如：{example}")
    days, reason = read
    if not reason:
        return replace(command, error=f"请写上延期原因，例如：{example}")
    return replace(command, rest=reason, days=days)


def _period(default: str, allowed: tuple[str, ...]) -> Callable[[Command], Command]:
    """A period word (今日, 本周, 本月, 上周, 上月 and their other forms), `default` when none is written."""

    def read(command: Command) -> Command:
        if not command.rest:
            return replace(command, rest=default)
        period = PERIODS.get(command.rest)
        if period is None or period not in allowed:
            options = "、".join(f"{command.word} {p}" for p in allowed)
            return replace(command, error=f"请写：{command.word}，或 {options}", rest="")
        return replace(command, rest=period)

    return read


ALL_PERIODS = ("今日", "本周", "本月", "上周", "上月")

# In the order each role's help lists them.
COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "帮助",
        Who.ANYONE,
        "帮助",
        "看可用的指令",
        lambda ctx: _help_reply(ctx),
        aliases=("help", "?", "菜单"),
    ),
    # Residents.
    CommandSpec(
        "查询",
        Who.RESIDENT,
        "查询 [号]",
        "看办理进度（写上号看详情）",
        resident.query,
        aliases=("进度",),
        number="工单号",
        number_optional=True,
    ),
    CommandSpec(
        "评价",
        Who.RESIDENT,
        "评价 号 满意|基本满意|不满意",
        "为办结的工单评价（也可直接回复数字）",
        resident.rate_command,
        number="工单号",
        text="满意、基本满意或不满意",
        example="评价 12 满意",
        access=owns,
    ),
    CommandSpec(
        "撤销",
        Who.RESIDENT,
        "撤销 号",
        "还没人接单时撤销",
        resident.cancel,
        aliases=("撤回",),
        number="工单号",
        no_text=True,
        example="撤销 12",
        access=owns,
    ),
    CommandSpec(
        "催办",
        Who.RESIDENT,
        "催办 号",
        "催一催承办人",
        resident.urge,
        aliases=("催单",),
        number="工单号",
        no_text=True,
        example="催办 12",
        access=owns,
    ),
    CommandSpec("绑定", Who.RESIDENT, "绑定 地址", "记住您住哪，以后不写地址也行", resident.bind),
    CommandSpec(
        "报到",
        Who.ANYONE,
        "报到 社区名 [网格] [姓名]",
        "在职党员到社区报到（双报到）",
        registration.register,
        aliases=("双报到",),
        text="社区名称",
        example="报到 筱塘社区 第一网格 张三",
    ),
    # Grid staff (and everyone else in the org file).
    CommandSpec("待办", Who.STAFF, "待办", "我的待办工单，紧急的在前", staff.todo, no_text=True),
    CommandSpec(
        "接单",
        Who.STAFF,
        "接单 号",
        "接下派给您的工单",
        staff.accept,
        number="工单号",
        no_text=True,
        example="接单 12",
        access=may_work_on,
    ),
    CommandSpec(
        "领单",
        Who.STAFF,
        "领单 号",
        "党员领办本网格还没人接的工单",
        staff.claim,
        number="工单号",
        no_text=True,
        example="领单 12",
        access=claims,
    ),
    CommandSpec(
        "进展",
        Who.STAFF,
        "进展 号 内容",
        "记录进展并告诉居民",
        staff.progress,
        number="工单号",
        text="进展内容",
        example="进展 12 已联系物业，明天上门",
        access=may_work_on,
    ),
    CommandSpec(
        "办结",
        Who.STAFF,
        "办结 号 结果",
        "办好后办结，居民会收到评价邀请",
        staff.resolve,
        number="工单号",
        text="办理结果",
        example="办结 12 灯已更换",
        access=may_work_on,
    ),
    CommandSpec(
        "转派",
        Who.STAFF,
        "转派 号 网格或人",
        "转给本社区的网格或同志",
        staff.transfer,
        number="工单号",
        text="转给哪个网格或哪位同志",
        example="转派 12 筱塘社区第二网格",
        access=works_or_oversees,
        admins_too=True,
    ),
    CommandSpec(
        "退单",
        Who.STAFF,
        "退单 号 原因",
        "不归本网格管，退回社区重新派单",
        staff.return_order,
        number="工单号",
        text="退单原因",
        example="退单 12 不属于本网格",
        access=may_work_on,
    ),
    CommandSpec(
        "延期",
        Who.STAFF,
        "延期 号 天数 原因",
        "延长办结时限（超过 3 天需社区同意）",
        staff.extend,
        number="工单号",
        text="延期天数和原因",
        example="延期 12 3 等待配件",
        access=works_or_oversees,
        admins_too=True,
        reads=_extension,
    ),
    # Admins.
    CommandSpec(
        "状态",
        Who.ADMIN,
        "状态 号",
        "工单详情和时限",
        admin.status,
        number="工单号",
        no_text=True,
        example="状态 12",
        access=may_oversee,
    ),
    CommandSpec(
        "列表",
        Who.ADMIN,
        "列表 [状态] [单位]",
        "我管辖的工单（状态：待派单 待接单 处理中 已退回 待评价 已关闭 全部）",
        admin.list_orders,
    ),
    CommandSpec("逾期", Who.ADMIN, "逾期", "超时工单和未送达的通知", admin.overdue, no_text=True),
    CommandSpec(
        "派单",
        Who.ADMIN,
        "派单 号 网格或人",
        "派给网格或同志",
        admin.dispatch_order,
        number="工单号",
        text="派给哪个网格或哪位同志",
        example="派单 12 筱塘社区第一网格",
        access=may_oversee,
    ),
    CommandSpec(
        "督办",
        Who.ADMIN,
        "督办 号",
        "督促承办人",
        admin.supervise,
        number="工单号",
        no_text=True,
        example="督办 12",
        access=may_oversee,
    ),
    CommandSpec(
        "统计",
        Who.ADMIN,
        "统计 [时段]",
        "三率（时段：今日 本周 本月 上周 上月）",
        admin.stats,
        reads=_period("本月", ALL_PERIODS),
    ),
    CommandSpec(
        "排名",
        Who.ADMIN,
        "排名 [本月|上月]",
        "下级单位排名",
        admin.ranking,
        reads=_period("本月", ("本月", "上月")),
    ),
    CommandSpec("热点", Who.ADMIN, "热点", "问题集中的网格", hotspots.listing, no_text=True),
    CommandSpec(
        "同意",
        Who.ADMIN,
        "同意 号 [网格]",
        "同意党员报到",
        registration.approve,
        number="报到申请号",
        example="同意 3",
    ),
    CommandSpec(
        "拒绝",
        Who.ADMIN,
        "拒绝 号 [原因]",
        "拒绝或撤回党员报到",
        registration.reject,
        number="报到申请号",
        example="拒绝 3 不是本社区党员",
    ),
    CommandSpec(
        "后台",
        Who.ADMIN,
        "后台",
        "指挥中心登录链接",
        admin.dashboard_link,
        aliases=("指挥中心",),
        no_text=True,
    ),
)

_BY_WORD: dict[str, CommandSpec] = {word: spec for spec in COMMANDS for word in spec.words}
assert len(_BY_WORD) == sum(len(spec.words) for spec in COMMANDS), "a command word is declared twice"


def spec_of(word: str) -> CommandSpec | None:
    """The declaration of a command word (canonical or alias, already cleaned), or None."""
    return _BY_WORD.get(word)


def parse(text: str) -> Command | None:
    """The command in this text, or None when it is not one. A command written wrongly carries the
    hint of what to write (`error`)."""
    parts = split(text)
    if parts is None:
        return None
    first, number, rest = parts
    spec = _BY_WORD.get(first)
    if spec is None:
        return None
    word = spec.word
    if spec.number is None and number is not None:  # 列表 3 …: the digits are words, not a number
        rest, number = f"{number} {rest}".strip(), None
    command = Command(word, number, rest, access=spec.access)
    example = spec.example or word
    if spec.number is not None and number is None and not spec.number_optional:
        return replace(command, error=f"请写上{spec.number}，例如：{example}")
    if spec.text is not None and not rest:
        return replace(command, error=f"请写上{spec.text}，例如：{example}")
    if spec.no_text and rest:
        if spec.number is not None:
            return replace(command, error=f"“{word}”后面只需写{spec.number}，例如：{example}")
        return replace(command, error=f"“{word}”后面不用写别的，直接回复“{word}”即可")
    return spec.reads(command) if spec.reads is not None else command


async def run(ctx: Context) -> str | None:
    """The route of every command: the speaker must be admitted, the command well written; then its
    handler answers."""
    assert ctx.command is not None
    spec = _BY_WORD[ctx.command.word]
    if not spec.admits(ctx.speaker):
        if spec.who == Who.ADMIN:
            return texts.ADMIN_ONLY.format(word=spec.word)
        if spec.who == Who.STAFF:
            return texts.STAFF_ONLY.format(word=spec.word)
        return help_for(ctx.speaker)  # staff typing a resident's command
    if ctx.command.error is not None:
        return ctx.command.error
    return await spec.handler(ctx)


def _lines(specs: list[CommandSpec], numbered: bool = False) -> list[str]:
    return [
        (f"{i}. " if numbered else "") + f"{spec.usage} — {spec.help}"
        for i, spec in enumerate(specs, 2 if numbered else 1)
    ]


def _help(audience: Who) -> str:
    if audience == Who.RESIDENT:
        listed = [s for s in COMMANDS if s.who in (Who.RESIDENT, Who.ANYONE) and s.word != "帮助"]
        return "\n".join([texts.HELP_RESIDENT_HEAD, *_lines(listed, numbered=True), texts.HELP_RESIDENT_FOOT])
    if audience == Who.STAFF:
        listed = [s for s in COMMANDS if s.who == Who.STAFF]
        return "\n".join([texts.HELP_STAFF_HEAD, *_lines(listed)])
    listed = [s for s in COMMANDS if s.who == Who.ADMIN] + [s for s in COMMANDS if s.admins_too]
    return "\n".join([texts.HELP_ADMIN_HEAD, *_lines(listed)])


HELP_RESIDENT = _help(Who.RESIDENT)
HELP_STAFF = _help(Who.STAFF)
HELP_ADMIN = _help(Who.ADMIN)


def help_for(speaker: Speaker) -> str:
    """The help of the speaker's role: the commands they may use, each with one line."""
    if speaker.is_admin:
        return HELP_ADMIN
    return HELP_STAFF if speaker.is_staff else HELP_RESIDENT


async def help_reply(ctx: Context) -> str:
    """The speaker's help, as a reply (to 帮助, and to staff writing what is not a command)."""
    return help_for(ctx.speaker)


_help_reply = help_reply
