"""`gridbot qr [--unit ID] -o DIR`: a permanent code for every place of the org, and the sheets to print.

For each place under the unit (default: all), WeChat's `/cgi-bin/qrcode/create` gives a permanent code
(QR_LIMIT_STR_SCENE) whose scene is the place's stable key (`handlers.scan.place_scene`). Asking again
for the same scene gives the same code, so running the command again reprints the same posters. Per
grid it writes `DIR/<grid>.pdf` and `DIR/<grid>-1.png`, `-2.png` … (six cards a page), and for the
record `DIR/codes.csv` (grid, place, scene, url, ticket).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.account.sheets import Card, find_cjk_font, render_pdf, render_png
from bot.tencent.wechat_api import QrCode, WeChatAPI
from handlers.directory import Directory
from handlers.scan import place_scene

CSV_HEADER = ("grid_id", "grid_name", "place", "scene", "url", "ticket")


@dataclass(frozen=True)
class Place:
    name: str
    grid_id: str


@dataclass
class Written:
    """What one run produced."""

    codes: list[tuple[Place, QrCode]] = field(default_factory=list)
    files: dict[str, list[Path]] = field(default_factory=dict)  # grid id → its PDF and PNG pages
    font: Path | None = None  # the PNG's font; None: Pillow's own, without Chinese glyphs


def places_under(directory: Directory, unit_id: str | None) -> list[Place]:
    """The active places of the grids at or below `unit_id` (None: every grid), by grid then name.
    An unknown unit is a ValueError."""
    if unit_id is not None and unit_id not in directory.units:
        raise ValueError(f"未知的单位: {unit_id}（gridbot org show 可列出全部单位）")
    found = [
        Place(name, grid)
        for name, grid in directory.places.values()
        if unit_id is None or directory.contains(unit_id, grid)
    ]
    return sorted(found, key=lambda p: (p.grid_id, p.name))


async def make_codes(api: WeChatAPI, places: list[Place]) -> list[tuple[Place, QrCode]]:
    """One code per place, asked one after another (the API is rate limited per account)."""
    return [(place, await api.create_qrcode(place_scene(place.name))) for place in places]


def write_sheets(
    directory: Directory,
    codes: list[tuple[Place, QrCode]],
    out: Path,
    *,
    font_finder: Callable[[], Path | None] = find_cjk_font,
) -> Written:
    """The sheets of every grid in `codes`, and `codes.csv`, into `out` (created if missing). Blocking:
    call it in a thread from async code."""
    out.mkdir(parents=True, exist_ok=True)
    written = Written(codes=codes, font=font_finder())
    by_grid: dict[str, list[Card]] = {}
    for place, code in codes:
        by_grid.setdefault(place.grid_id, []).append(
            Card(place.name, directory.branch_name(place.grid_id), code.url)
        )
    for grid, cards in by_grid.items():
        footer = f"{directory.unit_name(grid)}（{directory.branch_name(grid)}）"
        pdf = render_pdf(cards, footer, out / f"{grid}.pdf")
        pngs = render_png(cards, footer, out / f"{grid}.png", written.font)
        written.files[grid] = [pdf, *pngs]
    with (out / "codes.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        for place, code in codes:
            writer.writerow(
                [
                    place.grid_id,
                    directory.unit_name(place.grid_id),
                    place.name,
                    code.scene,
                    code.url,
                    code.ticket,
                ]
            )
    return written
