"""The proof on the embedded demo itself: `gridbot serve` (no config) plays the WeChat API; `gridbot qr`
asks it for the codes and prints the sheets; zbarimg reads them back to the demo's own code URLs; and a
scan of one of them, pushed to the running demo, binds the resident to that place."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from bot.config import DEMO_TOKEN
from bot.demo.wechat_client import event_xml, read_reply, signed_query, text_xml
from handlers.scan import place_scene
from tests.reach_helpers import decode_qr, require_tool
from tests.test_chat import free_port

GRIDBOT = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


async def push(http: aiohttp.ClientSession, base: str, xml: str) -> str:
    async with http.post(f"{base}/wechat", params=signed_query(DEMO_TOKEN, xml), data=xml) as response:
        assert response.status == 200
        fields = read_reply(await response.text())
    return str((fields or {}).get("Content", ""))


async def test_demo_prints_codes_that_scan_back_to_their_places(tmp_path: Path) -> None:
    require_tool("zbarimg")
    port = free_port()
    env = {**os.environ, "GRIDBOT_SERVER_PORT": str(port)}
    env.pop("GRIDBOT_STORAGE_DATABASE_URL", None)
    log = (tmp_path / "serve.log").open("wb")
    server = await asyncio.create_subprocess_exec(
        *GRIDBOT, "serve", cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    async with http.get(f"{base}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert server.returncode is None and time.monotonic() < deadline, "the demo did not start"
                await asyncio.sleep(0.2)
            qr = await asyncio.to_thread(
                subprocess.run,
                [*GRIDBOT, "qr", "--unit", "dongzhen", "-o", "out"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert qr.returncode == 0, qr.stderr
            assert "东圳社区第一网格 [dongzhen-1]: 2 个地点" in qr.stdout
            decoded = decode_qr(tmp_path / "out" / "dongzhen-1-1.png")
            rows = (tmp_path / "out" / "codes.csv").read_text(encoding="utf-8").splitlines()[1:]
            codes = {row.split(",")[2]: row.split(",") for row in rows}
            assert decoded == sorted(codes[name][4] for name in ("东圳新苑", "东圳农贸市场"))
            assert codes["东圳新苑"][3] == place_scene("东圳新苑")
            # Scan one of them on the running demo: bound there, the report opens in its grid.
            reply = await push(http, base, event_xml("oDemoScan", "SCAN", codes["东圳新苑"][3]))
            assert "东圳新苑" in reply and "请描述遇到的问题" in reply
            reply = await push(http, base, text_xml("oDemoScan", "门口的路灯不亮了"))
            assert reply.startswith("已受理") and "东圳社区第一网格党支部" in reply
    finally:
        server.terminate()
        try:
            await asyncio.wait_for(server.wait(), 20)
        except TimeoutError:  # pragma: no cover
            server.kill()
        log.close()
