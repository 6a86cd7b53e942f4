"""/metrics reports open and overdue orders and the outbox backlog with its oldest age, read at scrape
time, on both backends."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Start
from tests.fake_helpers import Clock, FakeServer

pytestmark = pytest.mark.usefixtures("backend")


def gauge(text: str, name: str) -> float:
    assert f"# TYPE {name} gauge" in text
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, name
    return float(found.group(1))


async def test_gauges_follow_the_orders_and_the_outbox(start: Start, fake_api: FakeServer) -> None:
    clock = Clock()
    client, wechat = await start(clock=clock)
    before = await (await client.get("/metrics")).text()
    assert gauge(before, "gridbot_open_orders") == 0 and gauge(before, "gridbot_outbox_backlog") == 0
    assert gauge(before, "gridbot_outbox_oldest_seconds") == 0
    fake_api.fake.fail_next(None, -1, times=1000)  # WeChat busy: the notices stay in the outbox
    await wechat.say("oR1", "筱塘新村3号楼楼道灯坏了")
    await wechat.say("oR2", "木兰花园2号楼路灯不亮")
    clock.advance(3 * 3600)  # past the 2-hour accept limit
    after = await (await client.get("/metrics")).text()
    assert gauge(after, "gridbot_open_orders") == 2
    assert gauge(after, "gridbot_overdue_orders") == 2
    assert gauge(after, "gridbot_outbox_backlog") == 2  # one push to each grid leader
    assert 3 * 3600 <= gauge(after, "gridbot_outbox_oldest_seconds") < 3 * 3600 + 60
    assert "gridbot_request_seconds_count 2" in after  # the counters are still there
