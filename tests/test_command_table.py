"""Commands declared once: every declared command is in the help of each role that may use it and in
the README's command table, and the table names no command that is not declared."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from handlers.commands import COMMANDS, HELP_ADMIN, HELP_RESIDENT, HELP_STAFF, CommandSpec, Who, spec_of

README = Path(__file__).resolve().parents[1] / "README.md"


def chat_commands_table() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Chat commands") :]
    return section[: section.index("\n## ", 3)]


def helps_of(spec: CommandSpec) -> list[str]:
    if spec.who == Who.RESIDENT:
        return [HELP_RESIDENT]
    if spec.who == Who.STAFF:
        return [HELP_STAFF] + ([HELP_ADMIN] if spec.admins_too else [])
    if spec.who == Who.ADMIN:
        return [HELP_ADMIN]
    return [HELP_RESIDENT] if spec.word != "帮助" else []


@pytest.mark.parametrize("spec", COMMANDS, ids=lambda spec: spec.word)
def test_the_help_of_each_role_lists_its_commands(spec: CommandSpec) -> None:
    for help_text in helps_of(spec):
        assert f"{spec.usage} — {spec.help}" in help_text.splitlines() or any(
            line.endswith(f"{spec.usage} — {spec.help}") for line in help_text.splitlines()
        ), (spec.word, help_text)


def test_no_help_lists_what_its_role_may_not_use() -> None:
    assert "后台 —" not in HELP_STAFF and "接单 号" not in HELP_RESIDENT and "评价 号" not in HELP_STAFF


@pytest.mark.parametrize("help_text", [HELP_RESIDENT, HELP_STAFF, HELP_ADMIN])
def test_each_help_fits_one_reply(help_text: str) -> None:
    assert len(help_text.encode()) <= 2048


@pytest.mark.parametrize("spec", COMMANDS, ids=lambda spec: spec.word)
def test_the_readme_table_has_every_command(spec: CommandSpec) -> None:
    table = chat_commands_table()
    assert f"`{spec.usage.replace('|', chr(92) + '|')}`" in table, spec.usage
    for alias in spec.aliases:
        if re.match(r"^[\u4e00-\u9fff]+$", alias):
            assert f"`{alias}`" in table or alias in ("双报到", "撤回", "催单"), alias


def test_the_readme_table_names_only_declared_commands() -> None:
    rows = [
        line for line in chat_commands_table().splitlines() if line.startswith("| ") and "---" not in line
    ]
    for row in rows[1:]:
        cell = row.split(" | ")[1]
        for written in re.findall(r"`([^`]+)`", cell):
            word = written.split()[0]
            if word.isdigit() or "/" in word:
                continue  # 1/2/3 answering a rating request
            assert spec_of(word) is not None, (word, row)
