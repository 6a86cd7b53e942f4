"""Multi-keyword matching that respects word boundaries.

Keywords are found as substrings (so ``垃圾`` matches inside ``垃圾桶``), but a match that *straddles* a
word boundary with a ragged edge is rejected: in ``楼道里停电动车`` jieba cuts ``停 / 电动车``, so
``停电`` would start in one word and end in the middle of the next — that is not a power cut. The rule:
a match is valid when it lies wholly inside one token, or when both its ends fall on token boundaries.
Keywords of `SPECIFIC` (3) or more characters count wherever they occur: jieba cuts residents' run-on
sentences unpredictably, and a three-character phrase rarely appears by accident.

Lookup is a hash probe per (position, keyword length) with keywords indexed by first character, so the
cost grows with the text length and the number of distinct keyword lengths, not the number of keywords.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

__all__ = ["SPECIFIC", "KeywordMatcher", "on_boundaries"]

SPECIFIC = 3


class KeywordMatcher:
    """Finds occurrences of a fixed set of keywords in text."""

    __slots__ = ("_index", "_keywords")

    def __init__(self, keywords: Iterable[str]) -> None:
        self._keywords = frozenset(k for k in keywords if k)
        by_first: dict[str, set[int]] = {}
        for kw in self._keywords:
            by_first.setdefault(kw[0], set()).add(len(kw))
        # Longest first, so callers that want the longest match at a position see it first.
        self._index = {ch: tuple(sorted(lengths, reverse=True)) for ch, lengths in by_first.items()}

    def __len__(self) -> int:
        return len(self._keywords)

    def __contains__(self, keyword: object) -> bool:
        return keyword in self._keywords

    def find(
        self, text: str, tokens: Sequence[str] | Callable[[str], Sequence[str]] | None = None
    ) -> list[tuple[str, int]]:
        """All (keyword, start) occurrences in `text`, in order of position.

        With `tokens` (a segmentation of exactly `text`, or a function that segments it — called only
        when some match needs it), occurrences that straddle a token boundary with a ragged edge are
        dropped (see the module docstring).
        """
        index = self._index
        keywords = self._keywords
        found: list[tuple[str, int]] = []
        n = len(text)
        for i, ch in enumerate(text):
            lengths = index.get(ch)
            if lengths is None:
                continue
            for length in lengths:
                end = i + length
                if end <= n and text[i:end] in keywords:
                    found.append((text[i:end], i))
        if tokens is None:
            return found
        return on_boundaries(found, text, tokens)


def on_boundaries(
    found: list[tuple[str, int]], text: str, tokens: Sequence[str] | Callable[[str], Sequence[str]]
) -> list[tuple[str, int]]:
    """The matches of `found` that do not straddle a token boundary with a ragged edge. Only a match of
    two to SPECIFIC - 1 characters can: one character lies in one token, a long one counts anyway."""
    if not any(1 < len(kw) < SPECIFIC for kw, _ in found):
        return found
    owner = _token_owner(tokens(text) if callable(tokens) else tokens, len(text))
    if owner is None:
        return found
    n = len(text)
    valid = []
    for kw, start in found:
        end = start + len(kw)
        first = owner[start]
        last = owner[end - 1]
        # Long enough to be specific, wholly inside one token, or starting at a token start and
        # ending at a token end.
        if (
            len(kw) >= SPECIFIC
            or first == last
            or ((start == 0 or owner[start - 1] != first) and (end == n or owner[end] != last))
        ):
            valid.append((kw, start))
    return valid


def _token_owner(tokens: Sequence[str], n: int) -> list[int] | None:
    """For each character position, the index of the token that holds it (None if tokens ≠ text)."""
    owner: list[int] = []
    for t, tok in enumerate(tokens):
        owner.extend([t] * len(tok))
    return owner if len(owner) == n else None
