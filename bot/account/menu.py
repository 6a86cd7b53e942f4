"""`gridbot menu set FILE.toml | show | delete`: the official account's menu, written as TOML.

```toml
[[button]]                 # at most 3 buttons; a button has a type, or up to 5 sub_buttons
name = "报事"               # at most 16 bytes (4 Chinese characters); a sub_button's at most 60
type = "click"             # click · view
key = "REPORT"             # click: what the bot does (handlers.scan.MENU_KEYS)
```

A `view` button opens its `url` (WeChat reports the view, which is stored and not answered). The file is
checked whole, against the same limits WeChat applies, before anything is sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from handlers.scan import MENU_KEYS
from storage.toml_files import read_toml

TYPES = ("click", "view")
TOP_BUTTONS, SUB_BUTTONS = 3, 5
TOP_NAME_BYTES, SUB_NAME_BYTES = 16, 60
KEY_BYTES, URL_BYTES = 128, 1024


class MenuError(ValueError):
    """A bad menu file; the message is one line saying which button and what."""


def load_menu(path: str | Path) -> list[dict[str, Any]]:
    """The buttons of a menu file, in the shape `/cgi-bin/menu/create` takes."""
    return parse_menu(read_toml(path, "菜单文件", MenuError))


def parse_menu(data: dict[str, Any]) -> list[dict[str, Any]]:
    if set(data) - {"button"}:
        raise MenuError(f"未知的表 {sorted(set(data) - {'button'})[0]!r}，只允许 [[button]]")
    buttons = data.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= TOP_BUTTONS:
        raise MenuError(f"菜单应有 1–{TOP_BUTTONS} 个 [[button]]")
    return [_button(raw, f"button[{i}]", top=True) for i, raw in enumerate(buttons)]


def _button(raw: Any, where: str, *, top: bool) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise MenuError(f"{where}: 应为表")
    name = raw.get("name")
    limit = TOP_NAME_BYTES if top else SUB_NAME_BYTES
    if not isinstance(name, str) or not name.strip():
        raise MenuError(f"{where}: 缺少 name")
    if len(name.encode()) > limit:
        raise MenuError(f"{where} {name}: 名称最多 {limit} 字节（{limit // 4} 个汉字）")
    where = f"{where} {name}"
    allowed = {"name", "sub_button"} if top else set()
    allowed |= {"name", "type", "key", "url"}
    if extra := set(raw) - allowed:
        raise MenuError(f"{where}: 未知的字段 {sorted(extra)[0]!r}")
    if top and "sub_button" in raw:
        subs = raw["sub_button"]
        if not isinstance(subs, list) or not 1 <= len(subs) <= SUB_BUTTONS:
            raise MenuError(f"{where}: sub_button 应有 1–{SUB_BUTTONS} 个")
        if {"type", "key", "url"} & set(raw):
            raise MenuError(f"{where}: 有 sub_button 的菜单不能再有 type、key 或 url")
        return {
            "name": name,
            "sub_button": [_button(s, f"{where}.sub_button[{i}]", top=False) for i, s in enumerate(subs)],
        }
    kind = raw.get("type")
    if kind not in TYPES:
        raise MenuError(f"{where}: type 应为 {'、'.join(TYPES)}")
    if kind == "view":
        url = raw.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > URL_BYTES:
            raise MenuError(f"{where}: view 按钮需要以 http:// 或 https:// 开头的 url")
        return {"type": "view", "name": name, "url": url}
    key = raw.get("key")
    if not isinstance(key, str) or not key or len(key.encode()) > KEY_BYTES:
        raise MenuError(f"{where}: {kind} 按钮需要 key（最多 {KEY_BYTES} 字节）")
    if kind == "click" and key not in MENU_KEYS:
        known = "、".join(f"{k}（{v}）" for k, v in MENU_KEYS.items())
        raise MenuError(f"{where}: 未知的 key {key!r}，可用 {known}")
    return {"type": kind, "name": name, "key": key}


def format_menu(buttons: list[dict[str, Any]] | None) -> str:
    """The menu as WeChat holds it, one button a line."""
    if buttons is None:
        return "公众号目前没有自定义菜单。用 gridbot menu set FILE.toml 设置。"
    lines: list[str] = []
    for button in buttons:
        lines.append(_line(button, ""))
        lines.extend(_line(sub, "  ") for sub in button.get("sub_button") or [])
    return "\n".join(lines)


def _line(button: dict[str, Any], pad: str) -> str:
    kind = button.get("type")
    if not kind:
        return f"{pad}{button.get('name', '')}"
    target = button.get("url") if kind == "view" else button.get("key")
    meaning = f"（{MENU_KEYS[target]}）" if kind == "click" and target in MENU_KEYS else ""
    return f"{pad}{button.get('name', '')}  [{kind}] {target}{meaning}"
