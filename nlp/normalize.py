"""Text normalisation: one canonical form for everything the NLP layer matches against.

`normalize` turns what residents type on a phone into a predictable string:

* traditional characters → simplified (OpenCC ``t2s``);
* full-width ASCII letters, digits and symbols → half-width (``ＡＢ１２＃`` → ``AB12#``), while the
  Chinese sentence punctuation ``，。！？：；（）、`` stays as it is;
* emoji, variation selectors, zero-width joiners and control characters are removed;
* runs of the same punctuation mark collapse to one (``！！！`` → ``！``, ``……`` → ``…``);
* whitespace collapses to one space, and disappears between two Chinese characters
  (``楼道 着火 了`` → ``楼道着火了``), so that keywords still match.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

import opencc

__all__ = ["has_emoji", "is_cjk", "normalize", "to_simplified"]

# Full-width forms U+FF01..U+FF5E map to ASCII U+0021..U+007E; these stay Chinese punctuation.
_KEEP_FULLWIDTH = set("，。！？：；（）、")
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F) if chr(cp) not in _KEEP_FULLWIDTH}
_FULLWIDTH[0x3000] = 0x20  # ideographic space
_FULLWIDTH[0x00A0] = 0x20  # no-break space

_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # mahjong, cards, emoticons, pictographs, transport, supplemental symbols
    "\U0001fb00-\U0001fbff"  # symbols for legacy computing
    "\u2600-\u27bf"  # miscellaneous symbols, dingbats
    "\u2300-\u23ff"  # miscellaneous technical (⌚ ⏰ …)
    "\u2b00-\u2bff"  # arrows and stars (⭐ …)
    "\u2190-\u21ff"  # arrows
    "\ufe00-\ufe0f"  # variation selectors
    "\u200b-\u200f"  # zero-width space / joiners / direction marks
    "\u2060-\u206f"  # word joiner and invisible operators
    "\ufeff"  # byte-order mark
    "\U000e0000-\U000e007f"  # tag characters (flag sequences)
    "\u20e3"  # combining enclosing keycap
    "]+"
)
# Control characters except tab/newline/carriage return (those become spaces).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]+")
# Compatibility forms (circled digits ①, Roman numerals Ⅻ, squared units ㎡) fold like NFKC does.
_COMPAT = re.compile("[\u2150-\u218f\u2460-\u24ff\u3200-\u33ff]")
_WHITESPACE = re.compile(r"\s+")
_PUNCT_RUN = re.compile(r"([!-/:-@\[-`{-~，。！？：；、…·—～])\1+")
_CJK_RANGE = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_SPACE = re.compile(f"(?<=[{_CJK_RANGE}]) (?=[{_CJK_RANGE}])| ?([，。！？：；、…]) ?")

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese (OpenCC ``t2s``); other characters pass through."""
    if text.isascii():
        return text
    converter = _converter()
    with _lock:  # the C++ converter is cheap to call; the lock only guards concurrent use
        return converter.convert(text)


def is_cjk(char: str) -> bool:
    """True for a CJK unified ideograph (basic, extension A, compatibility)."""
    cp = ord(char)
    return 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF


def has_emoji(text: str) -> bool:
    """True when `text` holds an emoji (or another pictograph) that `normalize` removes."""
    return bool(_EMOJI.search(text))


def normalize(text: str) -> str:
    """Return the canonical form of `text` (see the module docstring)."""
    if not text:
        return ""
    text = text.translate(_FULLWIDTH)
    text = _EMOJI.sub("", text)
    text = _CONTROL.sub("", text)
    if not text.isascii():
        text = _COMPAT.sub(_nfkc, text)
        text = to_simplified(text)
    text = _WHITESPACE.sub(" ", text).strip()
    text = _CJK_SPACE.sub(r"\1", text)
    return _PUNCT_RUN.sub(r"\1", text)


def _nfkc(match: re.Match[str]) -> str:
    return unicodedata.normalize("NFKC", match.group())
