"""How text is read before any rule looks at it: normalised, then the known slips of speech recognition,
typing and dialect rewritten (``[variants]``: 电题 → 电梯, 著火 → 着火), with the ``[mask]`` words that hide
the keywords inside them (卫生间 is not 卫生)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nlp.matcher import KeywordMatcher
from nlp.normalize import normalize

__all__ = ["Vocabulary"]


class Vocabulary:
    """How text is read before scoring: the variants to rewrite and the mask words, from a rules dict."""

    def __init__(self, rules: Mapping[str, Any]) -> None:
        self.variants = {
            normalize(k).lower(): normalize(v).lower() for k, v in rules.get("variants", {}).items()
        }
        self.mask = frozenset(normalize(w).lower() for w in rules.get("mask", {}).get("words", ()))
        self._variant_matcher = KeywordMatcher(self.variants)

    def read(self, text: str) -> str:
        """Normalised, lower-cased `text` with its variants rewritten (leftmost, longest first)."""
        norm = normalize(text).lower()
        if not self.variants:
            return norm
        found = self._variant_matcher.find(norm)
        if not found:
            return norm
        out: list[str] = []
        pos = 0
        for word, start in found:
            if start < pos:
                continue
            out.append(norm[pos:start])
            out.append(self.variants[word])
            pos = start + len(word)
        out.append(norm[pos:])
        return "".join(out)
