"""The gate before intake: does a message say what is wrong or what is wanted, or is it chat?

Only a report opens a work order. Greetings, thanks and confirmations, bare digits or punctuation, a lone
emoji or sticker, questions about the bot, chatter and a bare place get a short answer instead. The rules
are a file a community worker can read (``nlp/rules/gate.toml``), and every decision names its reason:
the phrases that made it chat, or the words that made it a report.

The steps, in order (the rules file says the same in Chinese):

1. an urgent cue (the classifier's ``[urgent]`` rules) → a report, always;
2. nothing left once emoji, stickers and punctuation are gone → ``emoji`` / ``punctuation``;
   only digits → ``digits``;
3. chat phrases (per kind) and problem words are found; where they overlap the longer wins;
4. a *done* or *praise* phrase (已经修好了, 通知收到了, 点赞) with no problem word and no turn
   (但是, 还是, 又 …; or an ``after_praise`` word, 就是, right after the praise with a problem after
   it) → ``done`` / ``praise`` — unless what follows the *done* phrase, or the rest beside the praise,
   still scores ``[report] decisive`` for a category (挺好的, 就是草长到膝盖了: the problem is plain;
   灯泡坏了，已经换了: it is over); a *done* phrase followed by 吗 (or 了吗), or by 没 / 未 that is not
   没事 (修好了没？说好昨天来的), asks, and a phrase right after a negation (不得劲, 不像好人) is none;
5. a joke (``[report] jest``: 哈哈, 笑死, 😂) or a story (``stories``: 电视剧里, 【转发】) that is not
   negated (也不提醒大家), with no turn after it (就是 counts as after praise), nothing earnest
   (``earnest``: 麻烦, 能不能, 一个月了) and no category scoring ``jest_score`` (a story: ``decisive``)
   → ``chatter``: 我老公打呼噜吵死了哈哈 tells; 楼上漏水到我家了哈哈 reports;
6. a question put to the staff (``[report] asks``: 请问, 问一下, then a ``questions`` word outside any chat
   phrase: 几点, 有没有, 吗) with no question about the bot unless the staff are named (``staff``) → a
   report: 请问社区食堂几点开饭; without 请问, the staff named and a ``staff_questions`` word after
   them (社区…是哪天啊) → a report;
7. the message minus its chat phrases, places and fillers is empty → the kind of the phrases that
   covered it (``greeting``, ``thanks`` …), or ``place`` when the place is longer;
8. a problem word → a report; else a phone number, a time, a rating or an age and nothing else
   (``[answers]``: 我电话139…, 九点到十一点之间, 3分) → ``confirm``; else a category score ≥
   ``[report] min_score`` in what is left → a report;
9. chat phrases at least as long as what is left of the message, and nothing of a problem → their kind;
   a name and nothing else (张女士, 我叫黄志强) → ``confirm``; a place with at most ``place_rest`` other
   characters → ``place``; a single leftover character, or a subject of small talk (``[kind.chatter]
   topics``: 饺子, 孙子, 麻将) → ``chatter``;
10. anything else → a report: a message we cannot read as chat is never turned away.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from nlp.classifier import Classifier
from nlp.matcher import KeywordMatcher
from nlp.normalize import has_emoji, normalize

__all__ = ["NOT_REPORT_KINDS", "REPORT", "Gate", "GateError", "Verdict", "looks_like_place"]

REPORT = "report"
PHRASE_KINDS = ("greeting", "thanks", "confirm", "done", "praise", "bot", "chatter")
NOT_REPORT_KINDS = (*PHRASE_KINDS, "place", "digits", "emoji", "punctuation")

# A WeChat sticker as text: [微笑], [捂脸], [OK], [表情].
_STICKER = re.compile(r"\[[^\[\]\s]{1,8}\]")
_NOISE = re.compile(r"[\s\W_]+")
_DIGITS = re.compile(r"^[#＃]?\d+$")
_NUM = "0-9零〇一二三四五六七八九十百两"
# Places written the way addresses are, whatever the org file lists: 阳光花园, 东风路128号, 3号楼2单元502.
# A name is two to six characters that are not pronouns, particles or verbs of a sentence.
_NAME_CHAR = r"[^\W\d_我你他她它们的了在不让进到去来是有和跟把被给对向从往这那个就都也还要会能想说看]"
# 和 is "and" inside a sentence but begins many names (和平, 和谐).
_NAME = rf"(?:和[平谐美顺]{_NAME_CHAR}{{0,4}}?|{_NAME_CHAR}{{2,6}}?)"
_LONG_SUFFIX = "小区|新村|花园|家园|花苑|名苑|华庭|山庄|公寓|大厦|广场(?!舞)|公馆|小镇|新城|商城|车库|停车场|家属院|家属区|安置区|宿舍区"
# 社区 and 街道 are often whom the resident writes to (…服务，社区有吗): their names are short.
_UNIT_SUFFIX = "社区|街道办|街道"
_SHORT_SUFFIX = "苑|园|府|城|湾|村|里|庄|居|邸|阁|轩|坊"
_UNIT = rf"(?:[{_NUM}]+\s*(?:号楼|号院|栋|幢|座|单元|号|楼|室|层|期|区|户|门)\s*)+(?:[{_NUM}]{{3,4}})?"
_ESTATE = re.compile(rf"{_NAME}(?:{_LONG_SUFFIX})(?:[{_NUM}]+期)?|{_NAME_CHAR}{{2,3}}(?:{_UNIT_SUFFIX})")
_ROAD = re.compile(rf"{_NAME}(?:大道|路|街|巷|弄)[{_NUM}]+(?:-[{_NUM}]+)?[号弄]?")
_BUILDING = re.compile(_UNIT)
# A junction: 人民路与中山路交叉口, 解放大道和建设路路口.
_JUNCTION = re.compile(
    rf"{_NAME}(?:大道|路|街)(?:与|和|跟|、)?{_NAME}(?:大道|路|街)(?:交叉口|十字路口|丁字路口|路口|交汇处|口)?"
)
# A whole message that is only a place, written any of these ways (桃源居9栋, 解放路, 东城街道).
_GATE = "[东南西北正后侧]门口?"
# A district, county or town before the place (石家庄裕华区东方明珠小区, 西青区大寺镇).
_ADMIN = rf"(?:{_NAME_CHAR}{{2,6}}?(?:省|市|区|县|镇|乡))"
_ONLY_PLACE = re.compile(
    rf"^{_ADMIN}*(?:{_NAME}(?:{_LONG_SUFFIX}|{_UNIT_SUFFIX}|{_SHORT_SUFFIX}|大道|路|街|巷|弄)(?:[{_NUM}]+(?:-[{_NUM}]+)?[号弄期]?)?)?(?:{_UNIT})?(?:{_GATE})?$"
    # 翠苑二区东门, 三巷, 地下车库B2-117
    rf"|^{_NAME_CHAR}(?:{_SHORT_SUFFIX})(?:{_UNIT}|{_GATE})+$|^[{_NUM}]+(?:巷|弄|街|条)$"
    rf"|^(?:{_NAME})?(?:车库|停车场)[a-z]?\d+(?:-\d+)?$"
)


class GateError(ValueError):
    """A gate rules file that cannot be used; one line naming the problem."""


@dataclass(frozen=True)
class Verdict:
    """The gate's decision and its reason."""

    kind: str  # REPORT, or one of NOT_REPORT_KINDS
    reason: tuple[str, ...] = ()  # the phrases or words that decided it

    @property
    def report(self) -> bool:
        return self.kind == REPORT


def _list(data: Mapping[str, Any], where: str, *keys: str) -> list[str]:
    value: Any = data
    for key in keys:
        value = value.get(key, {}) if isinstance(value, Mapping) else None
    if value == {}:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise GateError(f"{where}: {'.'.join(keys)} must be a list of non-empty strings")
    return value


def looks_like_place(text: str) -> list[tuple[int, int]]:
    """Spans of `text` (normalised, without punctuation) written like an address: an estate, a road and
    its number, a building or room — or the whole text when it is nothing but a place."""
    if text and _ONLY_PLACE.match(text):
        return [(0, len(text))]
    spans = []
    for pattern in (_ESTATE, _ROAD, _JUNCTION, _BUILDING):
        spans.extend(m.span() for m in pattern.finditer(text) if m.end() > m.start())
    return spans


class Gate:
    """Decides whether a message is a report; cheap, no I/O."""

    def __init__(
        self, rules: Mapping[str, Any], classifier: Classifier | None = None, where: str = "gate"
    ) -> None:
        unknown = set(rules) - {"settings", "kind", "report", "fillers", "answers"}
        if unknown:
            raise GateError(f"{where}: unknown section {sorted(unknown)[0]!r}")
        kinds = rules.get("kind", {})
        if not isinstance(kinds, Mapping) or set(kinds) - set(PHRASE_KINDS):
            bad = sorted(set(kinds) - set(PHRASE_KINDS)) if isinstance(kinds, Mapping) else ["kind"]
            raise GateError(f"{where}: unknown kind {bad[0]!r}; kinds are {', '.join(PHRASE_KINDS)}")
        self.classifier = classifier
        # Every phrase is read as a message is (好睇 → 好看 by the classifier's variants), or it could
        # never match.
        read = self._read
        self._kind_of: dict[str, str] = {}
        for kind in PHRASE_KINDS:
            for phrase in _list(rules, where, "kind", kind, "phrases"):
                self._kind_of.setdefault(read(phrase), kind)
        place_rest = rules.get("settings", {}).get("place_rest", 2)
        min_score = rules.get("report", {}).get("min_score", 1.5)
        decisive = rules.get("report", {}).get("decisive", 6.0)
        jest_score = rules.get("report", {}).get("jest_score", 4.0)
        if not isinstance(place_rest, int) or isinstance(place_rest, bool) or place_rest < 0:
            raise GateError(f"{where}: settings.place_rest must be a whole number of characters")
        if not isinstance(min_score, int | float) or isinstance(min_score, bool):
            raise GateError(f"{where}: report.min_score must be a number")
        for key, value in (("decisive", decisive), ("jest_score", jest_score)):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise GateError(f"{where}: report.{key} must be a number")
        self.place_rest = place_rest
        self.min_score = float(min_score)
        self.decisive = float(decisive)
        self.jest_score = float(jest_score)
        self._phrases = KeywordMatcher(self._kind_of)
        self._problems = KeywordMatcher(read(w) for w in _list(rules, where, "report", "problems"))
        self._contrary = KeywordMatcher(read(w) for w in _list(rules, where, "report", "contrary"))
        self._after_praise = tuple(read(w) for w in _list(rules, where, "report", "after_praise"))
        # Each word also as written: the raw text is searched too, for the emoji (😂) normalising drops.
        self._jest, self._stories = (
            KeywordMatcher(w for word in _list(rules, where, "report", key) for w in {word, read(word)} if w)
            for key in ("jest", "stories")
        )
        # Subjects of small talk (吃饭, 孙子, 麻将, 天气): with nothing of a problem beside them, chat.
        self._topics = KeywordMatcher(read(w) for w in _list(rules, where, "kind", "chatter", "topics"))
        self._earnest = KeywordMatcher(read(w) for w in _list(rules, where, "report", "earnest"))
        self._asks = KeywordMatcher(read(w) for w in _list(rules, where, "report", "asks"))
        self._questions = KeywordMatcher(read(w) for w in _list(rules, where, "report", "questions"))
        self._staff = KeywordMatcher(read(w) for w in _list(rules, where, "report", "staff"))
        self._staff_questions = KeywordMatcher(
            read(w) for w in _list(rules, where, "report", "staff_questions")
        )
        self._fillers = KeywordMatcher(read(w) for w in _list(rules, where, "fillers", "words"))
        self._answers = _Answers(
            "".join(_list(rules, where, "answers", "surnames")),
            tuple(_list(rules, where, "answers", "compound_surnames")),
            KeywordMatcher(read(w) for w in _list(rules, where, "answers", "titles")),
            KeywordMatcher(read(w) for w in _list(rules, where, "answers", "contact")),
            KeywordMatcher(read(w) for w in _list(rules, where, "answers", "times")),
            KeywordMatcher(read(w) for w in _list(rules, where, "answers", "counts")),
        )

    @classmethod
    def load(cls, path: str | Path | None = None, classifier: Classifier | None = None) -> Gate:
        """The gate of a rules file (None → the built-in ``nlp/rules/gate.toml``)."""
        if path is None:
            raw = resources.files("nlp").joinpath("rules", "gate.toml").read_text(encoding="utf-8")
            where = "gate rules"
        else:
            where = str(path)
            try:
                raw = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise GateError(f"cannot read gate rules {path}: {exc}") from None
        try:
            data = tomllib.loads(raw)
        except tomllib.TOMLDecodeError as exc:
            raise GateError(f"{where}: bad TOML: {exc}") from None
        return cls(data, classifier, where)

    def check(self, text: str, places: Callable[[str], Sequence[tuple[int, int]]] | None = None) -> Verdict:
        """The verdict on `text`. `places` gives the spans of known place names in normalised text."""
        raw = text or ""
        had_sticker = bool(_STICKER.search(raw))
        norm = self._read(_STICKER.sub(" ", raw))
        if self.classifier is not None:
            urgency = self.classifier.urgency.assess(norm)
            if urgency:
                return Verdict(REPORT, urgency.cues)
        core = _NOISE.sub("", norm)
        if not core:
            if had_sticker or has_emoji(raw):
                return Verdict("emoji")
            return Verdict("punctuation")
        if _DIGITS.match(core):
            return Verdict("digits", (core,))
        # Chat phrases and problem words compete for the same characters; the longer one wins
        # (什么时候 is a question, not the chat word 什么; 怎么报修 asks about the bot, not 报修).
        found = [(p, s, self._kind_of[p]) for p, s in self._phrases.find(core)]
        found += [(w, s, REPORT) for w, s in self._problems.find(core)]
        selected = _longest_first(found)
        chat = [(kind, p, s) for p, s, kind in selected if kind != REPORT]
        problems = [p for p, _, kind in selected if kind == REPORT]
        # A turn inside a chat phrase is part of it (又能刷了 is done, not 又).
        in_chat = {i for p, s, kind in selected if kind != REPORT for i in range(s, s + len(p))}
        turns = [(w, s) for w, s in self._contrary.find(core) if s not in in_chat]
        # 解决了吗 asks whether it is over: a question, not a done.
        chat = [c for c in chat if c[0] != "done" or not _asked_after(core, c[2] + len(c[1]))]
        done = [(p, start) for kind, p, start in chat if kind == "done"]
        done_end = max((start + len(p) for p, start in done), default=0)
        # 灯泡坏了，已经换了 is over; 修好了，就是草长到膝盖了 is not: only what follows 'done' counts.
        if done and self._decisive(core[done_end:]):
            done, chat = [], [c for c in chat if c[0] != "done"]
        chat = [c for c in chat if c[0] not in ("praise", "done") or not _negated(core, c[2])]
        polite = [(p, start) for kind, p, start in chat if kind == "praise"]
        turns += self._turns_after(core, polite)
        if polite and self._says_a_problem(core, polite):
            chat = [c for c in chat if c[0] != "praise"]
        asked = self._asked(core, chat, in_chat)
        if asked:
            return Verdict(REPORT, asked)
        problem_after = any(start >= done_end for _, start, kind in selected if kind == REPORT)
        if done and not turns and not problem_after:
            return Verdict("done", tuple(p for p, _ in done))
        praise = [p for kind, p, _ in chat if kind == "praise"]
        if praise and not turns and not problems:
            return Verdict("praise", tuple(praise))
        told = self._told(raw, norm, core, turns)
        if told:
            return Verdict("chatter", told)
        covered = [False] * len(core)
        for _, phrase, start in chat:
            covered[start : start + len(phrase)] = [True] * len(phrase)
        guessed = looks_like_place(core)
        known = list(places(core)) if places else []
        whole = guessed == [(0, len(core))]
        # A name guessed from its shape inside a sentence is no place when it names a problem itself
        # (要涨物业费社区…: 物业费 scores); a whole message that is a place stays one.
        if not whole:
            guessed = [(start, end) for start, end in guessed if self._top(core[start:end]) < self.min_score]
        place_spans = [*guessed, *known]
        # A name guessed from its shape (开证明明天社区) does not hide a problem word inside it; a whole
        # message that is a place, or a place the org file knows, does.
        problem_at = {i for p, s, kind in selected if kind == REPORT for i in range(s, s + len(p))}
        for start, end in guessed:
            for i in range(start, end):
                covered[i] = covered[i] or whole or i not in problem_at
        for start, end in known:
            covered[start:end] = [True] * (end - start)
        residue = "".join(" " if c else ch for ch, c in zip(core, covered, strict=True))
        leftover = _strip(residue, self._fillers).replace(" ", "")
        if not leftover:
            placed = sum(end - start for start, end in place_spans)
            if chat and sum(len(p) for _, p, _ in chat) >= placed:
                return Verdict(_dominant(chat), tuple(p for _, p, _ in chat))
            return Verdict("place")
        if problems:
            return Verdict(REPORT, tuple(dict.fromkeys(problems)))
        answer = self._answers.told(leftover, core)
        if answer:
            return Verdict("confirm", (answer,))
        if self.classifier is not None:
            scores, voters, _ = self.classifier.scores(residue)
            best = max(range(len(scores)), key=scores.__getitem__)
            if scores[best] >= self.min_score and self.classifier.labels[best] != self.classifier.fallback:
                return Verdict(REPORT, tuple(voters.get(best, ())))
        if chat and sum(len(p) for _, p, _ in chat) >= len(leftover):
            return Verdict(_dominant(chat), tuple(p for _, p, _ in chat))
        answer = self._answers.name(leftover, core)
        if answer:
            return Verdict("confirm", (answer,))
        if place_spans and len(leftover) <= self.place_rest:
            return Verdict("place")
        if len(leftover) <= 1:
            return Verdict("chatter", (leftover,))
        topics = self._topics.find(core)
        if topics:
            return Verdict("chatter", tuple(dict.fromkeys(w for w, _ in topics)))
        return Verdict(REPORT, ())

    def _told(self, raw: str, norm: str, core: str, turns: Sequence[tuple[str, int]]) -> tuple[str, ...]:
        """The words that make the message a joke or a story told (哈哈, 电视剧里, 【转发】), or () when
        it is not one: a turn after them, an earnest word, or a problem put plainly enough keeps it a report."""
        if self._earnest.find(core):
            return ()
        emoji = has_emoji(raw)
        top: float | None = None  # the best category score of `core`, computed once when needed
        for matcher, level in ((self._stories, self.decisive), (self._jest, self.jest_score)):
            # Matched with punctuation kept (【转发】) and in the raw text, whose emoji (😂) normalising
            # drops; each at its place in `core`.
            found = [(w, len(_NOISE.sub("", norm[:s]))) for w, s in matcher.find(norm)]
            if emoji:
                found += [(w, len(_NOISE.sub("", self._read(raw[:s])))) for w, s in matcher.find(raw.lower())]
            # 物业也不提醒大家 complains that nobody warned; it tells no story.
            found = [(w, start) for w, start in found if not _negated(core, start)]
            if not found:
                continue
            first = min(start for _, start in found)
            # 吃腻了🤣就是泡沫箱堆到门口: 就是 right after the laugh turns it, as after praise.
            # An emoji is gone from `core`: the turn is looked for from where it stood.
            in_core = [(w if core.startswith(w, start) else "", start) for w, start in found]
            if any(start >= first for _, start in [*turns, *self._turns_after(core, in_core)]):
                continue
            top = self._top(core) if top is None else top
            if top < level:
                return tuple(dict.fromkeys(w for w, _ in found))
        return ()

    def _asked(self, core: str, chat: Sequence[tuple[str, str, int]], in_chat: set[int]) -> tuple[str, ...]:
        """The ask and question words of a question put to the staff (请问…几点), or () — also when the
        question is about the bot (请问你是真人吗; but 社区有人值班不 asks about the staff, ``[report] staff``)
        or its question word is part of a chat phrase (请问在吗)."""
        about_bot = any(kind == "bot" for kind, _, _ in chat)
        # The staff named outside any chat phrase (是社区吗 asks about the bot, 社区…有人值班不 about them).
        staff = [(w, s) for w, s in self._staff.find(core) if not in_chat & set(range(s, s + len(w)))]
        asks = self._asks.find(core)
        questions = self._questions
        if not asks:
            # No 请问, but a plain question about the community (社区是不是有个免费量血压的，是哪天啊)
            if about_bot or not staff:
                return ()
            asks, questions = staff, self._staff_questions
        elif about_bot and not staff:
            return ()
        first = min(start + len(word) for word, start in asks)
        # 请问周末社区办公室有人吗: with the staff named, 有人吗 asks about them, not the greeting.
        chat_span = set() if staff else in_chat
        for word, start in questions.find(core):
            if start >= first and not chat_span & set(range(start, start + len(word))):
                return (asks[0][0], word)
        return ()

    def _turns_after(self, core: str, phrases: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
        """Words that turn a message when they follow praise or a laugh and a problem follows them
        (挺好的，就是草长到膝盖了: 就是 is "but"), though elsewhere they are fillers (那个就是楼道灯;
        挺热的，就是有点干). Only 的, 了 and the like may come between the phrase and the word."""
        found = []
        for phrase, start in phrases:
            at = start + len(phrase)
            while at < len(core) and core[at] in _BETWEEN_PHRASE_AND_TURN:
                at += 1
            for word in self._after_praise:
                rest = core[at + len(word) :]
                if core.startswith(word, at) and (
                    self._problems.find(rest) or self._top(rest) >= self.min_score
                ):
                    found.append((word, at))
        return found

    def _says_a_problem(self, core: str, polite: Sequence[tuple[str, int]]) -> bool:
        """Whether the rest of a message with 挺好 in it still names a problem clearly (a decisive
        category keyword: 草长到膝盖, 巡逻取消了): then the praise does not close it."""
        rest = list(core)
        for phrase, start in polite:
            rest[start : start + len(phrase)] = " " * len(phrase)
        return self._decisive("".join(rest))

    def _top(self, text: str) -> float:
        """The best category score of `text`; -inf when the best is the fallback (其他) or there is no
        classifier, so that no level is reached."""
        if self.classifier is None:
            return -math.inf
        scores, _, _ = self.classifier.scores(text)
        best = max(range(len(scores)), key=scores.__getitem__)
        return -math.inf if self.classifier.labels[best] == self.classifier.fallback else scores[best]

    def _decisive(self, text: str) -> bool:
        """Whether `text` names a category's problem plainly (a score of ``[report] decisive``)."""
        return self._top(text) >= self.decisive

    def _read(self, text: str) -> str:
        if self.classifier is not None:
            return self.classifier.vocabulary.read(text)
        return normalize(text).lower()


_BETWEEN_PHRASE_AND_TURN = "的了啊呀哈啦嘛"
_NUMERAL = re.compile(r"^[\d零〇幺一二三四五六七八九十两百:：\-~～]+$")
_NUMERALS = re.compile(r"[\d零〇幺一二三四五六七八九十两百]+")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_CLOCK = re.compile(r"[\d零〇一二三四五六七八九十两]\s*(?:点|时|:|：)")
_AGE = re.compile(r"^[一二三四五六七八九]?十[一二三四五六七八九]?$")
_NAME_AFTER_SURNAME = 2  # 张 + 建国


@dataclass(frozen=True)
class _Answers:
    """Answers to what the bot asks (a name, a phone number, a time to call, a rating or an age), with
    nothing else said. `leftover` is the message less its chat phrases, places and fillers."""

    surnames: str
    compound_surnames: tuple[str, ...]
    titles: KeywordMatcher
    contact: KeywordMatcher
    times: KeywordMatcher
    counts: KeywordMatcher

    def told(self, leftover: str, core: str) -> str:
        """``电话``, ``时间`` or ``数目`` when `leftover` is only that; else "". Numbers and times are
        never a problem, so this may come before the category scores (身份证后四位 scores 政策咨询)."""
        if not leftover:
            return ""
        rest = _strip(leftover, self.contact).replace(" ", "")
        number = rest[1:] if rest[:1] in self.surnames else rest  # 韩师傅，尾号8826
        if self.contact.find(core) and _NUMERAL.match(number) and len(number) >= 4:
            return "电话"
        beside = _MOBILE.sub("", rest)  # 王,13904517726: a mobile number, perhaps with a name
        if beside != rest and (
            not beside or (len(beside) == 1 and beside in self.surnames) or self.name(beside, beside)
        ):
            return "电话"
        if _CLOCK.search(core) or self.times.find(leftover):
            rest = _strip(leftover, self.times).replace(" ", "")
            if not rest or (_NUMERAL.match(rest) and _CLOCK.search(core)):
                return "时间"
        counted = _strip(leftover, self.counts).replace(" ", "")
        if counted != leftover and _NUMERALS.search(leftover) and not _NUMERALS.sub("", counted):
            return "数目"  # 3分, 四星, 八十二岁
        if _AGE.match(leftover) and core.endswith("了"):
            return "数目"  # 七十八了
        return ""

    def name(self, leftover: str, core: str) -> str:
        """``姓名`` when `leftover` is a name (张女士, 我姓陈, 张建国 written alone, 李秀兰 八十二岁); else ""."""
        given = _strip(leftover, self.contact).replace(" ", "")  # 联系人：郑丽娟
        counted = _NUMERALS.sub("", _strip(given, self.counts).replace(" ", ""))
        alone = leftover == core or given != leftover or counted != given or given[:1] in ("姓", "叫")
        name = counted.lstrip("姓叫")
        compound = next((s for s in self.compound_surnames if name.startswith(s)), "")
        surname = compound or name[:1]
        if not name or (not compound and surname not in self.surnames):
            return ""
        titled = _strip(name, self.titles).replace(" ", "")
        if (counted[0] == "姓" or "姓" in core) and len(name) <= len(surname) + 4:  # 我姓陈，耳东陈
            return "姓名"
        if (
            titled != name
            and len(titled) <= len(surname) + _NAME_AFTER_SURNAME
            and titled.startswith(surname)
        ):
            return "姓名"  # 王女士, 李师傅
        if 1 <= len(name) - len(surname) <= _NAME_AFTER_SURNAME and alone:
            return "姓名"  # 张建国, 欧阳振华
        return ""


_ASKING = ("吗", "么")  # 修好了吗
_ASKING_LAST = ("没", "没有", "未", "不")  # 好了没, ending the message
# 修好了没？等了三天了: 没 or 未 right after a 'done' that ends in 了 asks, with more said after it (the
# punctuation is gone from `core`), unless it is the done itself (修好了没事了).
_ASKING_ON = ("没", "未")
_NOT_ASKING_ON = ("没事", "没问题", "没什么", "没啥", "没得问题", "没有问题", "没有事", "没大碍", "没毛病")
# 不得劲, 不干净了: a negation right before a praise or done phrase makes it a complaint.
_NEGATING = ("不", "没", "不太", "不怎么", "不是很", "没那么", "冇", "不像", "不是")


def _asked_after(core: str, end: int) -> bool:
    """Whether `core` asks a question right at `end` (修好了吗, 好了没, 修好了没？说好昨天来的)."""
    rest = core[end:]
    if rest.removeprefix("了")[:1] in _ASKING or rest in _ASKING_LAST:  # 修好吗, 有人来看过了吗
        return True
    # Only after a 了 (修好了没, not 是我自己没交电费).
    return core[end - 1 : end] == "了" and rest.startswith(_ASKING_ON) and not rest.startswith(_NOT_ASKING_ON)


def _negated(core: str, start: int) -> bool:
    """Whether a negation comes right before `start` (不得劲, 不太靠谱)."""
    return any(core[max(0, start - len(n)) : start] == n for n in _NEGATING)


def _longest_first(found: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Non-overlapping (phrase, start, …) matches, longest first (``谢谢你们``, not ``谢谢`` + ``你们``);
    on a tie the one listed first wins."""
    taken: list[tuple[Any, ...]] = []
    used: set[int] = set()
    for match in sorted(found, key=lambda m: (-len(m[0]), m[1])):
        span = set(range(match[1], match[1] + len(match[0])))
        if span & used:
            continue
        used |= span
        taken.append(match)
    return sorted(taken, key=lambda m: m[1])


def _strip(text: str, fillers: KeywordMatcher) -> str:
    out = list(text)
    for word, start in _longest_first(fillers.find(text)):
        out[start : start + len(word)] = [" "] * len(word)
    return "".join(out)


def _dominant(kinds: list[tuple[str, str, int]]) -> str:
    """The kind whose phrases cover the most characters (the first on a tie)."""
    weight: dict[str, int] = {}
    for kind, phrase, _ in kinds:
        weight[kind] = weight.get(kind, 0) + len(phrase)
    return max(weight, key=lambda k: weight[k])
