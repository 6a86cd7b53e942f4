from __future__ import annotations

import pytest

from nlp.urgency import UrgencyDetector, detect_urgency

URGENT = [
    "楼道着火了",
    "家里煤气泄漏",
    "闻到一股很浓的燃气味",
    "樓道著火了",
    "电梯里困了两个人出不来",
    "地下室被淹了，水还在涨",
    "我家老人摔倒了起不来",
    "快来人啊，有人晕倒了",
    "电动车充电冒烟了",
    "水管爆了，家里淹了",
    "有人触电了",
    "隔壁在吵架还持刀",
    "电梯坏了没人修，被困了半小时",  # 没 negates 人, not 被困
    "着火了！！！🔥🔥",
    # told by what is seen or heard, in voice style and dialect
    "有人正撬对门的锁，我从猫眼儿瞅着呢",
    "隔壁独居的王大爷 刚墙那边咚一声 现在一直在哼哼 敲门不开",
    "我家灶台沒開火，可一股子那味兒，腦袋發暈，我老伴兒都吐了",
    "摸了下楼道的铁扶手 手一麻 好几个人都被电了",
]
NOT_URGENT = [
    "没有着火",
    "并没有人被困",
    "无人员被困，已经处理好了",
    "不是煤气味，是油漆味",
    "担心会着火",
    "楼道堆杂物有火灾隐患",
    "燃气灶打不着火",
    "地很滑，老人容易摔倒",
    "下周小区消防演练",
    "困了想睡觉",
    "垃圾桶满了",
    "",
]


@pytest.mark.parametrize("text", URGENT)
def test_urgent(text: str) -> None:
    assert detect_urgency(text), text


@pytest.mark.parametrize("text", NOT_URGENT)
def test_not_urgent(text: str) -> None:
    assert detect_urgency(text) == (), text


def test_cues_are_reported_distinct_in_order() -> None:
    assert detect_urgency("着火了，着火了，有人被困") == ("着火", "被困")


def test_negation_applies_only_to_the_negated_cue() -> None:
    assert detect_urgency("没有着火，但是有人被困") == ("被困",)


def test_custom_detector() -> None:
    det = UrgencyDetector(keywords=("fire",), negations=("no",), fillers=(" ",))
    assert det.detect("fire!") == ("fire",)
    assert det.detect("no fire") == ()
    assert det.detect("nofire") == ()


def test_hypotheticals_cancel_urgency_but_do_not_deny() -> None:
    det = UrgencyDetector(keywords=("着火",), negations=("没有",), hypotheticals=("担心",))
    assert det.detect("担心着火") == ()
    assert det.detect("没有着火") == ()
    assert det.denied("没有着火", [("着火", 2)]) == {"着火"}
    assert det.denied("担心着火", [("着火", 2)]) == set()
    # denied only when every occurrence is negated
    assert det.denied("没有着火又着火", [("着火", 2), ("着火", 5)]) == set()
    assert det.is_cue("着火") and not det.is_cue("火")


@pytest.mark.parametrize("text", ["万一起火怎么办", "小心摔倒", "差点被困在电梯里"])
def test_default_hypotheticals_are_not_urgent(text: str) -> None:
    assert detect_urgency(text) == (), text


def test_a_settled_danger_is_not_urgent_unless_reopened() -> None:
    det = UrgencyDetector(keywords=("着火", "被困"), settled=("扑灭了",), reopened=("但是",))
    assert det.detect("厨房着火了，扑灭了") == ()
    assert det.detect("扑灭了，楼道里还在着火") == ()  # nothing reopened it
    assert det.detect("厨房着火了，扑灭了，但是三楼还有人被困") == ("被困",)
    assert det.detect("厨房着火了") == ("着火",)


def test_asking_whether_it_is_settled_settles_nothing() -> None:
    det = UrgencyDetector(keywords=("冒烟",), settled=("没有着火",), ignore=("有没有着火",))
    assert det.detect("楼道在冒烟，没有着火") == ()
    assert det.detect("楼道在冒烟，不知道有没有着火") == ("冒烟",)


@pytest.mark.parametrize(
    "text",
    [
        "刚才垃圾桶冒烟 保安已经用水浇灭了",
        "昨晚厨房着火了，好在扑灭了，现在楼道里还一股焦糊味",
        "有人晕倒了，已经送医院了",
        "电梯困人，已经救出来了",
        # the cause found, or how it always is
        "没有着火，就是楼下有人烧纸，烟很大吓我一跳",
        "下水道口那个味道跟臭鸡蛋似的，天天都这样",
        # advice passed on, and a blocked fire lane's "if a fire really broke out"
        "【转】电梯困人怎么自救，建议收藏",
        "消防通道又被几辆车堵死了 真着火了消防车都进不来",
    ],
)
def test_default_settled_phrases(text: str) -> None:
    assert detect_urgency(text) == (), text


def test_a_hypothetical_reaches_only_so_far_without_punctuation() -> None:
    # Voice input runs sentences together: 昨天 reaches its own words, not the fire told after them.
    det = UrgencyDetector(keywords=("着火",), hypotheticals=("昨天",))
    assert det.detect("昨天着火了") == ()
    assert det.detect("昨天下午就打不通电话我下班赶过来敲门屋里着火了") == ("着火",)
