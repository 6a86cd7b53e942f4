"""Keyword classifier: a rules file (TOML) of weighted keywords per label, plus urgency cues.

A message is normalised, its known slips rewritten (``[variants]``: 电题 → 电梯), segmented (private
jieba tokenizer), and every keyword of the rules found in it adds its weight to its label's score (each
distinct keyword once). A keyword found inside a longer one (灯 inside 楼道灯) or inside a ``[mask]`` word
(卫生 inside 卫生间, 偷 inside 偷偷) does not count on its own. A label's ``combos`` add their weight when
words of every group occur together (电动车 + 电梯 is a fire risk, not a parking problem).

Category and urgency are independent: urgent cues decide `urgent`, never the label (a legacy rules file
may still give ``[urgent] label`` a ``boost``). A keyword that is itself an urgent cue does not vote when
the message negates it (``没有着火`` is not a fire report: see ``[urgent] negations``); hypotheticals
(``担心会着火``) still vote for the label, they only cancel urgency.

With ``[settings] lead_weight = β`` (learned rules use it), a keyword that also occurs in the message's
*lead* — its title or first sentence, when more text follows — counts (1 + β) times: the writer of a
long letter puts the subject first. The best label wins if it reaches ``min_score``; otherwise the message gets
the ``fallback`` label (其他). Confidence is the softmax of score / temperature (the fallback competing
with half of ``min_score``), so it is low when nothing fits and when two labels are close.

Hand-written rules (``nlp/rules/default.toml``) and learned ones (``nlp.train``) share the format.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from nlp import segment as _segment
from nlp.combos import ComboSet
from nlp.matcher import KeywordMatcher, on_boundaries
from nlp.normalize import normalize
from nlp.urgency import COMMON_KEYS, Urgency, UrgencyDetector, normalised_section
from nlp.vocabulary import Vocabulary

__all__ = [
    "COMMUNITY",
    "DEPARTMENT",
    "GRID",
    "RESPONDERS",
    "Classification",
    "Classifier",
    "LabelCombo",
    "Rule",
    "RulesError",
    "Vocabulary",
    "default_rules_path",
    "keyword_hits",
    "lead_length",
    "load_rules_dict",
    "validate_rules",
]

# Who handles a label's orders by default: the grid, a department (物业服务 → the property company), or the
# community (违章搭建, 邻里纠纷 mediation). handlers/dispatch.py acts on these.
GRID, DEPARTMENT, COMMUNITY = "grid", "department", "community"
RESPONDERS = (GRID, DEPARTMENT, COMMUNITY)
_DURATION = re.compile(r"^\d+[smhd]$")
_LABEL_KEYS = {"responder", "accept", "resolve", "bias", "keywords", "combos"}
_SETTINGS_KEYS = {"fallback", "min_score", "temperature", "lead_weight", "longest_only"}
_URGENT_LISTS = (
    "keywords",
    "negations",
    "hypotheticals",
    "negation_fillers",
    "ignore",
    "settled",
    "reopened",
)
_KIND_KEYS = {"keywords", "combos"}
_TOP_KEYS = {"settings", "label", "urgent", "meta", "mask", "variants"}
# The lead (title or first sentence) ends at the first space or sentence-ending mark.
_LEAD_END = re.compile(r"[\s。！？!?；;]")


class RulesError(ValueError):
    """A rules file that cannot be used; the message is one line naming the problem."""


@dataclass(frozen=True)
class LabelCombo:
    """Words of every group within `within` characters of each other add `weight` to the label."""

    groups: tuple[tuple[str, ...], ...]
    weight: float
    within: int = 12


@dataclass(frozen=True)
class Rule:
    """One label of the taxonomy."""

    label: str
    responder: str
    accept: str | None
    resolve: str | None
    keywords: dict[str, float] = field(default_factory=dict, hash=False)
    bias: float = 0.0
    combos: tuple[LabelCombo, ...] = ()


@dataclass(frozen=True)
class Classification:
    """The result of classifying one message."""

    label: str
    confidence: float
    urgent: bool
    keywords: tuple[str, ...]  # keywords (and combos, ``a+b``) that voted for `label`, strongest first
    urgent_keywords: tuple[str, ...]  # urgent cues found (after negation)
    candidates: tuple[tuple[str, float], ...]  # top 3 labels with their probability, best first
    urgent_kinds: tuple[str, ...] = ()  # kinds of emergency (fire, gas, police, medical …), first found first


def default_rules_path() -> Path:
    """Path of the built-in default rules file."""
    return Path(str(resources.files("nlp").joinpath("rules", "default.toml")))


def load_rules_dict(path: str | Path | None = None) -> dict[str, Any]:
    """Parse a rules file into a validated dict (None → the built-in default)."""
    if path is None:
        raw = resources.files("nlp").joinpath("rules", "default.toml").read_text(encoding="utf-8")
        where = "default rules"
    else:
        p = Path(path)
        where = str(p)
        try:
            raw = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RulesError(f"rules file not found: {p}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RulesError(f"cannot read rules file {p}: {exc}") from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{where}: bad TOML: {exc}") from None
    validate_rules(data, where)
    return data


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _check_combos(value: Any, ctx: str, *, weighted: bool) -> None:
    if not isinstance(value, list):
        raise RulesError(f"{ctx}: combos must be a list of {{ all = [[…], […]] }} tables")
    for combo in value:
        if not isinstance(combo, Mapping) or set(combo) - {"all", "weight", "within"}:
            raise RulesError(
                f"{ctx}: each combo is {{ all = [[…], […]]{', weight = 2.0' if weighted else ''} }}"
            )
        groups = combo.get("all")
        if not isinstance(groups, list) or len(groups) < 2 or not all(_string_list(g) and g for g in groups):
            raise RulesError(f"{ctx}: a combo needs at least two non-empty word lists in all = […]")
        if weighted and not _number(combo.get("weight")):
            raise RulesError(f"{ctx}: a combo needs a numeric weight")
        within = combo.get("within", 10)
        if not isinstance(within, int) or isinstance(within, bool) or within < 1:
            raise RulesError(f"{ctx}: combo within must be a positive number of characters")


def validate_rules(data: Mapping[str, Any], where: str = "rules") -> None:
    """Raise `RulesError` (one line) unless `data` is a usable rules dict."""
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise RulesError(f"{where}: unknown section {sorted(unknown)[0]!r}")
    labels = data.get("label")
    if not isinstance(labels, Mapping) or not labels:
        raise RulesError(f'{where}: no [label."…"] tables')
    for name, rule in labels.items():
        ctx = f"{where}: label {name!r}"
        if not name.strip():
            raise RulesError(f"{where}: empty label name")
        if not isinstance(rule, Mapping):
            raise RulesError(f"{ctx} must be a table")
        bad = set(rule) - _LABEL_KEYS
        if bad:
            raise RulesError(f"{ctx}: unknown key {sorted(bad)[0]!r}")
        responder = rule.get("responder", GRID)
        if responder not in RESPONDERS:
            raise RulesError(f"{ctx}: responder must be one of {', '.join(RESPONDERS)}, not {responder!r}")
        for key in ("accept", "resolve"):
            value = rule.get(key)
            if value is not None and (not isinstance(value, str) or not _DURATION.match(value)):
                raise RulesError(f'{ctx}: {key} must be a duration like "30m", "24h" or "3d"')
        if "bias" in rule and not _number(rule["bias"]):
            raise RulesError(f"{ctx}: bias must be a number")
        keywords = rule.get("keywords", {})
        if not isinstance(keywords, Mapping):
            raise RulesError(f'{ctx}: keywords must be a table of "word" = weight')
        for word, weight in keywords.items():
            if not word.strip():
                raise RulesError(f"{ctx}: empty keyword")
            if not _number(weight):
                raise RulesError(f"{ctx}: weight of keyword {word!r} must be a number")
        if "combos" in rule:
            _check_combos(rule["combos"], ctx, weighted=True)
    settings = data.get("settings", {})
    if not isinstance(settings, Mapping):
        raise RulesError(f"{where}: [settings] must be a table")
    bad = set(settings) - _SETTINGS_KEYS
    if bad:
        raise RulesError(f"{where}: [settings] unknown key {sorted(bad)[0]!r}")
    fallback = settings.get("fallback")
    if fallback is not None and fallback not in labels:
        raise RulesError(f"{where}: [settings] fallback {fallback!r} is not a label")
    for key in ("min_score", "temperature", "lead_weight"):
        if key in settings and not _number(settings[key]):
            raise RulesError(f"{where}: [settings] {key} must be a number")
    if not isinstance(settings.get("longest_only", False), bool):
        raise RulesError(f"{where}: [settings] longest_only must be true or false")
    if settings.get("lead_weight", 0) < 0:
        raise RulesError(f"{where}: [settings] lead_weight must not be negative")
    if "temperature" in settings and settings["temperature"] <= 0:
        raise RulesError(f"{where}: [settings] temperature must be positive")
    mask = data.get("mask", {})
    if not isinstance(mask, Mapping) or set(mask) - {"words"} or not _string_list(mask.get("words", [])):
        raise RulesError(f'{where}: [mask] must be words = ["…", …]')
    masked = set(mask.get("words", [])) & {w for rule in labels.values() for w in rule.get("keywords", {})}
    if masked:
        raise RulesError(
            f"{where}: [mask] word {sorted(masked)[0]!r} is also a keyword; a mask word never votes"
        )
    variants = data.get("variants", {})
    if not isinstance(variants, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in variants.items()
    ):
        raise RulesError(f'{where}: [variants] must be a table of "written" = "meant"')
    _validate_urgent(data.get("urgent", {}), labels, where)


def _validate_urgent(urgent: Any, labels: Mapping[str, Any], where: str) -> None:
    if not isinstance(urgent, Mapping):
        raise RulesError(f"{where}: [urgent] must be a table")
    for key, value in urgent.items():
        if key in _URGENT_LISTS:
            if not _string_list(value):
                raise RulesError(f"{where}: [urgent] {key} must be a list of non-empty strings")
        elif key == "label":
            if value not in labels:
                raise RulesError(f"{where}: [urgent] label {value!r} is not a label")
        elif key == "boost":
            if not _number(value):
                raise RulesError(f"{where}: [urgent] boost must be a number")
        elif isinstance(value, Mapping):  # a kind of emergency
            ctx = f"{where}: [urgent.{key}]"
            if set(value) - _KIND_KEYS:
                raise RulesError(f"{ctx}: unknown key {sorted(set(value) - _KIND_KEYS)[0]!r}")
            if not _string_list(value.get("keywords", [])):
                raise RulesError(f"{ctx}: keywords must be a list of non-empty strings")
            if "combos" in value:
                _check_combos(value["combos"], ctx, weighted=False)
        else:
            raise RulesError(f"{where}: [urgent] unknown key {key!r}")
    assert set(_URGENT_LISTS) | {"label", "boost"} <= COMMON_KEYS


def lead_length(text: str) -> int:
    """Length, in normalised characters, of the lead of raw `text` (its title or first sentence).

    0 when the message is a single sentence: then there is no lead to weigh more.
    """
    text = text.strip()
    end = _LEAD_END.search(text)
    if end is None or end.start() == 0 or not any(ch.isalnum() for ch in text[end.end() :]):
        return 0
    return len(normalize(text[: end.start()]))


_PLAIN = Vocabulary({})


def keyword_hits(
    matcher: KeywordMatcher,
    text: str,
    *,
    lead_weight: float = 0.0,
    urgency: UrgencyDetector | None = None,
    vocabulary: Vocabulary = _PLAIN,
    longest_only: bool = False,
) -> tuple[str, dict[str, float]]:
    """The read form of `text` and the keywords of `matcher` found in it, each with its multiplier:
    1, or 1 + `lead_weight` when it also occurs in the lead. Keywords inside a longer match or a mask
    word (with `longest_only`), and urgent cues that `urgency` finds negated at every occurrence, are
    left out. Keywords inside a mask word never count.
    Classification and training both use this."""
    norm = vocabulary.read(text)
    found = matcher.find(norm, _segment.segment)
    return norm, _hits(found, norm, text, lead_weight, urgency, vocabulary, longest_only)


def _hits(
    found: list[tuple[str, int]],
    norm: str,
    text: str,
    lead_weight: float,
    urgency: UrgencyDetector | None,
    vocabulary: Vocabulary,
    longest_only: bool,
) -> dict[str, float]:
    """The voting keywords of `found` (boundary-checked matches in `norm`, the read form of `text`)."""
    if vocabulary.mask:
        found = unmasked(found, vocabulary.mask)
    if longest_only:
        found = outermost(found)
    if not found:
        return {}
    denied: set[str] = set()
    if urgency is not None:
        cues = [(kw, start) for kw, start in found if urgency.is_cue(kw)]
        if cues:
            denied = urgency.denied(norm, cues)
    lead = lead_length(text) if lead_weight else 0
    boosted = 1.0 + lead_weight
    hits: dict[str, float] = {}
    for kw, start in found:
        if kw in denied:
            continue
        factor = boosted if start + len(kw) <= lead else 1.0
        if hits.get(kw, 0.0) < factor:
            hits[kw] = factor
    return hits


def unmasked(found: Sequence[tuple[str, int]], mask: frozenset[str]) -> list[tuple[str, int]]:
    """The matches that are not mask words and do not lie inside one (卫生间 hides its 卫生)."""
    spans = [(start, start + len(word)) for word, start in found if word in mask]
    if not spans:
        return list(found)
    return [
        (word, start)
        for word, start in found
        if word not in mask and not any(s <= start and start + len(word) <= e for s, e in spans)
    ]


def outermost(found: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """The matches not lying inside a longer match (楼道灯 hides the 灯 in it)."""
    if len(found) < 2:
        return list(found)
    spans = sorted(((start, start + len(kw)) for kw, start in found), key=lambda s: (s[0], -s[1]))
    kept: list[tuple[str, int]] = []
    for kw, start in found:
        end = start + len(kw)
        if not any(s <= start and end <= e and (e - s) > (end - start) for s, e in spans):
            kept.append((kw, start))
    return kept


class Classifier:
    """Classifies messages with a rules dict; cheap to call from many coroutines (no I/O, no awaits)."""

    def __init__(self, rules: Mapping[str, Any]) -> None:
        validate_rules(rules)
        self._data = rules
        label_tables: Mapping[str, Any] = rules["label"]
        self._rules: dict[str, Rule] = {}
        for name, table in label_tables.items():
            self._rules[name] = Rule(
                label=name,
                responder=table.get("responder", GRID),
                accept=table.get("accept"),
                resolve=table.get("resolve"),
                keywords={str(k): float(v) for k, v in table.get("keywords", {}).items()},
                bias=float(table.get("bias", 0.0)),
                combos=tuple(
                    LabelCombo(
                        tuple(tuple(normalize(w).lower() for w in group) for group in combo["all"]),
                        float(combo["weight"]),
                        int(combo.get("within", 12)),
                    )
                    for combo in table.get("combos", ())
                ),
            )
        self._labels = tuple(self._rules)
        index = {name: i for i, name in enumerate(self._labels)}
        settings = rules.get("settings", {})
        self._fallback: int | None = index.get(settings.get("fallback", ""))
        min_score = settings.get("min_score")
        self._min_score: float | None = float(min_score) if min_score is not None else None
        self._temperature = float(settings.get("temperature", 1.0))
        self._lead_weight = float(settings.get("lead_weight", 0.0))
        self._longest_only = bool(settings.get("longest_only", False))
        self._bias = [self._rules[name].bias for name in self._labels]
        self.vocabulary = Vocabulary(rules)
        votes: dict[str, list[tuple[int, float]]] = {}
        self._weights: list[dict[str, float]] = [{} for _ in self._labels]
        for name, rule in self._rules.items():
            for word, weight in rule.keywords.items():
                if weight:
                    norm = normalize(word).lower()
                    votes.setdefault(norm, []).append((index[name], weight))
                    self._weights[index[name]][norm] = weight
        self._votes = {word: tuple(v) for word, v in votes.items()}
        self._combos = ComboSet(
            [
                (combo.groups, combo.within, (index[name], combo.weight))
                for name, rule in self._rules.items()
                for combo in rule.combos
            ]
        )
        self._matcher = KeywordMatcher(set(self._votes) | self.vocabulary.mask | self._combos.words)
        urgent = rules.get("urgent", {})
        self._urgency = UrgencyDetector.from_section(normalised_section(urgent))
        self._urgent_label: int | None = index.get(urgent.get("label", ""))
        self._urgent_boost = float(urgent.get("boost", 0.0))

    @classmethod
    def load(cls, path: str | Path | None = None) -> Classifier:
        """Load a rules file (None → built-in default rules); raises `RulesError` on a bad file."""
        return cls(load_rules_dict(path))

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    @property
    def rules(self) -> dict[str, Any]:
        """The rules dict this classifier was built from (do not mutate)."""
        return dict(self._data)

    @property
    def fallback(self) -> str | None:
        return None if self._fallback is None else self._labels[self._fallback]

    @property
    def urgency(self) -> UrgencyDetector:
        return self._urgency

    def rule(self, label: str) -> Rule:
        """The rule of `label`; KeyError if the taxonomy has no such label."""
        try:
            return self._rules[label]
        except KeyError:
            raise KeyError(f"unknown label {label!r}") from None

    def add_words(self, words: Iterable[str]) -> None:
        """Keep these words (place names, aliases) as single tokens when segmenting."""
        _segment.add_words(normalize(w) for w in words)

    def warm_up(self) -> None:
        """Load the segmenter now rather than on the first message."""
        _segment.tokenizer()

    def matched_keywords(self, text: str) -> list[str]:
        """Distinct rule keywords found in already-normalised `text` (used by training)."""
        found = [
            m
            for m in self._matcher.find(text, _segment.segment)
            if m[0] in self._votes or m[0] in self.vocabulary.mask
        ]
        found = unmasked(found, self.vocabulary.mask)
        if self._longest_only:
            found = outermost(found)
        return list(dict.fromkeys(kw for kw, _ in found))

    def scores(self, text: str) -> tuple[list[float], dict[int, list[str]], tuple[str, ...]]:
        """Raw per-label scores, the keywords voting for each label, and the urgent cues."""
        scores, voters, urgency = self._score(text)
        return scores, voters, urgency.cues

    def _score(self, text: str) -> tuple[list[float], dict[int, list[str]], Urgency]:
        norm = self.vocabulary.read(text)
        found = self._matcher.find(norm)  # keywords, mask words and combo words in one scan
        votes, mask, combo_words = self._votes, self.vocabulary.mask, self._combos.words
        keywords = on_boundaries([m for m in found if m[0] in votes or m[0] in mask], norm, _segment.segment)
        hits = _hits(
            keywords, norm, text, self._lead_weight, self._urgency, self.vocabulary, self._longest_only
        )
        scores = list(self._bias)
        voters: dict[int, list[str]] = {}
        for word, factor in hits.items():
            for idx, weight in votes[word]:
                scores[idx] += weight * factor
                voters.setdefault(idx, []).append(word)
        if self._combos:
            positions: dict[str, list[int]] = {}
            for word, start in unmasked([m for m in found if m[0] in combo_words or m[0] in mask], mask):
                positions.setdefault(word, []).append(start)
            for (idx, weight), _, words in self._combos.matches(positions):
                scores[idx] += weight
                voters.setdefault(idx, []).append("+".join(words))
        urgency = self._urgency.assess(norm)
        if urgency and self._urgent_label is not None and self._urgent_boost:
            scores[self._urgent_label] += self._urgent_boost
        return scores, voters, urgency

    def classify(self, text: str) -> Classification:
        """Classify one message (any form: it is normalised here)."""
        scores, voters, urgency = self._score(text)
        effective = list(scores)
        best = max(range(len(scores)), key=scores.__getitem__)
        fb = self._fallback
        if fb is not None and self._min_score is not None:
            # Nothing reached min_score → the fallback. In the softmax the fallback competes with
            # half of min_score: low confidence when nothing fits, a "did you mean" list of real labels.
            if best == fb or scores[best] < self._min_score:
                best = fb
            effective[fb] = max(scores[fb], self._min_score / 2)
        t = self._temperature
        top = max(effective)
        exps = [math.exp((s - top) / t) for s in effective]
        total = sum(exps)
        probs = [e / total for e in exps]
        order = sorted(range(len(probs)), key=lambda i: (-probs[i], i))
        candidates = tuple((self._labels[i], round(probs[i], 4)) for i in order[:3])
        weights = self._weights[best]
        keywords = tuple(sorted(voters.get(best, ()), key=lambda w: (-weights.get(w, 2.5), w)))
        return Classification(
            label=self._labels[best],
            confidence=round(probs[best], 4),
            urgent=bool(urgency),
            keywords=keywords,
            urgent_keywords=urgency.cues,
            candidates=candidates,
            urgent_kinds=urgency.kinds,
        )
