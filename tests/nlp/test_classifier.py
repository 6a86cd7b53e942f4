from __future__ import annotations

from pathlib import Path

import pytest

from nlp.classifier import Classification, Classifier, Rule, RulesError

LABELS = (
    "环境卫生", "物业服务", "设施维修", "停车交通", "噪音扰民", "治安安全", "消防应急",
    "违章搭建", "邻里纠纷", "养老助残", "政策咨询", "水电燃气", "绿化园林", "其他",
)  # fmt: skip

# Messages written for these tests (not taken from the dev data), one table row per case.
CASES = [
    ("垃圾站旁边堆了好多天的垃圾，臭气熏天", "环境卫生"),
    ("单元门口有一滩呕吐物没人清理", "环境卫生"),
    ("河道里漂着很多塑料袋和死鱼", "环境卫生"),
    ("小区里到处是小广告，贴满了电线杆", "环境卫生"),
    ("楼下的化粪池满了往外冒", "环境卫生"),
    ("物业公司不给开发票", "物业服务"),
    ("物业经理态度很差，还骂业主", "物业服务"),
    ("业委会选举不公开，要求公示账目", "物业服务"),
    ("单元门的锁坏了关不上", "设施维修"),
    ("楼梯扶手断了，老人上下楼不安全", "设施维修"),
    ("小区路灯晚上不亮已经一周", "设施维修"),
    ("下水道堵了，污水漫到路面", "环境卫生"),  # sewage on the road: a sanitation job
    ("电梯经常卡住，按钮失灵", "设施维修"),
    ("小区门口天天有人乱停车，堵住出口", "停车交通"),
    ("外卖电瓶车在人行道上横冲直撞", "停车交通"),
    ("路口没有斑马线，过马路太危险", "停车交通"),
    ("有人用地锁占公共车位", "停车交通"),
    ("隔壁KTV每天晚上唱到一两点", "噪音扰民"),
    ("楼上小孩天天跑跳，咚咚响", "噪音扰民"),
    ("工地半夜还在施工，吵得睡不着", "噪音扰民"),
    ("楼下的狗整晚叫个不停", "噪音扰民"),
    ("小区里有人偷快递", "治安安全"),
    ("有个男的在小区门口尾随女生", "治安安全"),
    ("晚上有一群人在巷子里打架", "治安安全"),
    ("我家门锁被撬了，家里被翻过", "治安安全"),
    ("三楼阳台冒出大火，快来人", "消防应急"),
    ("楼道里有人飞线给电瓶车充电", "消防应急"),
    ("消防栓里面是空的，没有水", "消防应急"),
    ("电梯里困了两个人出不来", "设施维修"),  # category and urgency are independent
    ("电动车在楼道里充电起火了", "消防应急"),
    ("楼下住户把花园围起来建了个小屋", "违章搭建"),
    ("对面楼顶搭了一个铁皮房", "违章搭建"),
    ("一楼商户私自打通承重墙开店", "违章搭建"),
    ("有人在小区空地上搭了个棚子养鸡", "违章搭建"),
    ("楼上装修把我家墙弄裂了，不愿意赔偿", "邻里纠纷"),
    ("隔壁邻居占了我家门口的位置放杂物，说了不听", "邻里纠纷"),
    ("和邻居因为漏水的事闹矛盾", "邻里纠纷"),
    ("楼下邻居在公共走道晾衣服挡路，和他说了还骂人", "邻里纠纷"),
    ("我爸瘫痪在床，想申请护理补贴", "养老助残"),
    ("社区有没有老年活动中心", "养老助残"),
    ("盲人过马路没有盲道", "养老助残"),
    ("家里老人有老年痴呆，经常走失", "养老助残"),
    ("办理结婚证需要什么材料", "政策咨询"),
    ("请问退休手续在哪里办", "政策咨询"),
    ("孩子的疫苗在哪里打", "政策咨询"),
    ("公租房怎么申请", "政策咨询"),
    ("家里突然没电了，别家都有电", "水电燃气"),
    ("水龙头流出来的水有异味", "水电燃气"),
    ("燃气灶打不着火，是不是停气了", "水电燃气"),
    ("冬天暖气不够热，室温只有十五度", "水电燃气"),
    ("小区的草坪被人踩秃了", "绿化园林"),
    ("树上有马蜂窝，小孩经过很危险", "绿化园林"),
    ("路边的树枯死了好几棵", "绿化园林"),
    ("绿化带里的灌木长到人行道上", "绿化园林"),
    ("谢谢你们的帮助", "其他"),
    ("你好", "其他"),
    ("这个公众号是做什么的", "其他"),
    ("小区垃圾分类点没人管，湿垃圾和干垃圾混在一起", "环境卫生"),
    ("后巷有人随地大小便，臭得不行", "环境卫生"),
    ("楼道墙上被人喷了很多开锁电话", "环境卫生"),
    ("街边早餐店把泔水倒进下水道", "环境卫生"),
    ("物业费收了却不提供服务，要求退费", "物业服务"),
    ("小区门口的保安对业主态度恶劣", "物业服务"),
    ("物业私自把停车费从150涨到300", "物业服务"),
    ("小区儿童滑梯断了一块板子", "设施维修"),
    ("楼顶的水箱漏水，墙面都是水渍", "设施维修"),
    ("马路上的窨井盖不见了", "设施维修"),
    ("货车每天在小区里穿行，孩子很不安全", "停车交通"),
    ("小区停车位太少，晚上回来没地方停", "停车交通"),
    ("公交车改线以后我们这里没有车了", "停车交通"),
    ("隔壁商铺门口的音箱天天放歌", "噪音扰民"),
    ("凌晨三点还有人在楼下大声喧哗", "噪音扰民"),
    ("附近工厂机器轰鸣，晚上都睡不了觉", "噪音扰民"),
    ("楼下有人卖假药骗老人", "治安安全"),
    ("有人冒充燃气公司上门收费", "治安安全"),
    ("车窗被人砸了，东西被拿走了", "治安安全"),
    ("楼道里的灭火器都过期了", "消防应急"),
    ("隔壁房子冒出好多烟，好像着火了", "消防应急"),
    ("有人在楼梯间堆放易燃物品", "消防应急"),
    ("邻居在公共楼道里砌了一道墙，把过道据为己有", "违章搭建"),
    ("小区里有人搭建彩钢房", "违章搭建"),
    ("二楼在外墙上私自加装了一个大铁笼", "违章搭建"),
    ("邻居家漏水到我家，找他不理", "邻里纠纷"),
    ("对门邻居在门口装摄像头对着我家门", "邻里纠纷"),
    ("我奶奶八十多岁了，想找人上门陪护", "养老助残"),
    ("社区能不能帮残疾人申请轮椅", "养老助残"),
    ("孤寡老人冬天家里没有取暖设备", "养老助残"),
    ("请问小孩办医保需要什么资料", "政策咨询"),
    ("新冠疫苗第三针在哪里接种", "政策咨询"),
    ("想了解一下创业补贴政策", "政策咨询"),
    ("今天整个小区都停电了，什么时候来电", "水电燃气"),
    ("家里的电压不稳，灯一闪一闪的", "水电燃气"),
    ("天然气开通要怎么预约", "水电燃气"),
    ("小区的樟树长虫了，叶子都被吃光了", "绿化园林"),
    ("台风把绿化带的小树吹歪了", "绿化园林"),
    ("请安排人来修剪一下楼前的树", "绿化园林"),
    # told in regional words: 梯坎 (steps), 扫楼的 (the cleaner), a bin 冒尖 (heaped over)
    ("后面那段梯坎烂了好几级，晚上走怕摔", "设施维修"),
    ("我们楼扫楼的阿姨半个月没见着了", "物业服务"),
    ("楼下垃圾桶冒尖了也没人动", "环境卫生"),
    ("院子里的紫荆花瓣落得满地都是", "绿化园林"),
    # what is told by its effect or its kind: litter strewn, a loudspeaker, firecrackers as noise,
    # a hole people slip through, a balcony pushed out, a stair sealed with bricks, an elderly allowance
    ("广场上瓜子壳饮料瓶扔得满地，没人管", "环境卫生"),
    ("卖水果的扩音器从早喊到晚", "噪音扰民"),
    ("开业放鞭炮放了一上午", "噪音扰民"),
    ("后墙破了个缺口，半夜总有人钻进来", "治安安全"),
    ("楼下那户把阳台往外推了半米", "违章搭建"),
    ("有人拿砖头把天台门封死了", "违章搭建"),
    ("老年津贴去哪里办，要带身份证吗", "养老助残"),
    ("我爸耳背，社区有没有助听器可以领", "养老助残"),
    ("地下室总水阀一直滴", "水电燃气"),
    ("花坛里的月季被人拔了种菜", "绿化园林"),
    ("锅炉房烟囱天天冒黑烟，阳台都是黑灰", "环境卫生"),
    ("后院空地被人拿铁丝网圈起来了", "违章搭建"),
    ("又跳闸了，整栋楼黑漆漆的", "水电燃气"),
    ("有人在我家门上泼了红油漆", "治安安全"),
    ("对门天天跟我们家吵，骂得很难听", "邻里纠纷"),
    ("楼上装空调在我家墙上打了个洞", "邻里纠纷"),
    ("外面的车天天堵在小区门口", "停车交通"),
    ("新能源车位老是被油车占着", "停车交通"),
    ("出租屋电线乱拉，电动车都推进屋充电", "消防应急"),
    ("楼下那辆僵尸车停了一年没人挪", "停车交通"),
    ("物业电话打了一上午都无人接", "物业服务"),
    ("隔壁老是占我家车位", "邻里纠纷"),
    ("广场上两拨跳舞的阿姨差点打起来", "邻里纠纷"),
    ("路口那块烂台阶上又有人摔倒了", "设施维修"),
    ("一到夏天白蚁就往屋里飞", "环境卫生"),
    ("插座那里噼里啪啦闪蓝光", "水电燃气"),
    ("路口井盖一直往上顶水", "水电燃气"),
    ("楼上漏的水顺着吊灯往下滴", "水电燃气"),
    ("我家进人了，有人在翻抽屉", "治安安全"),
    ("有人装了个地锁把公共车位占了", "停车交通"),
    ("楼上装修半年了，周末也在钻", "噪音扰民"),
    ("饭店烟道上全是油，以前还着过火", "消防应急"),
]


@pytest.mark.parametrize(("text", "label"), CASES)
def test_label_table(classifier: Classifier, text: str, label: str) -> None:
    result = classifier.classify(text)
    assert result.label == label, result


def test_every_label_has_cases() -> None:
    assert {label for _, label in CASES} == set(LABELS)


def test_taxonomy_and_responders(classifier: Classifier) -> None:
    assert classifier.labels == LABELS
    assert classifier.rule("物业服务").responder == "department"
    assert classifier.rule("违章搭建").responder == "community"
    assert classifier.rule("邻里纠纷").responder == "community"
    others = set(LABELS) - {"物业服务", "违章搭建", "邻里纠纷"}
    assert {classifier.rule(label).responder for label in others} == {"grid"}
    assert classifier.rule("水电燃气").resolve == "24h"
    assert isinstance(classifier.rule("环境卫生"), Rule)
    assert classifier.rule("环境卫生").keywords["垃圾"] > 0
    with pytest.raises(KeyError):
        classifier.rule("不存在")


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("樓道裡垃圾很多", "环境卫生"),
        ("電梯壞了三天沒人修", "设施维修"),
        ("隔壁裝修噪音太大", "噪音扰民"),
        ("樓道著火了", "消防应急"),
    ],
)
def test_traditional_characters(classifier: Classifier, text: str, label: str) -> None:
    assert classifier.classify(text).label == label


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("垃圾😡😡😡没人清运！！！！", "环境卫生"),
        ("ＫＴＶ天天唱到半夜", "噪音扰民"),
        ("楼 道 里 的 垃 圾 没 人 清 运", "环境卫生"),
        ("家里停水了麻烦看看吧急急急", "水电燃气"),
        ("小区门口乱停车堵住了路没人管", "停车交通"),
    ],
)
def test_noisy_input(classifier: Classifier, text: str, label: str) -> None:
    assert classifier.classify(text).label == label


def test_word_boundaries_prevent_false_keywords(classifier: Classifier) -> None:
    # 停电 must not be found in 停电动车 (停 / 电动车)
    result = classifier.classify("有人在楼道里停电动车")
    assert "停电" not in result.keywords
    assert result.label != "水电燃气"


def test_nothing_fits_is_other_with_low_confidence(classifier: Classifier) -> None:
    result = classifier.classify("你好，在吗")
    assert result.label == "其他"
    assert result.confidence < 0.5
    assert result.keywords == ()
    assert classifier.classify("").label == "其他"


def test_classification_fields(classifier: Classifier) -> None:
    result = classifier.classify("小区垃圾桶满了没人清运，臭味很大")
    assert isinstance(result, Classification)
    assert result.label == "环境卫生"
    assert 0.5 < result.confidence <= 1.0
    assert {"垃圾桶", "清运"} <= set(result.keywords)
    assert result.urgent is False
    assert result.urgent_keywords == ()
    assert len(result.candidates) == 3
    assert result.candidates[0] == (result.label, result.confidence)
    scores = [score for _, score in result.candidates]
    assert scores == sorted(scores, reverse=True)


def test_urgent_message_is_flagged_and_leans_to_emergency(classifier: Classifier) -> None:
    result = classifier.classify("救命！3楼着火了，楼道全是烟")
    assert result.urgent
    assert result.label == "消防应急"
    assert "着火" in result.urgent_keywords


def test_close_call_offers_candidates(classifier: Classifier) -> None:
    result = classifier.classify("楼上邻居装修太吵了")
    labels = [label for label, _ in result.candidates]
    assert {"噪音扰民", "邻里纠纷"} <= set(labels)


def test_add_words_keeps_place_names_whole(classifier: Classifier) -> None:
    from nlp.segment import segment

    classifier.add_words(["筱塘新村"])
    assert "筱塘新村" in segment("筱塘新村的路灯坏了")
    assert classifier.classify("筱塘新村的路灯坏了").label == "设施维修"


def test_load_custom_rules(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(
        """
[settings]
fallback = "其他"
min_score = 1.0

[label."宠物"]
responder = "grid"
accept = "2h"
keywords = { "狗" = 2.0, "猫" = 2.0 }

[label."其他"]
keywords = {}
""",
        encoding="utf-8",
    )
    clf = Classifier.load(path)
    assert clf.labels == ("宠物", "其他")
    assert clf.rule("宠物").accept == "2h"
    assert clf.classify("楼下的猫半夜叫").label == "宠物"
    assert clf.classify("今天天气不错").label == "其他"
    assert clf.classify("着火了").urgent is False  # no [urgent] section, no cues


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("label = [", "bad TOML"),
        ('[settings]\nfallback = "其他"\n', "no [label"),
        ('[label."a"]\nresponder = "police"\n', "responder"),
        ('[label."a"]\nkeywords = { "x" = "heavy" }\n', "weight of keyword 'x'"),
        ('[label."a"]\nresolve = "soon"\n', "resolve must be a duration"),
        ('[label."a"]\nkeyword = { "x" = 1 }\n', "unknown key 'keyword'"),
        ('[label."a"]\n[settings]\nfallback = "其他"\n', "fallback '其他' is not a label"),
        ('[label."a"]\n[urgent]\nkeywords = "fire"\n', "[urgent] keywords"),
        ('[label."a"]\n[extra]\n', "unknown section 'extra'"),
    ],
)
def test_bad_rules_file_raises_one_line(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RulesError) as info:
        Classifier.load(path)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_missing_rules_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="not found"):
        Classifier.load(tmp_path / "nope.toml")


# A denied event (没有着火) is no evidence for its label; a feared one (担心会着火) still is.
NEGATED_EVENTS = [
    ("没有着火，只是烧烤味", "着火"),
    ("楼道里并没有冒烟，是邻居在熏腊肉", "冒烟"),
    ("不是起火，是有人在烤红薯", "起火"),
    ("已经确认无火灾，只是警报器误报", "火灾"),
    ("沒有著火，只是燒烤的味道", "着火"),  # traditional characters
]


@pytest.mark.parametrize(("text", "cue"), NEGATED_EVENTS)
def test_negated_event_does_not_vote(classifier: Classifier, text: str, cue: str) -> None:
    result = classifier.classify(text)
    assert cue not in result.keywords, result
    assert result.label != "消防应急", result
    assert not result.urgent, result


@pytest.mark.parametrize(
    "text",
    ["楼道堆满纸箱，担心会着火", "电动车在楼道充电，万一起火怎么办", "没有着火，但是楼道又着火了"],
)
def test_feared_or_repeated_event_still_votes(classifier: Classifier, text: str) -> None:
    assert classifier.classify(text).label == "消防应急"


def test_negated_smell_of_barbecue_leans_to_environment(classifier: Classifier) -> None:
    result = classifier.classify("没有着火，只是烧烤味")
    assert result.label in {"其他", "环境卫生"}
    assert result.candidates[0][0] in {"其他", "环境卫生"}


# Lamps: a broken light is a repair job, and the lamp itself is the reason shown to staff.
LAMPS = [
    ("3号楼楼道灯坏了", "楼道灯"),
    ("单元楼里的灯不亮了好几天", "灯不亮"),
    ("走廊的灯泡烧了，晚上黑乎乎的", "灯泡"),
    ("地下车库照明太暗，灯管坏了一半", "灯管"),
    ("小区路灯坏了", "路灯"),
    ("樓道燈壞了", "楼道灯"),
]


@pytest.mark.parametrize(("text", "keyword"), LAMPS)
def test_lamps_are_repairs(classifier: Classifier, text: str, keyword: str) -> None:
    result = classifier.classify(text)
    assert result.label == "设施维修", result
    assert keyword in result.keywords, result
    assert result.confidence >= 0.8, result


def test_lamp_place_names_do_not_weaken_the_match(classifier: Classifier) -> None:
    classifier.add_words(["筱塘新村"])
    result = classifier.classify("筱塘新村3号楼楼道灯坏了")
    assert result.label == "设施维修"
    assert result.keywords[0] == "楼道灯"
    assert result.confidence >= 0.8


def _lead_rules(lead_weight: float) -> dict:
    return {
        "settings": {"lead_weight": lead_weight},
        "label": {"a": {"keywords": {"垃圾": 1.0}}, "b": {"keywords": {"噪音": 1.5}}},
    }


@pytest.mark.parametrize(
    ("text", "lead_weight", "label"),
    [
        ("垃圾没人清 晚上施工有噪音", 0.0, "b"),  # no lead weight: the plain sums win
        ("垃圾没人清 晚上施工有噪音", 2.0, "a"),  # the title's keyword counts three times
        ("垃圾没人清。晚上施工有噪音", 2.0, "a"),  # a first sentence is a lead too
        ("晚上施工有噪音。垃圾没人清", 2.0, "b"),
        ("垃圾没人清有噪音", 2.0, "b"),  # one sentence: no lead, nothing is boosted
    ],
)
def test_lead_weight(text: str, lead_weight: float, label: str) -> None:
    assert Classifier(_lead_rules(lead_weight)).classify(text).label == label


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("路灯不亮 晚上施工", 4),
        ("樓道燈壞了！快修", 5),
        ("一句话没有正文", 0),
        ("标题。", 0),
        (" 开头空格 正文", 4),
    ],
)
def test_lead_length(text: str, length: int) -> None:
    from nlp.classifier import lead_length

    assert lead_length(text) == length


def test_negative_lead_weight_is_refused() -> None:
    with pytest.raises(RulesError, match="lead_weight"):
        Classifier(_lead_rules(-1.0))
