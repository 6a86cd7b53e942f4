"""Staff see what matters first: `待办` and `逾期` list urgent orders first, then by deadline, each line with
its deadline in China time (今天 / 明天 / 昨天 / 9月28日), end to end on both backends."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Start
from tests.fake_helpers import Clock
from tests.wechat_sim import WeChatPlatform

LEADER = "oLeader-xiaotang-1"
ADMIN = "oAdmin-xiaotang"
MINUTE, HOUR = 60, 3600
T0 = 1_790_000_000.0  # 2026-09-21 22:13:20 in China

pytestmark = pytest.mark.usefixtures("backend")


async def say(wechat: WeChatPlatform, who: str, text: str) -> str:
    return (await wechat.say(who, text)).content or ""


async def report(wechat: WeChatPlatform, who: str, text: str) -> int:
    found = re.search(r"工单号 #(\d+)", await say(wechat, who, text))
    assert found
    return int(found.group(1))


async def test_todo_and_overdue_put_urgent_first_then_the_nearest_deadline(
    start: Start, engine: AsyncEngine
) -> None:
    clock = Clock(T0)
    _, wechat = await start(clock=clock)
    lamp = await report(wechat, "oResident1", "筱塘新村3号楼楼道灯坏了")  # accept by 00:13
    clock.advance(10 * MINUTE)
    fight = await report(wechat, "oResident2", "筱塘新村5号楼有人持刀打架")  # urgent: accept by 22:53
    clock.advance(10 * MINUTE)
    door = await report(wechat, "oResident3", "筱塘新村7号楼门禁坏了")  # accept by 00:33
    clock.advance(10 * MINUTE)
    assert "已接单" in await say(wechat, LEADER, f"接单 {lamp}")  # now resolve by 9月28日 22:43

    todo = (await say(wechat, LEADER, "待办")).splitlines()
    assert todo[0] == "您的待办工单 3 张："
    assert [int(re.match(r"#(\d+)", line).group(1)) for line in todo[1:4]] == [fight, door, lamp]  # type: ignore[union-attr]
    assert todo[1].startswith(f"#{fight} 【急】") and todo[1].endswith("（今天 22:53 前）")
    assert todo[2].endswith("（明天 00:33 前）")
    assert todo[3].endswith("（9月28日 22:43 前）")
    assert todo[-1].startswith("回复“接单 号”")

    clock.advance(2 * HOUR + 30 * MINUTE)  # 01:13: the urgent order and the door are overdue
    late = (await say(wechat, ADMIN, "逾期")).splitlines()
    assert late[0] == "超时工单 2 张："
    assert late[1].startswith(f"#{fight} 【急】") and late[1].endswith("（超时 2 小时，应于昨天 22:53 前）")
    assert late[2].startswith(f"#{door} ") and late[2].endswith("（超时 40 分钟，应于今天 00:33 前）")
    assert late[-1].startswith("回复“督办 号”")
    todo = (await say(wechat, LEADER, "待办")).splitlines()
    assert todo[1].endswith("（超时 2 小时，应于昨天 22:53 前）")  # 待办 says the same of what is late
