"""Combos: words of several groups that mean something together when they occur close to each other
(电动车 + 电梯 is a fire risk; 小孩 + 窗台外 is an emergency), whatever the exact phrase.

`ComboSet` evaluates many combos over the word positions found in one message: a combo is looked at only
when every one of its groups has a word in the message, so the cost grows with the words found, not with
the number of combos.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Generic, TypeVar

__all__ = ["ComboSet", "combo_words"]

T = TypeVar("T")


class ComboSet(Generic[T]):
    """Combos, each with its groups, its window and a value of the caller's (a label, a kind)."""

    def __init__(self, combos: Sequence[tuple[Sequence[Sequence[str]], int, T]]) -> None:
        self._combos = [
            (
                tuple(tuple(group) for group in groups),
                tuple(frozenset(group) for group in groups),
                within,
                value,
            )
            for groups, within, value in combos
        ]
        self.words = frozenset(word for _, sets, _, _ in self._combos for group in sets for word in group)
        self._by_word: dict[str, list[int]] = {}
        for index, (_, sets, _, _) in enumerate(self._combos):
            for word in sets[0]:
                self._by_word.setdefault(word, []).append(index)

    def __bool__(self) -> bool:
        return bool(self._combos)

    def matches(self, positions: Mapping[str, list[int]]) -> list[tuple[T, int, tuple[str, ...]]]:
        """(value, start, words) of every combo found, in the order the combos were given."""
        present = positions.keys()
        candidates = sorted({i for word in present for i in self._by_word.get(word, ())})
        found = []
        for index in candidates:
            groups, sets, within, value = self._combos[index]
            if all(not group.isdisjoint(present) for group in sets[1:]):
                start, words = _combo_match(groups, within, positions)
                if start is not None:
                    found.append((value, start, words))
        return found


def combo_words(
    groups: Sequence[Sequence[str]], within: int, positions: Mapping[str, list[int]]
) -> tuple[str, ...]:
    """The words, one per group, that occur within `within` characters of each other — the earliest
    such set — or () when the groups do not all occur that close together."""
    return _combo_match(groups, within, positions)[1]


def _combo_match(
    groups: Sequence[Sequence[str]], within: int, positions: Mapping[str, list[int]]
) -> tuple[int | None, tuple[str, ...]]:
    """The earliest start and the words of a set of occurrences, one per group, that lie within
    `within` characters of each other and do not overlap (停车场 alone is not 车 + 停)."""
    per_group = [
        sorted(
            ((p, word) for word in group for p in positions.get(word, ())), key=lambda o: (o[0], -len(o[1]))
        )
        for group in groups
    ]
    if not all(per_group):
        return None, ()
    for anchor, first_word in per_group[0]:
        chosen = [(anchor, first_word)]
        for occurrences in per_group[1:]:
            near = [
                (p, w)
                for p, w in occurrences
                if abs(p - anchor) <= within and not any(_overlap(p, w, q, v) for q, v in chosen)
            ]
            if not near:
                break
            chosen.append(min(near, key=lambda item: abs(item[0] - anchor)))
        else:
            starts = [p for p, _ in chosen]
            if max(starts) - min(starts) <= within:
                return min(starts), tuple(w for _, w in chosen)
    return None, ()


def _overlap(start: int, word: str, other_start: int, other: str) -> bool:
    return start < other_start + len(other) and other_start < start + len(word)
