"""Word segmentation: one private jieba tokenizer per process, loaded once, cached on disk.

The tokenizer is *not* jieba's global one, so other code using ``jieba.cut`` is unaffected by our
domain words and place names. Its prefix dictionary is cached (marshal) in ``$GRIDBOT_CACHE_DIR``,
else ``$XDG_CACHE_HOME/gridbot``, else ``~/.cache/gridbot``, else a temporary directory — the first
load builds it (~1–2 s), every later process reads it back (a few hundred ms).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import jieba

__all__ = ["add_words", "cache_dir", "segment", "token_spans", "tokenizer"]

_CACHE_NAME = f"jieba-{jieba.__version__}.cache"
_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None

# jieba logs every dictionary load at DEBUG level to stderr through its own handler; keep it quiet.
jieba.setLogLevel(logging.WARNING)


def cache_dir() -> Path:
    """A writable directory for the jieba cache (created if needed)."""
    candidates: list[Path] = []
    if os.environ.get("GRIDBOT_CACHE_DIR"):
        candidates.append(Path(os.environ["GRIDBOT_CACHE_DIR"]))
    if os.environ.get("XDG_CACHE_HOME"):
        candidates.append(Path(os.environ["XDG_CACHE_HOME"]) / "gridbot")
    candidates.append(Path.home() / ".cache" / "gridbot")
    for path in candidates:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(path, os.W_OK):
            return path
    path = Path(tempfile.gettempdir()) / f"gridbot-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _user_dict_words() -> list[str]:
    text = resources.files("nlp").joinpath("dict", "user.txt").read_text(encoding="utf-8")
    words = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            words.append(line)
    return words


def tokenizer() -> jieba.Tokenizer:
    """The process-wide private tokenizer, initialised on first use (thread-safe)."""
    global _tokenizer
    if _tokenizer is not None:
        return _tokenizer
    with _lock:
        if _tokenizer is None:
            tk = jieba.Tokenizer()
            tk.tmp_dir = str(cache_dir())
            tk.cache_file = _CACHE_NAME
            tk.initialize()
            for line in _user_dict_words():
                parts = line.split()
                word = parts[0]
                freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                tk.add_word(word, freq)
            _tokenizer = tk
    return _tokenizer


def add_words(words: Iterable[str]) -> None:
    """Teach the segmenter words (place names, aliases) that must stay one token."""
    tk = tokenizer()
    for word in words:
        word = word.strip()
        if word and " " not in word:
            tk.add_word(word)


def segment(text: str) -> list[str]:
    """Tokens of `text` in order; their concatenation is `text` (no HMM: fast and predictable)."""
    if not text:
        return []
    return list(tokenizer().cut(text, HMM=False))


def token_spans(tokens: Iterable[str]) -> list[tuple[int, int]]:
    """(start, end) character offsets of each token."""
    spans = []
    pos = 0
    for tok in tokens:
        spans.append((pos, pos + len(tok)))
        pos += len(tok)
    return spans
