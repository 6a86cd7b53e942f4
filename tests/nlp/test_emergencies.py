"""Category and urgency are independent, each right; the kind of emergency decides the advice.

Tables of cases per kind of emergency, in simplified and traditional characters and in voice style.
"""

from __future__ import annotations

import pytest

from nlp.classifier import Classifier

# (text, category, the kind of emergency that must be found)
EMERGENCIES = [
    # fire, smoke → 119
    ("楼道着火了", "消防应急", "fire"),
    ("樓道著火了快來人", "消防应急", "fire"),
    ("楼道里全是烟啥都看不清了", "消防应急", "fire"),
    ("那个嗯楼下那个电动车在冒烟啪啪的响", "消防应急", "fire"),
    ("地下车库一股焦糊味不知道哪里烧起来了", "消防应急", "fire"),
    ("车棚那边噼啪响 冒白烟 烟味好冲", "消防应急", "fire"),
    (
        "樓道裡全是白的看不清，我們下不去",
        "消防应急",
        "fire",
    ),  # smoke by its look, and no way down  # 烟味 (someone smoking) touches 冒白烟
    # gas → 119
    ("3号楼有燃气泄漏的味道", "消防应急", "gas"),
    ("聞到一股很重的煤氣味", "消防应急", "gas"),
    ("燃气灶关了还有嘶嘶的声音一股味", "消防应急", "gas"),
    # trapped, a child in danger, someone in the water → 119
    ("大风把树刮倒了，有人被压在下面，快来救人", "绿化园林", "rescue"),
    ("电梯里关着个小孩，按铃半天没人应", "设施维修", "rescue"),
    ("对面阳台有个小朋友坐在空调外机上，家里没大人", "消防应急", "rescue"),
    ("有个小孩站在6楼窗台外面，家里没大人", "消防应急", "rescue"),
    ("对面楼有个小孩爬到阳台栏杆外面去了", "消防应急", "rescue"),
    ("有人被关在电梯里了，在里面拍门", "设施维修", "rescue"),
    ("电梯卡在7楼和8楼中间，我和孩子在里面", "设施维修", "rescue"),
    ("那个电题就是卡在九楼和十楼中间然后我老公在里面出不来", "设施维修", "rescue"),
    ("小区湖边有个小孩掉水里了", "消防应急", "rescue"),
    ("对面有个小孩坐在窗台上腿都伸出去了", "消防应急", "rescue"),
    ("电梯卡在5楼和6楼中间里面有个老人在拍门", "设施维修", "rescue"),
    # violence, a crime going on now → 110
    ("有个醉汉拿着刀在楼下乱挥", "治安安全", "police"),
    ("樓下有兩夥人拿著棍子在打架", "治安安全", "police"),
    ("有人在撬我隔壁的门，现在还在弄", "治安安全", "police"),
    ("隔壁门在那里撬撬撬的声音 他们家没人 现在还在响", "治安安全", "police"),
    ("有个男的抢了我的包往东门跑了", "治安安全", "police"),
    ("有个男的一直跟着我进了单元楼 我躲家里了", "治安安全", "police"),
    ("我爸有老年痴呆，早上出门到现在还没回来", "养老助残", "police"),
    # a person collapsed, hurt, not answering → 120
    ("有人晕倒在小区广场上了，叫不醒", "消防应急", "medical"),
    ("我妈在家摔倒了起不来，我在外地", "养老助残", "medical"),
    ("我媽在浴室裡摔倒了，叫不起來", "养老助残", "medical"),
    ("楼下王奶奶好几天没见出门了，敲门也没人应", "养老助残", "medical"),
    ("我家阿公倒在厨房地上，叫他没反应", "养老助残", "medical"),
    ("停电了，我爸在家用制氧机，快没电了", "水电燃气", "medical"),
    # water, electricity, something giving way → leave, then the property or utility line
    ("我家水管爆了，水哗哗往外冒，家里都淹了", "水电燃气", "water"),
    ("地下室主水管破了，水往外喷，车库快淹了", "水电燃气", "water"),
    ("单元门口电表箱里一直在打火花", "水电燃气", "power"),
    ("地库的水一直往上涨，快到配电箱了", "水电燃气", "water"),
    ("那个一开门水已经漫到门口了管子还在哗哗的", "水电燃气", "water"),
    ("外墙瓷砖正在往下掉，楼下还有人走", "设施维修", "structure"),
    ("路中间井盖没了，就一个黑窟窿", "设施维修", "structure"),
    ("楼下那棵大树正在往下倒，底下停着好几辆车", "绿化园林", "structure"),
    # a crash, the lights out at a junction, a child in the road → 122
    ("路口的红绿灯全灭了车都乱成一团了", "停车交通", "traffic"),
    ("有个小朋友跑到马路中间去了", "停车交通", "traffic"),
    ("路口刚刚两辆车撞了，有个大爷躺在地上起不来", "停车交通", "medical"),
    ("台风好大，门口那棵樟树的枝干正在往下断，下面还有人", "绿化园林", "structure"),
    # told without the obvious word: a glow and bursting glass, a hot door, a wheelchair in a ditch,
    # a lift named only by its measure word, a neighbour not seen for days, a crash told as 怼一块
    ("对面楼三层窗户里红彤彤的，玻璃在爆", "消防应急", "fire"),
    ("隔壁门缝往外冒黑的，门把手烫手", "消防应急", "fire"),
    ("有个老人连轮椅翻进路边的沟里了，上不来", "养老助残", "rescue"),
    ("2号楼西边那部里面有人一直在拍门", "设施维修", "rescue"),
    ("楼上李奶奶三四天没见出门了，敲门没人应", "养老助残", "medical"),
    ("两辆车在路口怼一块了，司机坐地上起不来", "停车交通", "traffic"),
    ("樓下那個垃圾桶著了，火苗竄得老高", "消防应急", "fire"),
    ("隔壁王大娘三天没见着了敲门也不应", "养老助残", "medical"),
    ("嗯那个三楼小孩扒着窗户往外爬大人不在家", "消防应急", "rescue"),
]


@pytest.mark.parametrize(("text", "category", "kind"), EMERGENCIES)
def test_emergency_kind_and_category(classifier: Classifier, text: str, category: str, kind: str) -> None:
    result = classifier.classify(text)
    assert result.urgent, result
    assert kind in result.urgent_kinds, result
    assert result.label == category, result


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("我家水管爆了", "水电燃气"),
        ("我家老人在家摔倒了", "养老助残"),
        ("电梯里困了一个人", "设施维修"),
        ("救命啊", "其他"),  # an urgency cue alone never decides the category
    ],
)
def test_an_urgency_cue_never_decides_the_category(classifier: Classifier, text: str, category: str) -> None:
    result = classifier.classify(text)
    assert result.urgent and result.label == category, result


NOT_NOW = [
    "担心楼道里的电动车会着火",
    "以前着过火的那个车棚现在又停满了电动车",
    "没有人受伤，但是昨天那个车棚烧了一半",
    "楼道灯坏了，老人晚上下楼容易摔倒",
    "小区的草两个月没剪了，长到膝盖那么高",
    "电梯按钮按了没反应",
    "楼上有人往下扔东西，差点砸我头上",
    "下周小区消防演练",
    "没有着火，只是烧烤味",
    "燃气卡插进表里没反应，一直没气",  # a card that does nothing is no person who does not answer
    "上礼拜电箱冒过火花，现在想再请人查查",
    "消防通道被堵了，真有点啥事车都进不来",
    "门口地上黏糊糊的，一股馊味",
    "消防通道又被堵了，真有事消防车都进不来",
    "隔壁的猫天天翻到我家阳台",  # a habit, not a break-in now
    "我爸失智，常常自己走出去找不到路，社区有防走失手环吗",
    "楼顶加盖的砖掉下来咋办",  # a worry put after the danger
    "楼下香樟树上的虫子掉下来了",
    "楼上的抽烟，我家晾的被子全是烟味",
    "那根电缆垂得快碰到地了，前两天还闪过一下火花",
    # a habit of the weather, a feeling that comes back, a denied cry, a branch lying since yesterday
    "那棵树刮风的时候一直晃，好吓人",
    "晚上回家总觉得有人跟着我，有点害怕",
    "不是有人喊救命，是楼上在看恐怖片",
    "昨天刮断的树枝横在路上，到现在没人收拾",
    "燃气公司来查了说没事，现在闻不到了",
    "灶台边的油着了，我拿锅盖盖灭了",
    "垃圾桶以前老冒烟，想问能不能换个铁的",
    # 一直在打 is a fight only when it is people: cards, mahjong, sweeping, spraying are not
    "楼下那几个人一直在打麻将",
    "保洁阿姨一直在打扫楼梯",
    "绿化带一直在打药，味道好大",
    # wind through a door, a boiler chimney's smoke, a vine at a window, a manhole gone on a quiet lane
    "单元门坏了，冷风往楼道里灌",
    "锅炉房烧煤冒黑烟，衣服都熏黑了",
    "邻居的瓜藤都爬到我家窗户上了",
    "巷子里井盖不见了，晚上黑乎乎的",
    "燃气灶火苗很小，烧壶水要半天",
    "楼道里堆满纸箱，一点火星子就完了",
    "刚才有点煤气味，开窗以后又莫得了",
]


@pytest.mark.parametrize("text", NOT_NOW)
def test_danger_in_the_past_feared_or_denied_is_not_urgent(classifier: Classifier, text: str) -> None:
    assert not classifier.classify(text).urgent, classifier.classify(text)


def test_the_reason_names_the_words_of_a_combo(classifier: Classifier) -> None:
    result = classifier.classify("有人把电瓶车推到电梯里了")
    assert result.label == "消防应急"
    assert any("+" in word and "电瓶车" in word for word in result.keywords), result
