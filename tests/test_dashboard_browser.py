"""The dashboard in a real browser: headless Chromium from the system packages, driven by Selenium.

A seeded demo (orders over three weeks, one with a photo that the fake WeChat API serves and the media
worker keeps) is opened as an admin would: the login link, the overview, an order. The charts must have
drawn (their canvases are not blank) and the photo must show (naturalWidth > 0). Screenshots go to
docs/screenshots/ (the README's pictures), or to $GRIDBOT_SCREENSHOTS when set. Without Chromium the
test is skipped locally; under CI (CI=true) that is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import keys
from bot.demo.sample_photo import sample_png
from storage.db import session_factory
from storage.models import MediaFile
from tests.conftest import Start
from tests.dashboard_helpers import COMMUNITY, link_for
from tests.fake_helpers import Clock, FakeServer
from tests.wechat_sim import image_xml

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
DAY = 86400.0

# (resident, report, the grid leader who gets it)
REPORTS = [
    ("oResidentW1", "筱塘新村3号楼楼道灯坏了", "oLeader-xiaotang-1"),
    ("oResidentW2", "筱塘市场门口垃圾堆了好几天没人清理", "oLeader-xiaotang-1"),
    ("oResidentW3", "龙桥花园小区晚上广场舞音乐太吵", "oLeader-xiaotang-2"),
    ("oResidentW4", "万辉国际城地下车库入口的井盖坏了", "oLeader-xiaotang-3"),
    ("oResidentW5", "南门路12号人行道地砖松动", "oLeader-xiaotang-1"),
    ("oResidentW6", "龙桥花园5栋楼道里堆满杂物", "oLeader-xiaotang-2"),
    ("oResidentW7", "学园南街8号院有人占用消防通道停车", "oLeader-xiaotang-3"),
]


def _chromium() -> None:
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
        return
    reason = "Chromium or chromedriver not installed (apt-get install chromium chromium-driver)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: under CI the browser test must run", pytrace=False)
    pytest.skip(reason)


def _driver(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1600,1100",
        "--lang=zh-CN",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


BLANK_CANVASES = """
return Array.from(document.querySelectorAll('canvas')).filter(function (canvas) {
  var data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  for (var i = 3; i < data.length; i += 4) { if (data[i] !== 0) { return false; } }
  return true;
}).map(function (canvas) { return canvas.id; });
"""


def _drawn(driver: Any) -> None:
    """Give the charts time to draw on a loaded machine; the caller still checks none is blank."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    with contextlib.suppress(TimeoutException):
        WebDriverWait(driver, 15, poll_frequency=0.2).until(lambda d: not d.execute_script(BLANK_CANVASES))


def _browse(base: str, login_path: str, order: int, profile: Path, shots: Path) -> dict[str, Any]:
    """Everything the browser does, in a thread (Selenium blocks; the server runs on the test's loop)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots.mkdir(parents=True, exist_ok=True)
    driver = _driver(profile)
    try:
        driver.set_page_load_timeout(30)
        driver.get(base + login_path)
        WebDriverWait(driver, 15).until(lambda d: len(d.find_elements(By.TAG_NAME, "canvas")) == 5)
        _drawn(driver)
        found: dict[str, Any] = {
            "url": driver.current_url,
            "title": driver.title,
            "canvases": len(driver.find_elements(By.TAG_NAME, "canvas")),
            "blank": driver.execute_script(BLANK_CANVASES),
            "open": driver.find_element(By.ID, "n-open").text,
        }
        driver.save_screenshot(str(shots / "overview.png"))
        driver.set_window_size(390, 1400)
        time.sleep(0.3)
        _drawn(driver)
        found["blank_phone"] = driver.execute_script(BLANK_CANVASES)
        driver.save_screenshot(str(shots / "overview-phone.png"))
        driver.set_window_size(1600, 1100)
        driver.get(f"{base}/dashboard/orders/{order}")
        WebDriverWait(driver, 15).until(
            lambda d: d.execute_script(
                "var i = document.querySelector('img.photo'); return !!i && i.complete && i.naturalWidth > 0;"
            )
        )
        found["photo_width"] = driver.execute_script(
            "return document.querySelector('img.photo').naturalWidth;"
        )
        found["order_text"] = driver.find_element(By.CSS_SELECTOR, "blockquote.words").text
        driver.save_screenshot(str(shots / "order.png"))
        driver.get(f"{base}/dashboard/orders")
        driver.save_screenshot(str(shots / "orders.png"))
        return found
    finally:
        driver.quit()


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
async def test_overview_and_order_in_a_real_browser(
    start: Start, engine: AsyncEngine, fake_api: FakeServer, tmp_path: Path
) -> None:
    _chromium()
    assert shutil.which(CHROMEDRIVER)
    clock = Clock(time.time() - 21 * DAY)
    client, wechat = await start(clock=clock)
    fake_api.fake.media["photo-lamp"] = ("image/png", sample_png())
    last = len(REPORTS) * 3
    for index, (resident, text, leader) in enumerate(REPORTS * 3):
        number = index + 1
        if number == last:
            await wechat.send(image_xml(f"{resident}-{index}", media_id="photo-lamp"))
        reply = (await wechat.say(f"{resident}-{index}", text)).content or ""
        assert f"#{number}" in reply, reply
        if index % 4 != 3 and number != last:
            clock.advance(600 + 1500 * (index % 5))
            assert "已接单" in ((await wechat.say(leader, f"接单 {number}")).content or "")
            if index % 3 != 2:
                clock.advance(3600 * (1 + 4 * (index % 6)))
                await wechat.say(leader, f"办结 {number} 已处理")
                await wechat.say(f"{resident}-{index}", "3" if index % 5 == 4 else "1")
        clock.advance(DAY * 0.9)
    clock.now = time.time()
    worker = client.server.app[keys.MEDIA]
    async with asyncio.timeout(10):
        while True:
            async with session_factory(engine)() as session:
                row = await session.scalar(select(MediaFile))
            if row is not None and row.status == "stored":
                break
            worker.wake()
            await asyncio.sleep(0.05)
    base = f"http://{client.server.host}:{client.server.port}"
    shots = Path(os.environ.get("GRIDBOT_SCREENSHOTS") or SCREENSHOTS)
    found = await asyncio.to_thread(
        _browse, base, await link_for(wechat, COMMUNITY), last, tmp_path / "profile", shots
    )
    assert found["url"] == base + "/dashboard/" and "态势" in found["title"]
    assert found["canvases"] == 5 and found["blank"] == [] and found["blank_phone"] == []
    assert int(found["open"]) > 0
    assert found["photo_width"] == 320
    assert found["order_text"] == REPORTS[-1][1]
    for name in ("overview.png", "overview-phone.png", "order.png", "orders.png"):
        assert (shots / name).stat().st_size > 10_000
