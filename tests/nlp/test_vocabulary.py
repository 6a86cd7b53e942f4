from __future__ import annotations

import pytest

from nlp.classifier import Classifier, RulesError
from nlp.vocabulary import Vocabulary


def test_variants_are_read_as_the_word_they_stand_for() -> None:
    vocabulary = Vocabulary({"variants": {"电题": "电梯", "著火": "着火"}})
    assert vocabulary.read("那个电题坏了") == "那个电梯坏了"
    assert vocabulary.read("樓道著火了") == "楼道着火了"
    assert vocabulary.read("ＡＢ") == "ab"


def test_default_rules_read_speech_recognition_slips(classifier: Classifier) -> None:
    assert classifier.classify("嗯那个电题又停在半层不动了").label == "设施维修"
    assert classifier.classify("那个务业每个月收那么多钱").label == "物业服务"


def _rules(**extra: object) -> dict:
    return {
        "settings": {"fallback": "其他", "min_score": 1.0, "longest_only": True},
        "label": {
            "环境卫生": {"keywords": {"卫生": 2.0, "垃圾": 2.0}},
            "其他": {"keywords": {}},
        },
        **extra,
    }


def test_a_mask_word_hides_the_keywords_inside_it() -> None:
    clf = Classifier(_rules(mask={"words": ["卫生间"]}))
    assert clf.classify("我妈在卫生间").label == "其他"
    assert clf.classify("楼道卫生太差").label == "环境卫生"


def test_a_mask_word_that_is_also_a_keyword_is_refused() -> None:
    with pytest.raises(RulesError, match="mask"):
        Classifier(_rules(mask={"words": ["垃圾"]}))


def test_combos_need_every_group_close_together() -> None:
    rules = _rules()
    rules["label"]["消防应急"] = {
        "keywords": {},
        "combos": [{"all": [["电动车"], ["电梯", "楼道"]], "weight": 3.0, "within": 6}],
    }
    clf = Classifier(rules)
    near = clf.classify("电动车推进电梯")
    assert near.label == "消防应急" and near.keywords == ("电动车+电梯",)
    assert clf.classify("电动车停在外面，很久以后我坐电梯上楼").label == "其他"


@pytest.mark.parametrize(
    "combo",
    [{"all": [["a"]], "weight": 1.0}, {"all": [["a"], []], "weight": 1.0}, {"all": [["a"], ["b"]]}],
)
def test_bad_combos_are_refused(combo: dict) -> None:
    rules = _rules()
    rules["label"]["环境卫生"]["combos"] = [combo]
    with pytest.raises(RulesError, match="combo"):
        Classifier(rules)


def test_combo_words_may_not_overlap() -> None:
    rules = _rules()
    combo = {"all": [["停车"], ["车场", "乱"]], "weight": 2.0}
    rules["label"]["停车交通"] = {"keywords": {}, "combos": [combo]}
    clf = Classifier(rules)
    assert clf.classify("停车场").label == "其他"  # one 车 cannot serve both groups
    assert clf.classify("停车乱").label == "停车交通"
