"""The command grammar: every way people write a command reads the same; bad arguments get a hint."""

from __future__ import annotations

import pytest

from handlers.commands import COMMANDS, Command, parse, spec_of


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("接单 12", Command("接单", 12)),
        ("接单12", Command("接单", 12)),
        ("接单 #12", Command("接单", 12)),
        ("接單 ＃１２", Command("接单", 12)),
        ("  接单   12  ", Command("接单", 12)),
        ("进展 12  已联系物业，明天上门 ", Command("进展", 12, "已联系物业，明天上门")),
        ("辦結 3 燈已更換", Command("办结", 3, "灯已更换")),
        ("评价 5 基本满意", Command("评价", 5, "基本满意")),
        ("進度", Command("查询")),
        ("查询 7", Command("查询", 7)),
        ("延期 12 3 等配件", Command("延期", 12, "等配件", days=3)),
        ("延期 12 三天 等配件", Command("延期", 12, "等配件", days=3)),
        ("延期 12 十天 材料未到", Command("延期", 12, "材料未到", days=10)),
        ("转派 5 筱塘社区第二网格", Command("转派", 5, "筱塘社区第二网格")),
        ("列表 待接单 筱塘社区", Command("列表", None, "待接单 筱塘社区")),
        ("统计", Command("统计", None, "本月")),
        ("统计 今天", Command("统计", None, "今日")),
        ("绑定 筱塘新村3号楼", Command("绑定", None, "筱塘新村3号楼")),
        ("HELP", Command("帮助")),
        ("排名", Command("排名", None, "本月")),
        ("排名 上个月", Command("排名", None, "上月")),
    ],
)
def test_commands_read_the_same_however_written(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["筱塘新村垃圾没人收", "进度怎么样了", "你好", "", "   ", "12", "#12"])
def test_other_text_is_not_a_command(text: str) -> None:
    assert parse(text) is None


@pytest.mark.parametrize(
    "spec", [s for s in COMMANDS if s.number and not s.number_optional], ids=lambda s: s.word
)
def test_a_missing_number_gets_the_example(spec: object) -> None:
    command = parse(spec.word)  # type: ignore[attr-defined]
    expected = f"请写上{spec.number}，例如：{spec.example}"  # type: ignore[attr-defined]
    assert command is not None and command.error == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("办结 3", "请写上办理结果"),
        ("进展 3", "请写上进展内容"),
        ("退单 3", "请写上退单原因"),
        ("转派 3", "请写上转给哪个网格或哪位同志"),
        ("延期 3", "请写上延期天数和原因"),
        ("延期 3 99 太久", "请写上延期天数（1–30）和原因"),
        ("延期 3 2", "请写上延期原因"),
        ("统计 明年", "请写：统计，或 统计 今日"),
        ("排名 本周", "请写：排名，或 排名 本月"),
        ("接单 12 13", "“接单”后面只需写工单号，例如：接单 12"),
        ("接单 12 马上去", "“接单”后面只需写工单号"),
        ("待办 全部", "“待办”后面不用写别的"),
    ],
)
def test_bad_arguments_get_a_specific_hint(text: str, hint: str) -> None:
    command = parse(text)
    assert command is not None and command.error is not None and command.error.startswith(hint)


def test_every_word_and_alias_reads_as_its_command() -> None:
    for spec in COMMANDS:
        for word in spec.words:
            assert spec_of(word) is spec
            command = parse(spec.example or word)
            assert command is not None and command.word == spec.word
