"""Open311 GeoReport v2 at /open311/v2/ end to end on both backends: every field held to the spec's
lists, W3C datetimes with a time zone, the spec's filters and errors; a POST opens an order through the
same inbox and intake as chat, and nothing read back names a person, an openid or a phone number."""

from __future__ import annotations

import re
import time
import tomllib
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import DEMO_OPEN311_KEY, ConfigError, Settings, load_settings
from nlp.classifier import Classifier
from storage.db import session_factory
from storage.models import InboundMessage, OutboxMessage, WorkOrder
from tests.conftest import DEMO_ORG, Start
from tests.fake_helpers import Clock, FakeServer, eventually

pytestmark = pytest.mark.usefixtures("backend")

# The spec's field lists (https://wiki.open311.org/GeoReport_v2), written out here on their own.
DISCOVERY = {"changeset", "contact", "key_service", "endpoints"}
ENDPOINT = {"specification", "url", "changeset", "type", "formats"}
SERVICE = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
REQUEST = {
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
    "address", "address_id", "zipcode", "lat", "long", "media_url",
}  # fmt: skip
POSTED = {"service_request_id", "token", "service_notice", "account_id"}
W3C = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
LABELS = ["环境卫生", "物业服务", "设施维修", "停车交通", "噪音扰民", "治安安全", "消防应急", "违章搭建",
          "邻里纠纷", "养老助残", "政策咨询", "水电燃气", "绿化园林", "其他"]  # fmt: skip
API = "/open311/v2"
PHONE = "13812345678"
LEADER = "oLeader-xiaotang-1"


def china(moment: datetime) -> str:
    return moment.astimezone(timezone(timedelta(hours=8))).isoformat(timespec="seconds")


def demo_people() -> tuple[set[str], set[str]]:
    org = tomllib.loads(DEMO_ORG.read_text(encoding="utf-8"))
    return {p["openid"] for p in org["person"]}, {p["name"] for p in org["person"]}


async def get(client: Any, path: str, expect: int = 200, **params: str) -> Any:
    response = await client.get(API + path, params=params)
    assert response.status == expect, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def post(client: Any, expect: int = 200, **form: str) -> Any:
    response = await client.post(API + "/requests.json", data=form)
    assert response.status == expect, await response.text()
    return await response.json()


def assert_error(body: Any, code: int) -> None:
    assert isinstance(body, list) and len(body) == 1 and set(body[0]) == {"code", "description"}
    assert body[0]["code"] == code and isinstance(body[0]["description"], str) and body[0]["description"]


def report(**extra: str) -> dict[str, str]:
    return {"api_key": DEMO_OPEN311_KEY, "service_code": "设施维修", **extra}


async def test_discovery_and_services(start: Start) -> None:
    client, _ = await start()
    found = await get(client, "/discovery.json")
    assert set(found) == DISCOVERY and W3C.match(found["changeset"])
    (endpoint,) = found["endpoints"]
    assert set(endpoint) == ENDPOINT and endpoint["url"].endswith("/open311/v2")
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert "application/json" in endpoint["formats"] and endpoint["type"] == "production"
    listed = await get(client, "/services.json")
    assert [s["service_code"] for s in listed] == LABELS
    for service in listed:
        assert set(service) == SERVICE
        assert service["metadata"] is False and service["type"] == "realtime"
        assert service["service_name"] == service["service_code"]
        assert isinstance(service["keywords"], str) and isinstance(service["group"], str)
        assert "内响应" in service["description"]
    fixing = next(s for s in listed if s["service_code"] == "设施维修")
    # the label's strongest keywords, as the rules file gives them (楼道灯, 电梯 …)
    weights = Classifier.load(None).rule("设施维修").keywords
    words = fixing["keywords"].split(",")
    assert words and all(word in weights for word in words)
    assert min(weights[w] for w in words) >= max(w for k, w in weights.items() if k not in words)
    assert next(s for s in listed if s["service_code"] == "物业服务")["group"] == "部门办理"
    assert_error(await get(client, "/services.xml", 400), 400)


async def test_post_opens_an_order_through_the_same_intake(
    start: Start, engine: AsyncEngine, fake_api: FakeServer
) -> None:
    client, wechat = await start()
    assert_error(await post(client, 403, service_code="设施维修", address_string="筱塘新村"), 403)
    assert_error(await post(client, 403, **report(api_key="wrong-key-of-someone-else")), 403)
    assert_error(await post(client, 400, api_key=DEMO_OPEN311_KEY, address_string="筱塘新村"), 400)
    assert_error(await post(client, 404, **report(service_code="修飞船", address_string="筱塘新村")), 404)
    assert_error(await post(client, 400, **report(description="路灯坏了")), 400)  # no location
    assert_error(await post(client, 400, **report(lat="39.9", long="116.4")), 400)  # Beijing: not ours
    assert_error(await post(client, 400, **report(lat="north", long="116.4")), 400)
    assert_error(await post(client, 400, **report(address_string="火星基地")), 400)

    words = f"3号楼楼道灯坏了，请联系我 {PHONE}"
    (posted,) = await post(client, **report(address_string="筱塘新村3号楼", description=words))
    assert set(posted) == POSTED and posted["service_request_id"] == "1"
    assert "筱塘社区第一网格党支部" in posted["service_notice"]
    async with session_factory(engine)() as session:
        order = await session.get(WorkOrder, 1)
        inbound = (await session.scalars(select(InboundMessage))).all()
    assert order is not None
    assert (order.category, order.unit_id, order.resident_openid, order.state) == (
        "设施维修",
        "xiaotang-1",
        "open311:demo",
        "assigned",
    )
    # Through the inbox like a chat message: stored, handled once, the order recorded on the row.
    assert [(m.channel, m.sender, m.kind, m.order_id) for m in inbound] == [
        ("open311", "open311:demo", "text", 1)
    ]
    await eventually(lambda: any("#1" in m["content"] for m in fake_api.fake.delivered(LEADER)))

    # By location: the nearest grid (东圳社区第一网格's centre is 25.4402, 119.0031).
    (second,) = await post(
        client,
        **report(service_code="环境卫生", lat="25.4405", long="119.0035", description="垃圾堆在路边",
                 media_url="https://example.org/p/1.jpg"),
    )  # fmt: skip
    async with session_factory(engine)() as session:
        located = await session.get(WorkOrder, int(second["service_request_id"]))
    assert located is not None and located.unit_id == "dongzhen-1" and located.lat == 25.4405
    assert located.media == [{"pic_url": "https://example.org/p/1.jpg"}]
    # The same report again joins the open order instead of opening another.
    (again,) = await post(client, **report(address_string="筱塘新村3号楼", description=words))
    assert again["service_request_id"] == "1"

    # Worked like any order; the client is never sent a notice (it reads the status back).
    assert "已接单" in ((await wechat.say(LEADER, "接单 1")).content or "")
    assert "已办结" in ((await wechat.say(LEADER, "办结 1 灯已更换")).content or "")
    async with session_factory(engine)() as session:
        to_client = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.recipient.like("open311%")))
        ).all()
        order = await session.get(WorkOrder, 1)
    assert to_client == [] and order is not None and order.state == "resolved"
    (read,) = await get(client, "/requests/1.json")
    assert set(read) == REQUEST
    assert (read["status"], read["status_notes"]) == ("closed", "已办结待评价")
    assert order.resolve_due is not None
    assert read["expected_datetime"] == china(order.resolve_due)  # the deadline of the phase it is in


async def test_reads_follow_the_spec_and_expose_no_one(start: Start, engine: AsyncEngine) -> None:
    clock = Clock(time.time())
    client, wechat = await start(clock=clock)
    # A resident in chat, with their phone number in the words; and one order from a client.
    said = (await wechat.say("oResidentP", f"筱塘市场门口路灯不亮，我姓陈电话{PHONE}")).content or ""
    assert said.startswith("已受理，工单号 #1")
    await post(client, **report(service_code="环境卫生", address_string="龙桥花园", description="垃圾满了"))
    clock.advance(60)
    listed = await get(client, "/requests.json")
    assert [r["service_request_id"] for r in listed] == ["2", "1"]
    async with session_factory(engine)() as session:
        first = await session.get(WorkOrder, 1)
    assert first is not None and first.accept_due is not None
    for request in listed:
        assert set(request) == REQUEST
        for key in ("requested_datetime", "updated_datetime", "expected_datetime"):
            assert W3C.match(request[key]) and request[key].endswith("+08:00"), request[key]
        assert request["status"] == "open" and request["status_notes"] == "待接单"
    one = next(r for r in listed if r["service_request_id"] == "1")
    assert one["expected_datetime"] == china(first.accept_due)
    assert one["address"] == "筱塘市场" and one["agency_responsible"] == "筱塘社区第一网格党支部"
    assert PHONE not in one["description"] and "[电话已隐去]" in one["description"]
    # Privacy: no openid, no person's name, no phone number anywhere in what is read.
    body = (await (await client.get(API + "/requests.json")).text()) + await (
        await client.get(API + "/requests/1.json")
    ).text()
    openids, names = demo_people()
    for secret in [*openids, *names, "oResidentP", "open311:demo", PHONE]:
        assert secret not in body, secret

    # Filters.
    assert [
        r["service_request_id"] for r in await get(client, "/requests.json", service_code="环境卫生")
    ] == ["2"]
    assert await get(client, "/requests.json", status="closed") == []
    assert len(await get(client, "/requests.json", status="open,closed")) == 2
    both = await get(client, "/requests.json", service_request_id="1,2", status="closed")
    assert sorted(r["service_request_id"] for r in both) == ["1", "2"]  # ids override the other filters
    now = clock.dt()
    day = now.strftime("%Y-%m-%d")
    assert len(await get(client, "/requests.json", start_date=f"{day}T00:00:00+08:00")) == 2
    assert await get(client, "/requests.json", end_date="2020-01-01T00:00:00Z") == []
    for params in (
        {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},  # over 90 days
        {"start_date": "2026-01-01T00:00:00"},  # no time zone
        {"start_date": "yesterday"},
        {"start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
        {"status": "pending"},
        {"service_request_id": "1,abc"},
    ):
        assert_error(await get(client, "/requests.json", 400, **params), 400)
    assert_error(await get(client, "/requests/999.json", 404), 404)
    assert_error(await get(client, "/requests/abc.json", 404), 404)
    assert_error(await get(client, "/requests/1.xml", 400), 400)


async def test_reads_can_require_a_key_and_posts_are_rate_limited(start: Start) -> None:
    def private(settings: Settings) -> Settings:
        return replace(settings, open311=replace(settings.open311, read_key_required=True))

    client, _ = await start(configure=private)
    assert_error(await get(client, "/requests.json", 403), 403)
    assert await get(client, "/requests.json", api_key=DEMO_OPEN311_KEY) == []
    assert len(await get(client, "/services.json", api_key=DEMO_OPEN311_KEY)) == len(LABELS)
    assert set(await get(client, "/discovery.json")) == DISCOVERY  # discovery stays public
    places = ["筱塘新村", "筱塘市场", "龙桥花园", "东岩山公园", "万辉国际城"]
    for i in range(20):
        await post(
            client, **report(address_string=places[i % 5] + f"{i + 1}号楼", description=f"第{i}处路灯坏了")
        )
    # The chat's own limit (20 a minute per sender) refuses the 21st.
    assert_error(await post(client, 429, **report(address_string="筱塘新村", description="又一处")), 429)


def test_api_keys_come_from_config_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[wechat]\ntoken = "t"\n[open311]\napi_keys = { hotline = "k-0123456789abcdef" }\n', "utf-8"
    )
    assert dict(load_settings(path, env={}).open311.api_keys) == {"hotline": "k-0123456789abcdef"}
    env = {"GRIDBOT_OPEN311_API_KEYS": "a=key-aaaaaaaaaaaaaaaa,b=key-bbbbbbbbbbbbbbbb"}
    assert dict(load_settings(path, env=env).open311.api_keys) == {
        "a": "key-aaaaaaaaaaaaaaaa",
        "b": "key-bbbbbbbbbbbbbbbb",
    }
    for bad in ("a=short", "a=key-aaaaaaaaaaaaaaaa,b=key-aaaaaaaaaaaaaaaa", "no-equals-sign"):
        with pytest.raises(ConfigError):
            load_settings(path, env={"GRIDBOT_OPEN311_API_KEYS": bad})
