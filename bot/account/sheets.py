"""Printable sheets of place codes (扫码报事), one set per grid: A4 pages of six cards, in PNG and PDF.

Each card has the code, `扫码报事`, the place's name and the grid's Party branch. segno draws the QR
symbol (always a full QR code, never a Micro QR, which WeChat cannot read), Pillow lays out the PNG pages
and reportlab writes the PDF. The PDF uses reportlab's built-in CID font STSong-Light, so it needs no
font file; the PNG needs a CJK font on the system (`find_cjk_font`), and without one falls back to
Pillow's own font, where Chinese shows as boxes.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

__all__ = ["Card", "find_cjk_font", "qr_image", "render_pdf", "render_png"]

TITLE = "扫码报事"
HINT = "微信扫一扫，直接反映问题，不用写地址"
COLUMNS, ROWS = 2, 3
PER_PAGE = COLUMNS * ROWS
DPI = 150  # the PNG pages: A4 at 150 dpi is 1240 × 1754 pixels
PDF_FONT = "STSong-Light"
FONT_ENV = "GRIDBOT_CJK_FONT"  # a font file to use for the PNG instead of searching
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)


@dataclass(frozen=True)
class Card:
    """One place's code as it is printed."""

    place: str
    branch: str  # the grid's Party branch (or the grid's name when it has none)
    url: str  # what the code encodes (WeChat's `url` for the ticket)


def qr_image(url: str, pixels: int) -> Image.Image:
    """The code for `url` as a black-and-white image of at most `pixels` square, whole pixels per module."""
    code = segno.make_qr(url, error="m")
    modules = code.symbol_size(scale=1, border=4)[0]
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=max(1, pixels // modules), border=4)
    buffer.seek(0)
    return Image.open(buffer).convert("L")


def find_cjk_font() -> Path | None:
    """A font file with Chinese glyphs: `$GRIDBOT_CJK_FONT`, a well-known path, or one fontconfig lists."""
    given = os.environ.get(FONT_ENV)
    if given and Path(given).is_file():
        return Path(given)
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    if shutil.which("fc-list"):  # fontconfig lists only the fonts that cover Chinese
        try:
            listed = subprocess.run(
                ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        for line in sorted(listed.splitlines()):
            path = Path(line.split(":")[0].strip())
            if path.suffix.lower() in (".ttf", ".ttc", ".otf") and path.is_file():
                return path
    return None


def _pages(cards: Sequence[Card]) -> list[Sequence[Card]]:
    return [cards[i : i + PER_PAGE] for i in range(0, len(cards), PER_PAGE)] or [[]]


# --- PNG ------------------------------------------------------------------------------------------


def render_png(cards: Sequence[Card], footer: str, out: Path, font_file: Path | None) -> list[Path]:
    """A4 pages at 150 dpi: `out` with -1, -2 … before the suffix, one file per page of six cards."""
    width, height = round(A4[0] / 72 * DPI), round(A4[1] / 72 * DPI)
    cell_w, cell_h = width // COLUMNS, (height - 60) // ROWS
    fonts = {size: _font(font_file, size) for size in (56, 36, 26, 22)}
    pages = _pages(cards)
    paths: list[Path] = []
    for number, page in enumerate(pages, 1):
        image = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(image)
        for index, card in enumerate(page):
            left, top = (index % COLUMNS) * cell_w, (index // COLUMNS) * cell_h
            _png_card(image, draw, card, (left, top, cell_w, cell_h), fonts)
        for column in range(1, COLUMNS):  # cut lines
            _dashes(draw, (column * cell_w, 0), (column * cell_w, ROWS * cell_h))
        for row in range(1, ROWS + 1):
            _dashes(draw, (0, row * cell_h), (width, row * cell_h))
        draw.text(
            (width / 2, height - 30),
            f"{footer}　第 {number}/{len(pages)} 页",
            fill=90,
            font=fonts[22],
            anchor="mm",
        )
        path = out.with_name(f"{out.stem}-{number}{out.suffix}")
        image.save(path, dpi=(DPI, DPI))
        paths.append(path)
    return paths


def _font(font_file: Path | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if font_file is not None:
        return ImageFont.truetype(str(font_file), size)
    return ImageFont.load_default(size)


def _png_card(
    image: Image.Image,
    draw: ImageDraw.ImageDraw,
    card: Card,
    box: tuple[int, int, int, int],
    fonts: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont],
) -> None:
    left, top, w, h = box
    centre = left + w / 2
    draw.text((centre, top + 50), TITLE, fill=0, font=fonts[56], anchor="mm")
    code = qr_image(card.url, int(h * 0.58))
    image.paste(code, (int(centre - code.width / 2), top + 90))
    below = top + 90 + code.height
    draw.text((centre, below + 10), _fit(card.place, 16), fill=0, font=fonts[36], anchor="mm")
    draw.text((centre, below + 52), _fit(card.branch, 22), fill=40, font=fonts[26], anchor="mm")
    draw.text((centre, below + 86), HINT, fill=90, font=fonts[22], anchor="mm")


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dashes(draw: ImageDraw.ImageDraw, start: tuple[int, int], end: tuple[int, int]) -> None:
    (x0, y0), (x1, y1) = start, end
    length = max(abs(x1 - x0), abs(y1 - y0))
    for offset in range(0, length, 24):
        t0, t1 = offset / length, min(offset + 12, length) / length
        draw.line(
            [(x0 + (x1 - x0) * t0, y0 + (y1 - y0) * t0), (x0 + (x1 - x0) * t1, y0 + (y1 - y0) * t1)],
            fill=180,
            width=2,
        )


# --- PDF ------------------------------------------------------------------------------------------


def render_pdf(cards: Sequence[Card], footer: str, out: Path) -> Path:
    """The same pages as one PDF (vector text in STSong-Light, the codes as exact images)."""
    if PDF_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(PDF_FONT))
    width, height = A4
    cell_w, cell_h = width / COLUMNS, (height - 30) / ROWS
    pdf = canvas.Canvas(str(out), pagesize=A4, pageCompression=1)
    pdf.setTitle(f"{TITLE}：{footer}")
    pdf.setCreator("gridbot qr")
    pages = _pages(cards)
    for number, page in enumerate(pages, 1):
        for index, card in enumerate(page):
            left = (index % COLUMNS) * cell_w
            top = height - (index // COLUMNS) * cell_h  # reportlab's y grows upwards
            _pdf_card(pdf, card, left, top, cell_w, cell_h)
        pdf.setDash(4, 4)
        pdf.setStrokeGray(0.7)
        for column in range(1, COLUMNS):
            pdf.line(column * cell_w, height, column * cell_w, height - ROWS * cell_h)
        for row in range(1, ROWS + 1):
            pdf.line(0, height - row * cell_h, width, height - row * cell_h)
        pdf.setDash()
        pdf.setFillGray(0.35)
        pdf.setFont(PDF_FONT, 9)
        pdf.drawCentredString(width / 2, 14, f"{footer}　第 {number}/{len(pages)} 页")
        pdf.showPage()
    pdf.save()
    return out


def _pdf_card(pdf: canvas.Canvas, card: Card, left: float, top: float, w: float, h: float) -> None:
    centre = left + w / 2
    pdf.setFillGray(0)
    pdf.setFont(PDF_FONT, 26)
    pdf.drawCentredString(centre, top - 34, TITLE)
    side = h * 0.58
    code = qr_image(card.url, 600)  # drawn at `side` points: about 250 dpi
    pdf.drawImage(ImageReader(code), centre - side / 2, top - 44 - side, side, side)
    below = top - 44 - side
    pdf.setFont(PDF_FONT, 16)
    pdf.drawCentredString(centre, below - 14, _fit(card.place, 16))
    pdf.setFillGray(0.15)
    pdf.setFont(PDF_FONT, 12)
    pdf.drawCentredString(centre, below - 32, _fit(card.branch, 22))
    pdf.setFillGray(0.35)
    pdf.setFont(PDF_FONT, 10)
    pdf.drawCentredString(centre, below - 48, HINT)
