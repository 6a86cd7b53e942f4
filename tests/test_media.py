"""Photos and voice messages kept for good, on both backends: the worker downloads them through the fake
WeChat API, checks type and size, stores them by sha256, retries failures, downloads each file once
across workers; the push says 附照片 N 张; the dashboard shows the files only to admins in scope."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import keys
from bot.demo.sample_photo import sample_png
from bot.tencent.wechat_api import MAX_MEDIA_BYTES, MediaRefused, SendRejected
from bot.workers.media import MediaWorker
from bot.workers.outbox import Backoff
from storage.db import session_factory
from storage.media_store import MediaStore
from storage.models import MediaFile
from storage.state import StateStore
from tests.conftest import Start
from tests.dashboard_helpers import COMMUNITY, LEADER, OTHER_STREET, login
from tests.fake_helpers import Clock, FakeServer, eventually, make_api
from tests.wechat_sim import image_xml, voice_xml

pytestmark = pytest.mark.usefixtures("backend")

RESIDENT = "oResidentM"
PNG = sample_png()
FAST = Backoff(base=0.02, cap=0.05)


async def media_rows(engine: AsyncEngine) -> list[MediaFile]:
    async with session_factory(engine)() as session:
        return list((await session.scalars(select(MediaFile).order_by(MediaFile.id))).all())


def worker_of(client: Any) -> MediaWorker:
    worker = client.server.app[keys.MEDIA]
    worker.backoff = FAST
    return worker


async def settled(
    engine: AsyncEngine, worker: MediaWorker, count: int, clock: Clock | None = None
) -> list[MediaFile]:
    """Wake the worker (moving `clock` on past each retry's wait) until `count` rows are stored or failed."""
    async with asyncio.timeout(10):
        while True:
            rows = await media_rows(engine)
            if len(rows) >= count and all(r.status != "pending" for r in rows):
                return rows
            if clock is not None:
                clock.advance(1)
            worker.wake()
            await asyncio.sleep(0.02)


async def test_a_photo_is_kept_shown_in_scope_and_counted_in_the_push(
    start: Start, engine: AsyncEngine, fake_api: FakeServer, settings: Any
) -> None:
    fake_api.fake.media["photo-1"] = ("image/png", PNG)
    client, wechat = await start()
    assert (await wechat.send(image_xml(RESIDENT, media_id="photo-1"))).content
    reply = (await wechat.say(RESIDENT, "筱塘新村3号楼楼道灯坏了")).content or ""
    assert reply.startswith("已受理")
    await eventually(lambda: bool(fake_api.fake.delivered(LEADER)))
    (push,) = [m["content"] for m in fake_api.fake.delivered(LEADER)]
    assert "附照片 1 张" in push and push.endswith("请回复“接单 1”接单。")
    (row,) = await settled(engine, worker_of(client), 1)
    digest = hashlib.sha256(PNG).hexdigest()
    assert (row.status, row.kind, row.content_type, row.size, row.sha256) == (
        "stored",
        "image",
        "image/png",
        len(PNG),
        digest,
    )
    assert (settings.storage.media_root / digest[:2] / digest).read_bytes() == PNG

    await login(client, wechat, COMMUNITY)
    page = await (await client.get("/dashboard/orders/1")).text()
    assert f'src="/dashboard/media/{row.id}"' in page
    served = await client.get(f"/dashboard/media/{row.id}")
    assert served.status == 200 and served.content_type == "image/png" and await served.read() == PNG
    await login(client, wechat, OTHER_STREET)
    assert (await client.get(f"/dashboard/media/{row.id}")).status == 404
    client.session.cookie_jar.clear()
    assert (await client.get(f"/dashboard/media/{row.id}")).status == 401


async def test_no_photo_no_line_in_the_push(start: Start, fake_api: FakeServer) -> None:
    _, wechat = await start()
    await wechat.say(RESIDENT, "筱塘新村3号楼楼道灯坏了")
    await eventually(lambda: bool(fake_api.fake.delivered(LEADER)))
    assert "附照片" not in fake_api.fake.delivered(LEADER)[0]["content"]


async def test_a_voice_message_is_kept_with_its_order(
    start: Start, engine: AsyncEngine, fake_api: FakeServer
) -> None:
    fake_api.fake.media["media-voice-1"] = ("audio/amr", b"#!AMR\n" + bytes(300))
    client, wechat = await start()
    assert "已受理" in ((await wechat.send(voice_xml(RESIDENT, "筱塘新村3号楼楼道灯坏了"))).content or "")
    (row,) = await settled(engine, worker_of(client), 1)
    assert (row.status, row.kind, row.content_type) == ("stored", "voice", "audio/amr")
    await login(client, wechat, COMMUNITY)
    page = await (await client.get("/dashboard/orders/1")).text()
    assert "语音 1" in page and f'href="/dashboard/media/{row.id}" download' in page


async def test_failures_are_retried_with_backoff_then_kept(
    start: Start, engine: AsyncEngine, fake_api: FakeServer
) -> None:
    fake_api.fake.media["photo-2"] = ("image/png", PNG)
    fake_api.fake.fail_next("photo-2", -1, times=1)  # WeChat busy
    fake_api.fake.fail_next("photo-2", 0, times=1, status=502)  # a gateway error
    clock = Clock()
    client, wechat = await start(clock=clock)
    await wechat.send(image_xml(RESIDENT, media_id="photo-2"))
    (row,) = await settled(engine, worker_of(client), 1, clock)
    assert (row.status, row.attempts) == ("stored", 3)
    assert fake_api.fake.media_requests.count("photo-2") == 3


async def test_refused_files_fail_with_the_reason(
    start: Start, engine: AsyncEngine, fake_api: FakeServer
) -> None:
    fake = fake_api.fake
    fake.media["html"] = ("text/html", b"<html>not a photo</html>")
    fake.media["liar"] = ("image/jpeg", b"<script>alert(1)</script>")
    fake.media["big"] = ("image/png", PNG + bytes(2000))
    fake.media["fits"] = ("image/png", PNG + bytes(100))
    client, wechat = await start()
    worker = worker_of(client)
    worker.max_bytes = len(PNG) + 1000
    for media_id in ("html", "liar", "big", "fits", "unknown"):
        await wechat.send(image_xml(RESIDENT, media_id=media_id))
    rows = {r.media_id: r for r in await settled(engine, worker, 5)}
    assert rows["fits"].status == "stored"
    assert {k: r.status for k, r in rows.items() if k != "fits"} == dict.fromkeys(
        ("html", "liar", "big", "unknown"), "failed"
    )
    assert "text/html" in (rows["html"].last_error or "")
    assert "not image/jpeg" in (rows["liar"].last_error or "")
    assert "larger than" in (rows["big"].last_error or "")
    assert "40007" in (rows["unknown"].last_error or "")
    assert all(fake.media_requests.count(k) == 1 for k in rows)  # refused once, never retried
    assert MAX_MEDIA_BYTES == 10 * 1024 * 1024


async def test_the_client_streams_the_cap_and_refreshes_a_stale_token(
    fake_api: FakeServer, state: StateStore
) -> None:
    fake_api.fake.media["huge"] = ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(MAX_MEDIA_BYTES))
    fake_api.fake.media["ok"] = ("image/gif", b"GIF89a" + bytes(10))
    async with aiohttp.ClientSession() as http:
        api = make_api(http, fake_api, state)
        with pytest.raises(MediaRefused, match="larger than"):
            await api.get_media("huge")
        fake_api.fake.expire_tokens()
        media = await api.get_media("ok")
        assert (media.content_type, media.data[:6]) == ("image/gif", b"GIF89a")
        with pytest.raises(SendRejected):
            await api.get_media("missing")


async def test_two_workers_download_each_file_once(
    engine: AsyncEngine, fake_api: FakeServer, state: StateStore, tmp_path: Path
) -> None:
    from storage.db import session_factory as factory
    from storage.repo import record_inbound

    clock = Clock()
    for index in range(12):
        fake_api.fake.media[f"m{index}"] = ("image/png", PNG + bytes([index]))
        async with factory(engine)() as session:
            await record_inbound(
                session,
                channel="wechat",
                dedupe_key=f"img-{index}",
                sender=RESIDENT,
                kind="image",
                text="",
                payload={"media_id": f"m{index}"},
                sent_at=clock.dt(),
                received_at=clock.dt(),
            )
    async with aiohttp.ClientSession() as http:
        api = make_api(http, fake_api, state)
        store = MediaStore(tmp_path / "media")
        workers = [MediaWorker(factory(engine), {"wechat": api}, store, clock=clock) for _ in range(2)]
        await asyncio.gather(*(w.run_once() for w in workers))
    rows = await media_rows(engine)
    assert len(rows) == 12 and {r.status for r in rows} == {"stored"}
    assert sorted(fake_api.fake.media_requests) == sorted(f"m{i}" for i in range(12))
    assert len(list((tmp_path / "media").rglob("*"))) == 12 + len({r.sha256[:2] for r in rows if r.sha256})
