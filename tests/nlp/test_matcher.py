from __future__ import annotations

from nlp.matcher import KeywordMatcher


def test_finds_all_occurrences_in_order() -> None:
    m = KeywordMatcher(["垃圾", "垃圾桶", "清运"])
    assert m.find("垃圾桶满了没人清运垃圾") == [("垃圾桶", 0), ("垃圾", 0), ("清运", 7), ("垃圾", 9)]


def test_boundary_rule() -> None:
    m = KeywordMatcher(["停电", "垃圾", "楼道着火"])
    # straddles 停 | 电动车 with a ragged end → rejected
    assert m.find("停电动车", ["停", "电动车"]) == []
    # inside one token → accepted
    assert m.find("垃圾桶", ["垃圾桶"]) == [("垃圾", 0)]
    # spans whole tokens → accepted
    assert m.find("楼道着火了", ["楼道", "着火", "了"]) == [("楼道着火", 0)]
    # tokens that do not add up to the text are ignored (no filtering)
    assert m.find("停电动车", ["x"]) == [("停电", 0)]


def test_empty() -> None:
    assert KeywordMatcher([]).find("任何文本") == []
    assert len(KeywordMatcher(["a", "", "b"])) == 2
