"""Reading a TOML file a person wrote (the config, the org file, the menu), with one-line Chinese errors."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

__all__ = ["read_toml"]


def read_toml(path: str | Path, what: str, error: type[Exception]) -> dict[str, Any]:
    """The tables of `path`; `error` with a one-line message naming `what` (配置文件, 组织文件 …) when it
    is missing, unreadable or not TOML."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise error(f"{what}不存在: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {path} 不是有效的 TOML: {exc}") from None
    except OSError as exc:
        raise error(f"无法读取{what} {path}: {exc.strerror}") from None
