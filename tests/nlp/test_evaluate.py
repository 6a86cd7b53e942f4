from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from nlp.classifier import Classifier
from nlp.evaluate import LabelledRow, evaluate, format_report, read_labelled_csv, score_predictions

from .conftest import data_file

LAST_LINE = re.compile(r"^accuracy=\d\.\d{4} macro_f1=\d\.\d{4} n=\d+$")


def test_read_labelled_csv(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(
        "\ufeffid,text,label,urgent\n1,楼道着火了,消防应急,1\n2,垃圾满了,环境卫生,0\n", encoding="utf-8"
    )
    rows = read_labelled_csv(path)
    assert rows == [
        LabelledRow("楼道着火了", "消防应急", True, "1"),
        LabelledRow("垃圾满了", "环境卫生", False, "2"),
    ]


def test_read_without_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text('text,label\n"有逗号,的文本",其他\n', encoding="utf-8")
    assert read_labelled_csv(path) == [LabelledRow("有逗号,的文本", "其他", None, None)]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("text,category\n垃圾,环境卫生\n", "missing column 'label'"),
        ("body,label\n垃圾,环境卫生\n", "missing column 'text'"),
        ("text,label,urgent\n垃圾,环境卫生,yes\n", "urgent must be 0 or 1"),
        ("text,label\n垃圾,\n", "empty label"),
    ],
)
def test_read_errors_are_one_line(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as info:
        read_labelled_csv(path)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        read_labelled_csv(tmp_path / "none.csv")


def test_metrics_by_hand() -> None:
    report = score_predictions(
        gold=["a", "a", "b", "b"],
        predicted=["a", "b", "b", "b"],
        urgent_gold=[True, False, None, True],
        urgent_predicted=[True, True, False, False],
    )
    assert report.n == 4
    assert report.accuracy == 0.75
    metrics = {m.label: m for m in report.per_label}
    assert metrics["a"].precision == 1.0 and metrics["a"].recall == 0.5
    assert metrics["b"].precision == pytest.approx(2 / 3) and metrics["b"].recall == 1.0
    f1_a, f1_b = 2 / 3, 0.8
    assert report.macro_f1 == pytest.approx((f1_a + f1_b) / 2)
    assert report.labels == ("a", "b")
    assert report.confusion == ((1, 1), (0, 2))
    assert report.urgent_precision == 0.5  # 2 predicted among rows with a gold flag, 1 right
    assert report.urgent_recall == 0.5


def test_format_report(classifier: Classifier) -> None:
    rows = [
        LabelledRow("垃圾桶满了没人清运", "环境卫生", False),
        LabelledRow("楼道着火了", "消防应急", True),
        LabelledRow("停水了", "水电燃气", False),
        LabelledRow("你好", "政策咨询", False),
    ]
    report = evaluate(classifier, rows)
    text = format_report(report)
    lines = text.splitlines()
    assert lines[-1] == "accuracy=0.7500 macro_f1=0.7500 n=4"
    assert LAST_LINE.match(lines[-1])
    assert "confusion matrix" in text
    assert "urgency: precision=1.0000 recall=1.0000" in text
    assert any(line.startswith("环境卫生") for line in lines)


def test_format_report_without_urgency() -> None:
    report = score_predictions(["a", "b"], ["a", "a"])
    text = format_report(report)
    assert "urgency" not in text
    assert text.splitlines()[-1] == "accuracy=0.5000 macro_f1=0.3333 n=2"


# Rows of community_dev.csv labelled before issue #10 fixed the conventions: an elderly person who fell at
# home is 养老助残 (urgent), one not seen for days is urgent; the file says 消防应急 / not urgent.
SUPERSEDED = {"邻居家老人摔倒了喊不应，门锁着", "独居的王奶奶好几天没出门了，大家很担心"}


def test_default_rules_on_community_dev(classifier: Classifier) -> None:
    rows = read_labelled_csv(data_file("community_dev.csv"))
    assert len(rows) == 78
    kept = [row for row in rows if row.text not in SUPERSEDED]
    assert len(kept) == 76
    report = evaluate(classifier, kept)
    assert report.accuracy >= 0.95, format_report(report, max_errors=10)
    assert report.urgent_recall == 1.0, format_report(report)
    assert LAST_LINE.match(format_report(report).splitlines()[-1])


# Every development file, each written apart from the rules and scored untouched first (tests/data/README.md);
# tuned on since, so these guard against a rule change that breaks what already works.
DEVELOPMENT = [
    "community_more.csv",
    *(f"community_dev{n}.csv" for n in (*range(2, 20), 22, 24, 25, 26, 28, 29, 31, 32, 34, 35, 38, 39)),
    *(f"community_dev{n}.csv" for n in (40, 41, 43, 44, 45, 47, 48, 49, 51, 52, 53)),
]
# Written to be mostly emergencies (60–75 of 150–160 rows), with labels the writers chose where the
# conventions are silent (a stray dog attacking, a child locked in a car): held to urgency, and to a
# looser accuracy.
EMERGENCIES = [
    "community_dev20.csv",
    "community_dev21.csv",
    "community_dev23.csv",
    "community_dev27.csv",
    "community_dev30.csv",
    "community_dev33.csv",
    "community_dev36.csv",
    "community_dev42.csv",
    "community_dev46.csv",
    "community_dev50.csv",
]


@pytest.mark.parametrize("name", DEVELOPMENT)
def test_default_rules_keep_the_development_files(classifier: Classifier, name: str) -> None:
    report = evaluate(classifier, read_labelled_csv(data_file(name)))
    assert report.accuracy >= 0.95, format_report(report, max_errors=10)
    assert report.macro_f1 >= 0.95, format_report(report)
    assert report.urgent_recall == 1.0, format_report(report, max_errors=10)
    # The issue asks ≥ 0.6; a writer's borderline rows (a scam call in progress, a branch already taped off)
    # keep community_dev9 at 0.82.
    assert (report.urgent_precision or 0.0) >= 0.8, format_report(report, max_errors=10)


@pytest.mark.parametrize("name", EMERGENCIES)
def test_every_emergency_of_the_emergency_sets_is_found(classifier: Classifier, name: str) -> None:
    report = evaluate(classifier, read_labelled_csv(data_file(name)))
    assert report.urgent_recall == 1.0, format_report(report, max_errors=10)
    assert (report.urgent_precision or 0.0) >= 0.9, format_report(report, max_errors=10)
    assert report.accuracy >= 0.8, format_report(report, max_errors=10)


def test_community_dev2_is_as_the_issue_asks() -> None:
    rows = read_labelled_csv(data_file("community_dev2.csv"))
    per_label = Counter(row.label for row in rows)
    assert len(per_label) == 13 and min(per_label.values()) >= 30, per_label
    assert sum(1 for row in rows if row.urgent) >= 40
    assert min(len(row.text) for row in rows) >= 4 and max(len(row.text) for row in rows) <= 80
    assert len({row.text for row in rows}) == len(rows)
