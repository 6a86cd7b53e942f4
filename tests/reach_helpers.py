"""Helpers for the reach tests (place codes, menu, 报到, Open311, hot spots): the CLI against the test's
database and fake WeChat API, and the system's QR decoder."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Settings


def cli_config(path: Path, settings: Settings) -> Path:
    """A config file for `gridbot -c` with this test's database, org file and fake WeChat API."""
    wechat = settings.wechat
    path.write_text(
        "[wechat]\n"
        f'token = "{wechat.token}"\napp_id = "{wechat.app_id}"\napp_secret = "{wechat.app_secret}"\n'
        f'api_base = "{wechat.api_base}"\n'
        f'[storage]\ndatabase_url = "{settings.storage.database_url}"\n'
        f'[org]\nfile = "{settings.org.file}"\n',
        encoding="utf-8",
    )
    return path


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`gridbot ARGV` in a thread (it runs its own event loop), with what it printed."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def require_tool(name: str) -> str:
    """A system program the proof needs: skipped locally without it, but under CI (CI=true) a failure."""
    found = shutil.which(name)
    if found:
        return found
    reason = f"{name} is not installed (Debian: zbar-tools / poppler-utils; .ci/run installs them)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: under CI it must be there", pytrace=False)
    pytest.skip(reason)


def decode_qr(image: Path) -> list[str]:
    """Every QR code `zbarimg` reads in a PNG, as text."""
    zbarimg = require_tool("zbarimg")
    done = subprocess.run(
        [zbarimg, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(image)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return sorted(line for line in done.stdout.splitlines() if line)


def pdf_pages(pdf: Path, out: Path, dpi: int = 120) -> list[Path]:
    """The PDF's pages as PNG files (poppler's pdftoppm)."""
    pdftoppm = require_tool("pdftoppm")
    subprocess.run([pdftoppm, "-r", str(dpi), "-png", str(pdf), str(out / pdf.stem)], check=True, timeout=60)
    return sorted(out.glob(f"{pdf.stem}-*.png"))
