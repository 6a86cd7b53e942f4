"""The command grammar: how a message's first word is read as a command."""

from __future__ import annotations

import unicodedata

# Traditional and other spellings a person may use for a command word.
_ALIASES = {
    "帮助": "帮助",
    "幫助": "帮助",
    "help": "帮助",
    "?": "帮助",
    "菜单": "帮助",
}


def command_word(text: str) -> str | None:
    """The canonical command this text starts with, or None when it is not a command."""
    cleaned = unicodedata.normalize("NFKC", text).strip()
    if not cleaned:
        return None
    first = cleaned.split()[0].lower()
    return _ALIASES.get(first)
