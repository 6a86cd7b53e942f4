from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from nlp.classifier import Classifier, RulesError
from nlp.evaluate import LabelledRow, evaluate, read_labelled_csv
from nlp.train import merge_rules, rules_to_toml, train, write_rules

from .conftest import data_file

SYNTHETIC = [
    ("宠物", "楼下的狗每天乱叫"),
    ("宠物", "邻居家的猫跑到我家阳台"),
    ("宠物", "小区里流浪猫越来越多"),
    ("宠物", "遛狗不拴绳吓到小孩"),
    ("宠物", "有人在花园里喂流浪狗"),
    ("宠物", "狗在电梯里撒尿"),
    ("快递", "快递柜满了放不下包裹"),
    ("快递", "快递员把包裹扔在门口"),
    ("快递", "我的快递被别人拿走了"),
    ("快递", "驿站取包裹排长队"),
    ("快递", "快递车堵在小区门口卸货"),
    ("快递", "包裹丢了驿站不负责"),
    ("学校", "学校门口放学时太拥挤"),
    ("学校", "孩子在学校被同学欺负"),
    ("学校", "学校食堂饭菜不卫生"),
    ("学校", "学校附近有网吧接待学生"),
    ("学校", "放学后没人接孩子"),
    ("学校", "老师布置的作业太多"),
]
ROWS = [LabelledRow(text, label) for label, text in SYNTHETIC]


@pytest.fixture(scope="module")
def learned() -> dict:
    return train(ROWS)


def test_learned_rules_shape(learned: dict) -> None:
    assert set(learned["label"]) == {"宠物", "快递", "学校"}
    assert learned["label"]["宠物"]["responder"] == "grid"
    weights = [w for table in learned["label"].values() for w in table["keywords"].values()]
    assert max(abs(w) for w in weights) == 3.0
    assert learned["label"]["快递"]["keywords"].get("包裹", 0) > 0
    assert learned["label"]["宠物"]["keywords"].get("包裹", 0) <= 0


@pytest.mark.parametrize(
    ("text", "label"),
    [("流浪狗咬人了", "宠物"), ("包裹放在快递柜两天了", "快递"), ("学校门口接孩子的车太多", "学校")],
)
def test_round_trip_classify(learned: dict, tmp_path: Path, text: str, label: str) -> None:
    path = tmp_path / "learned.toml"
    write_rules(learned, path)
    clf = Classifier.load(path)
    assert clf.classify(text).label == label
    assert Classifier(learned).classify(text).label == label


def test_training_rows_are_fitted(learned: dict) -> None:
    assert evaluate(Classifier(learned), ROWS).accuracy == 1.0


def test_written_toml_is_readable_and_equivalent(learned: dict, tmp_path: Path) -> None:
    path = tmp_path / "learned.toml"
    write_rules(learned, path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# gridbot rules")
    assert '[label."宠物".keywords]' in text
    assert tomllib.loads(text)["label"] == learned["label"]


def test_toml_escaping(tmp_path: Path) -> None:
    rules = {"label": {'a"b\\c': {"responder": "grid", "keywords": {'say "hi"': 1.5, "tab\there": -0.5}}}}
    data = tomllib.loads(rules_to_toml(rules))
    assert data["label"]['a"b\\c']["keywords"] == {'say "hi"': 1.5, "tab\there": -0.5}


def test_merge_keeps_hand_weights(classifier: Classifier) -> None:
    learned = {
        "label": {
            "环境卫生": {"responder": "grid", "keywords": {"垃圾": 0.1, "纸屑": 1.2}},
            "宠物": {"responder": "grid", "keywords": {"流浪猫": 2.0}},
        }
    }
    merged = merge_rules(classifier.rules, learned)
    env = merged["label"]["环境卫生"]
    assert env["keywords"]["垃圾"] == classifier.rule("环境卫生").keywords["垃圾"]
    assert env["keywords"]["纸屑"] == 1.2
    assert merged["label"]["物业服务"]["responder"] == "department"
    clf = Classifier(merged)
    assert clf.classify("小区流浪猫太多了").label == "宠物"
    assert clf.classify("楼道着火了").urgent
    assert merged["settings"] == classifier.rules["settings"]


def test_train_with_base_merges(classifier: Classifier) -> None:
    merged = train([(row.text, row.label) for row in ROWS], base=classifier)
    assert {"宠物", "快递", "学校", "环境卫生", "其他"} <= set(merged["label"])
    assert merged["label"]["物业服务"]["keywords"]["物业"] == classifier.rule("物业服务").keywords["物业"]


def test_train_needs_two_labels() -> None:
    with pytest.raises(ValueError, match="two labels"):
        train([("文本", "a"), ("更多文本", "a")])


def test_write_rejects_invalid(tmp_path: Path) -> None:
    with pytest.raises(RulesError):
        write_rules({"label": {}}, tmp_path / "x.toml")
    assert not (tmp_path / "x.toml").exists()


def test_trained_rules_on_teddy_holdout() -> None:
    rows = read_labelled_csv(data_file("teddy2020_dev.csv"))
    train_rows = [r for i, r in enumerate(rows) if i % 5 and i % 3 == 0]  # ~530 rows, fast
    test_rows = [r for i, r in enumerate(rows) if i % 5 == 0][:200]
    clf = Classifier(train(train_rows, top_k=200))
    report = evaluate(clf, test_rows)
    assert set(clf.labels) == {r.label for r in rows}
    # ~530 training rows give ~0.8 accuracy here; full 5-fold CV (bench/nlp.py) gives ~0.87 macro-F1.
    assert report.accuracy >= 0.65


def test_learned_rules_weigh_the_lead(learned: dict, tmp_path: Path) -> None:
    assert learned["settings"]["lead_weight"] == 2.0
    path = tmp_path / "learned.toml"
    write_rules(learned, path)
    assert Classifier.load(path).rules["settings"]["lead_weight"] == 2.0
    assert "lead_weight" not in train(ROWS, lead_weight=0.0)["settings"]
    with pytest.raises(ValueError, match="lead_weight"):
        train(ROWS, lead_weight=-1.0)


def test_merge_does_not_change_hand_settings(classifier: Classifier) -> None:
    merged = train(ROWS, base=classifier)
    assert "lead_weight" not in merged["settings"]
    assert Classifier(merged).classify("小区垃圾桶满了没人清运").label == "环境卫生"


def test_training_is_deterministic() -> None:
    assert train(ROWS, seed=3) == train(ROWS, seed=3)
