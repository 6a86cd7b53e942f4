"""Urgency: is someone's life or property in danger *now* (fire, gas, flooding, someone trapped …)?

Tuned for recall — a false alarm costs a phone call, a missed fire costs far more — but a cue that is
negated (``没有着火``, ``无人员被困``) or hypothetical (``担心会着火``) right before it does not count,
nor does a cue inside a phrase that names a hazard rather than an event (``火灾隐患``, ``消防演练``).
The cues live in the ``[urgent]`` section of the rules file: ``negations`` deny the event (the
classifier also drops a negated cue from its keywords), ``hypotheticals`` only make it not urgent.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from nlp.matcher import KeywordMatcher
from nlp.normalize import normalize

__all__ = ["UrgencyDetector", "default_detector", "detect_urgency"]


@dataclass(frozen=True)
class UrgencyDetector:
    """Urgent cues with negation handling; `detect` works on normalised text."""

    keywords: tuple[str, ...]
    negations: tuple[str, ...] = ()
    fillers: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    hypotheticals: tuple[str, ...] = ()
    _cues: KeywordMatcher = field(init=False, repr=False, compare=False)
    _neg: KeywordMatcher = field(init=False, repr=False, compare=False)
    _strict: KeywordMatcher = field(init=False, repr=False, compare=False)
    _ignore: KeywordMatcher = field(init=False, repr=False, compare=False)
    _max_filler: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cues", KeywordMatcher(self.keywords))
        object.__setattr__(self, "_neg", KeywordMatcher(self.negations + self.hypotheticals))
        object.__setattr__(self, "_strict", KeywordMatcher(self.negations))
        object.__setattr__(self, "_ignore", KeywordMatcher(self.ignore))
        object.__setattr__(self, "_max_filler", max((len(f) for f in self.fillers), default=0))

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> UrgencyDetector:
        """Build from a parsed ``[urgent]`` table (validated by the caller)."""
        return cls(
            keywords=tuple(section.get("keywords", ())),
            negations=tuple(section.get("negations", ())),
            fillers=tuple(section.get("negation_fillers", ())),
            ignore=tuple(section.get("ignore", ())),
            hypotheticals=tuple(section.get("hypotheticals", ())),
        )

    def is_cue(self, word: str) -> bool:
        """True when `word` (normalised) is one of the urgent cues."""
        return word in self._cues

    def denied(self, text: str, hits: list[tuple[str, int]]) -> set[str]:
        """Of the (cue, start) `hits` in normalised `text`, the cues that are negated at every
        occurrence (``没有着火``) — hypotheticals (``担心会着火``) do not deny anything."""
        if not hits:
            return set()
        ends: dict[int, list[int]] = {}
        for cue, start in self._strict.find(text):
            ends.setdefault(start + len(cue), []).append(start)
        if not ends:
            return set()
        negated: dict[str, bool] = {}
        for cue, start in hits:
            negated[cue] = negated.get(cue, True) and self._negated(text, start, ends)
        return {cue for cue, neg in negated.items() if neg}

    def detect(self, text: str) -> tuple[str, ...]:
        """Distinct urgent cues found in already-normalised `text`, in order of appearance."""
        hits = self._cues.find(text)
        if not hits:
            return ()
        covered: set[int] = set()
        for phrase, start in self._ignore.find(text):
            covered.update(range(start, start + len(phrase)))
        negation_ends: dict[int, list[int]] = {}
        for cue, start in self._neg.find(text):
            negation_ends.setdefault(start + len(cue), []).append(start)
        result: list[str] = []
        for cue, start in hits:
            if cue in result:
                continue
            if covered and (start in covered or start + len(cue) - 1 in covered):
                continue
            if self._negated(text, start, negation_ends):
                continue
            result.append(cue)
        return tuple(result)

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


def _load_default_section() -> dict[str, Any]:
    raw = resources.files("nlp").joinpath("rules", "default.toml").read_text(encoding="utf-8")
    section = tomllib.loads(raw).get("urgent", {})
    return dict(section)


@lru_cache(maxsize=1)
def default_detector() -> UrgencyDetector:
    """The detector built from the built-in default rules."""
    return UrgencyDetector.from_section(_load_default_section())


def detect_urgency(text: str, detector: UrgencyDetector | None = None) -> tuple[str, ...]:
    """Urgent cues in `text` (any form: it is normalised first) that are not negated."""
    return (detector or default_detector()).detect(normalize(text))
