"""How alike two short reports are: the overlap of their character pairs once place names, numbers,
Latin letters and punctuation are taken out (so "3号楼路灯坏了" and "路灯又坏了" still compare)."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["pairs", "similarity"]

_NOISE = re.compile(r"[\W\d_a-zA-Z]+")


def pairs(text: str, names: Iterable[str] = ()) -> set[str]:
    """The character pairs of `text`'s Chinese runs (single characters stand for themselves)."""
    for name in names:
        text = text.replace(name, " ")
    words = [w for w in _NOISE.split(text) if w]
    return {w[i : i + 2] for w in words for i in range(len(w) - 1)} | {w for w in words if len(w) == 1}


def similarity(a: str, b: str, names: Iterable[str] = ()) -> float:
    """Jaccard overlap of the two texts' character pairs, 0 … 1."""
    names = list(names)
    first, second = pairs(a, names), pairs(b, names)
    if not first or not second:
        return 0.0
    return len(first & second) / len(first | second)
