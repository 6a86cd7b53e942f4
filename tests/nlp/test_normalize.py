from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nlp.normalize import normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("樓道裡垃圾很多", "楼道里垃圾很多"),
        ("電梯壞了", "电梯坏了"),
        ("ＡＢＣ１２３", "ABC123"),
        ("＃１２", "#12"),
        ("楼道着火了！！！", "楼道着火了！"),
        ("谢谢。。。。", "谢谢。"),
        ("好的......", "好的."),
        ("垃圾😡😡没人管👍🏻", "垃圾没人管"),
        ("楼道 着火 了", "楼道着火了"),
        ("  hello   world  ", "hello world"),
        ("南门路 12号", "南门路 12号"),
        ("停水了 ，快来", "停水了，快来"),
        ("a\x00b\x07c", "abc"),
        ("第一行\n第二行", "第一行第二行"),
        ("①号楼", "1号楼"),
        ("", ""),
    ],
)
def test_normalize_table(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_chinese_punctuation_is_kept() -> None:
    assert normalize("你好，请问：停水吗？（急）") == "你好，请问：停水吗？（急）"


@given(st.text(max_size=60))
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@given(st.text(max_size=60))
def test_normalize_leaves_no_control_or_edge_space(text: str) -> None:
    out = normalize(text)
    assert out == out.strip()
    assert not any(ord(ch) < 0x20 for ch in out)
