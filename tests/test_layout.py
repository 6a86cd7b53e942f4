"""The layering of DESIGN.md holds: nlp/ and storage/ import nothing of ours above them, handlers/ never
sees the bot (HTTP, workers, API clients), and bot/ keeps its parts in sub-packages that say what they are."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("bot", "handlers", "nlp", "storage")
FORBIDDEN = {
    "nlp": {"bot", "handlers", "storage"},
    "storage": {"bot", "handlers", "nlp"},
    "handlers": {"bot"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(OURS)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_import_nothing_above_them(package: str) -> None:
    offending = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_bot_top_level_is_only_the_composition_root() -> None:
    top = sorted(p.name for p in (ROOT / "bot").glob("*.py"))
    assert top == ["__init__.py", "app.py", "cli.py", "config.py", "keys.py", "metrics.py"]
    for sub in ("edge", "workers", "tencent", "demo", "dashboard"):
        assert (ROOT / "bot" / sub / "__init__.py").is_file()
