"""Urgency: is someone's life or property in danger *now* (fire, gas, flooding, someone trapped …)?

Tuned for recall — a false alarm costs a phone call, a missed fire costs far more — but a cue that is
negated (``没有着火``, ``无人员被困``) or hypothetical (``担心会着火``) right before it does not count,
nor does a cue inside a phrase that names a hazard rather than an event (``火灾隐患``, ``消防演练``).

The cues live in the ``[urgent]`` section of the rules file, grouped by the *kind* of emergency, because
the kind decides what the resident is told to do first (fire and gas → 119, violence → 110, a person
hurt → 120, water or electricity → get away and call the property or utility line):

* ``[urgent.<kind>] keywords`` — phrases that are an emergency on their own (``着火``, ``被困``);
* ``[urgent.<kind>] combos`` — concepts that are an emergency together, within a few characters of each
  other, whatever the exact phrase: ``{ all = [["小孩", "孩子"], ["窗外", "阳台外", "窗台"]] }`` makes
  ``有个小孩站在6楼窗台外面`` urgent without that sentence being in any list;
* ``negations`` right before a cue deny the event (the classifier also drops a negated cue from its
  keywords); ``hypotheticals`` (担心, 万一, 以前) make every cue after them in the same clause not urgent,
  without denying it; ``ignore`` lists phrases that contain a cue but are no event;
* ``settled`` says the danger is over (扑灭了, 已经送医院了, 虚惊一场), its cause is found (烧纸, 糊锅) or it
  is how things always are (天天都这样): no cue before it is urgent, nor any after it unless a
  ``reopened`` word (但是, 又) comes between — 火灭了，但是三楼还有人被困 is still urgent. Inside an
  ``ignore`` phrase it settles nothing (有没有着火 asks; 没有着火 tells).

A legacy top-level ``[urgent] keywords`` list is read as the kind ``any``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from nlp.combos import ComboSet
from nlp.matcher import KeywordMatcher
from nlp.normalize import normalize
from nlp.vocabulary import Vocabulary

__all__ = [
    "COMMON_KEYS",
    "Combo",
    "Urgency",
    "UrgencyDetector",
    "default_detector",
    "detect_urgency",
    "urgent_kinds",
]

# Keys of [urgent] that are settings, not kinds of emergency.
COMMON_KEYS = frozenset(
    {
        "negations",
        "hypotheticals",
        "negation_fillers",
        "ignore",
        "settled",
        "reopened",
        "label",
        "boost",
        "keywords",
    }
)
ANY = "any"
_CLAUSE_END = re.compile(r"[，,。.！!？?；;…\s]")
DEFAULT_WITHIN = 10
# A hypothetical's reach when no punctuation ends its clause (voice input runs sentences together).
FEAR_REACH = 16


@dataclass(frozen=True)
class Combo:
    """Words of each group present within `within` characters of each other make `kind` urgent."""

    kind: str
    groups: tuple[tuple[str, ...], ...]
    within: int = DEFAULT_WITHIN


@dataclass(frozen=True)
class Urgency:
    """The urgent cues found (phrases, or ``a+b`` for a combo) and their kinds, in order of appearance."""

    cues: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.cues)


@dataclass(frozen=True)
class UrgencyDetector:
    """Urgent cues with negation handling; `detect` works on normalised text."""

    keywords: tuple[str, ...]
    negations: tuple[str, ...] = ()
    fillers: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    hypotheticals: tuple[str, ...] = ()
    settled: tuple[str, ...] = ()
    reopened: tuple[str, ...] = ()
    kinds: Mapping[str, str] = field(default_factory=dict)  # cue → kind (default: ANY)
    combos: tuple[Combo, ...] = ()
    _cues: KeywordMatcher = field(init=False, repr=False, compare=False)
    _neg: KeywordMatcher = field(init=False, repr=False, compare=False)
    _strict: KeywordMatcher = field(init=False, repr=False, compare=False)
    _ignore: KeywordMatcher = field(init=False, repr=False, compare=False)
    _hyp: KeywordMatcher = field(init=False, repr=False, compare=False)
    _settled: KeywordMatcher = field(init=False, repr=False, compare=False)
    _reopened: KeywordMatcher = field(init=False, repr=False, compare=False)
    _everything: KeywordMatcher = field(init=False, repr=False, compare=False)
    _combo_set: ComboSet[str] = field(init=False, repr=False, compare=False)
    _max_filler: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cues", KeywordMatcher(self.keywords))
        object.__setattr__(self, "_neg", KeywordMatcher(self.negations + self.hypotheticals))
        object.__setattr__(self, "_strict", KeywordMatcher(self.negations))
        object.__setattr__(self, "_ignore", KeywordMatcher(self.ignore))
        object.__setattr__(self, "_hyp", KeywordMatcher(self.hypotheticals))
        object.__setattr__(self, "_settled", KeywordMatcher(self.settled))
        object.__setattr__(self, "_reopened", KeywordMatcher(self.reopened))
        combos = ComboSet([(combo.groups, combo.within, combo.kind) for combo in self.combos])
        object.__setattr__(self, "_combo_set", combos)
        everything = {*self.keywords, *self.negations, *self.hypotheticals, *self.ignore, *combos.words}
        object.__setattr__(self, "_everything", KeywordMatcher(everything))
        object.__setattr__(self, "_max_filler", max((len(f) for f in self.fillers), default=0))

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> UrgencyDetector:
        """Build from a parsed ``[urgent]`` table (validated by the caller; words already normalised)."""
        keywords: list[str] = []
        kinds: dict[str, str] = {}
        combos: list[Combo] = []

        def add(words: Sequence[str], kind: str) -> None:
            for word in words:
                if word not in kinds:
                    kinds[word] = kind
                    keywords.append(word)

        add(section.get("keywords", ()), ANY)
        for kind, table in section.items():
            if kind in COMMON_KEYS or not isinstance(table, Mapping):
                continue
            add(table.get("keywords", ()), kind)
            for combo in table.get("combos", ()):
                groups = tuple(tuple(group) for group in combo["all"])
                combos.append(Combo(kind, groups, int(combo.get("within", DEFAULT_WITHIN))))
        return cls(
            keywords=tuple(keywords),
            negations=tuple(section.get("negations", ())),
            fillers=tuple(section.get("negation_fillers", ())),
            ignore=tuple(section.get("ignore", ())),
            hypotheticals=tuple(section.get("hypotheticals", ())),
            settled=tuple(section.get("settled", ())),
            reopened=tuple(section.get("reopened", ())),
            kinds=kinds,
            combos=tuple(combos),
        )

    def is_cue(self, word: str) -> bool:
        """True when `word` (normalised) is one of the urgent cues."""
        return word in self._cues

    def denied(self, text: str, hits: list[tuple[str, int]]) -> set[str]:
        """Of the (cue, start) `hits` in normalised `text`, the cues that are negated at every
        occurrence (``没有着火``) — hypotheticals (``担心会着火``) do not deny anything."""
        if not hits:
            return set()
        ends = _ends(self._strict.find(text), text)
        if not ends:
            return set()
        negated: dict[str, bool] = {}
        for cue, start in hits:
            negated[cue] = negated.get(cue, True) and self._negated(text, start, ends)
        return {cue for cue, neg in negated.items() if neg}

    def detect(self, text: str) -> tuple[str, ...]:
        """Distinct urgent cues found in already-normalised `text`, in order of appearance."""
        return self.assess(text).cues

    def assess(self, text: str) -> Urgency:
        """The urgent cues and kinds in already-normalised `text`."""
        found_all = self._everything.find(text)  # cues, combo words, negations, ignores: one scan
        hits = [m for m in found_all if m[0] in self._cues]
        combo_hits = [m for m in found_all if m[0] in self._combo_set.words]
        if not hits and not combo_hits:
            return Urgency()
        # An ignore phrase sets aside the cues it contains (火 in 火锅), not one it merely touches
        # (冒白烟 before 烟味道: the smoke is still there).
        covered = [(start, start + len(phrase)) for phrase, start in found_all if phrase in self._ignore]
        negation_ends = _ends([m for m in found_all if m[0] in self._neg], text)
        feared = self._feared_clauses(text, [m for m in found_all if m[0] in self._hyp])
        quiet_until = self._quiet_until(text)

        def live(word: str, start: int) -> bool:
            if start < quiet_until:
                return False
            if any(s <= start and start + len(word) <= e for s, e in covered):
                return False
            if feared and any(s < start <= e for s, e in feared):
                return False
            return not self._negated(text, start, negation_ends)

        found: list[tuple[int, str, str]] = []  # (position, cue, kind)
        seen: set[str] = set()
        for cue, start in hits:
            if cue not in seen and live(cue, start):
                seen.add(cue)
                found.append((start, cue, self.kinds.get(cue, ANY)))
        if combo_hits:
            positions: dict[str, list[int]] = {}
            for word, start in combo_hits:
                if live(word, start):
                    positions.setdefault(word, []).append(start)
            for kind, start, words in self._combo_set.matches(positions):
                name = "+".join(words)
                if name not in seen:
                    seen.add(name)
                    found.append((start, name, kind))
        found.sort(key=lambda item: item[0])
        kinds = tuple(dict.fromkeys(kind for _, _, kind in found))
        return Urgency(tuple(cue for _, cue, _ in found), kinds)

    def _quiet_until(self, text: str) -> int:
        """Where cues may be urgent again after a ``settled`` phrase: at a ``reopened`` word after the
        last one (火灭了，但是…), else never (the end of `text`); 0 when nothing is settled."""
        # An ignore phrase holds no settling either: 有没有着火 asks, 没有着火 tells.
        covered = [(start, start + len(phrase)) for phrase, start in self._ignore.find(text)]
        settled = [
            (phrase, start)
            for phrase, start in self._settled.find(text)
            if not any(s <= start and start + len(phrase) <= e for s, e in covered)
        ]
        if not settled:
            return 0
        after = max(start + len(phrase) for phrase, start in settled)
        return min((start for _, start in self._reopened.find(text) if start >= after), default=len(text))

    def _feared_clauses(self, text: str, hypotheticals: list[tuple[str, int]]) -> list[tuple[int, int]]:
        """(start, end) from each hypothetical word (担心, 万一, 以前 …) to the end of its clause: a cue
        anywhere after it in the clause is feared or past, not happening now."""
        spans = []
        for word, start in hypotheticals:
            end = _CLAUSE_END.search(text, start + len(word), start + len(word) + FEAR_REACH)
            spans.append((start, end.start() if end else min(len(text), start + len(word) + FEAR_REACH)))
        return spans

    def _negated(self, text: str, start: int, negation_ends: dict[int, list[int]]) -> bool:
        if not negation_ends:
            return False
        if start in negation_ends:
            return True
        fillers = self.fillers
        for gap in range(1, self._max_filler + 1):
            if start - gap in negation_ends and text[start - gap : start] in fillers:
                return True
        return False


def _ends(found: list[tuple[str, int]], text: str) -> dict[int, list[int]]:
    ends: dict[int, list[int]] = {}
    for word, start in found:
        ends.setdefault(start + len(word), []).append(start)
    return ends


def _load_default_rules() -> dict[str, Any]:
    raw = resources.files("nlp").joinpath("rules", "default.toml").read_text(encoding="utf-8")
    return tomllib.loads(raw)


def normalised_section(section: Mapping[str, Any]) -> dict[str, Any]:
    """An ``[urgent]`` table with every word in normalised (lower-case) form."""

    def norm(value: Any) -> Any:
        if isinstance(value, str):
            return normalize(value).lower()
        if isinstance(value, list):
            return [norm(v) for v in value]
        if isinstance(value, Mapping):
            return {k: (v if k == "within" else norm(v)) for k, v in value.items()}
        return value

    return {key: norm(value) for key, value in section.items()}


@lru_cache(maxsize=1)
def _defaults() -> tuple[UrgencyDetector, Vocabulary]:
    rules = _load_default_rules()
    return UrgencyDetector.from_section(normalised_section(rules.get("urgent", {}))), Vocabulary(rules)


def default_detector() -> UrgencyDetector:
    """The detector built from the built-in default rules."""
    return _defaults()[0]


def detect_urgency(text: str, detector: UrgencyDetector | None = None) -> tuple[str, ...]:
    """Urgent cues in `text` (any form: it is read as the default rules read it) that are not negated."""
    return (detector or default_detector()).detect(_defaults()[1].read(text))


def urgent_kinds(text: str, detector: UrgencyDetector | None = None) -> tuple[str, ...]:
    """The kinds of emergency in `text` (fire, gas, police, medical …), in order of appearance."""
    return (detector or default_detector()).assess(_defaults()[1].read(text)).kinds
