"""Every sentence the bot says to a person, in one place: short, polite, plain simplified Chinese."""

from __future__ import annotations

WELCOME = (
    "您好，欢迎关注！这里是社区网格服务号。\n"
    "小区卫生、设施损坏、噪音、物业、安全隐患等问题，直接发文字、语音或照片告诉我们，"
    "我们会交给您所在网格的党支部处理，并随时告诉您进展。\n"
    "回复“帮助”查看用法。紧急情况请直接拨打 110 / 119 / 120。"
)

# The frames of each role's help; the commands in it are listed from their declarations
# (handlers/commands.py), so the help says exactly what is accepted.
HELP_RESIDENT_HEAD = "使用说明：\n1. 直接描述问题和地点，例如“筱塘新村3号楼楼道灯坏了”，可附照片或位置"
HELP_RESIDENT_FOOT = "紧急情况请直接拨打 110 / 119 / 120。"
HELP_STAFF_HEAD = "工作人员您好，可用指令（号 = 工单号）："
HELP_ADMIN_HEAD = "管理员您好，可用指令（号 = 工单号）："

VOICE_CHOICES = ("设施维修", "环境卫生", "噪音扰民", "水电燃气", "其他")
VOICE_UNRECOGNISED = (
    "收到您的语音，但没能识别出文字。请用一句话写下问题和地点，或回复数字选类别："
    + " ".join(f"{i} {label}" for i, label in enumerate(VOICE_CHOICES, 1))
    + "。"
)
VOICE_ONLY_TEXT = "（语音留言，未能识别文字，请收听）"
UNSUPPORTED = "抱歉，目前只能处理文字、语音、图片和位置。请用文字描述您的问题。"
IMAGE_RECEIVED = "照片已收到。请再用一句话说明是什么问题、在哪里。"
LOCATION_RECEIVED = "位置已收到。请再用一句话说明遇到了什么问题。"
THROTTLED = "您发送得太快了，请稍等一分钟再发。您的消息我们已经记下。"
WECOM_STAFF_ONLY = "您好，这个企业微信应用仅供网格工作人员使用。居民反映问题、查询进度，请使用社区公众号。"
BUSY = "抱歉，系统正忙，请稍后再发一次。您的消息我们已经记下。"

# --- work orders: to residents ------------------------------------------------------------------

ASK_PLACE = "请问问题在哪个小区/哪栋楼？例如“筱塘新村3号楼”。也可以直接发送位置。"
PLACE_NOT_FOUND = (
    "没有找到这个地点。请写小区名或路名门牌，例如“筱塘新村3号楼”，或点“+”发送位置。回复“取消”可放弃。"
)
REPORT_CANCELLED = "好的，已取消。有需要随时再告诉我们。"
GREETING = "您好！请直接描述遇到的问题和地点，例如“筱塘新村3号楼楼道灯坏了”，也可以发语音或照片。"
# What the intake gate answers a message that is not a report (nlp/gate.py kinds); nothing is opened.
CHAT_REPLIES = {
    "greeting": GREETING,
    "thanks": "不客气！有需要随时告诉我们。",
    "confirm": "好的。如还有问题，直接描述问题和地点即可。",
    "done": "好的，问题解决了就好！有需要随时告诉我们。",
    "praise": "谢谢您的鼓励，我们会继续努力！有问题随时告诉我们。",
    "bot": (
        "我是社区网格服务号的助手：您反映的问题会交给所在网格的党支部处理，并随时告诉您进展。"
        "直接描述问题和地点即可，回复“帮助”看用法。紧急情况请直接拨打 110 / 119 / 120。"
    ),
    "chatter": "您好！如需反映问题，请直接描述问题和地点，例如“筱塘新村3号楼楼道灯坏了”。",
    "emoji": "收到～如需反映问题，请用文字描述问题和地点。",
    "punctuation": "收到～如需反映问题，请用文字描述问题和地点。",
}
MENU = "请回复数字：\n1 反映问题\n2 查询我的工单\n3 使用帮助"
MENU_REPORT = "请直接描述问题和地点，例如“筱塘新村3号楼楼道灯坏了”，也可以发语音、照片或位置。"
PLACE_ONLY = "这里遇到了什么问题？请简单说一下，例如“楼道灯坏了”。如这是您家的地址，回复“绑定”即可记住它。"
PLACE_UNKNOWN_ONLY = "这里遇到了什么问题？请把问题和地点一起告诉我们，例如“3号楼楼道灯坏了”。"
NO_ORDERS = "您还没有反映过问题。直接描述问题和地点即可提交。"
NOT_YOUR_ORDER = "抱歉，没有找到您提交的工单 #{n}。回复“查询”可查看您的工单。"
RATE_ASK = "请为本次办理评价，回复数字：\n1 满意\n2 基本满意\n3 不满意"
RATE_THANKS = "感谢您的评价（{rating}）！工单 #{n} 已关闭。"
RATE_REOPENED = "抱歉没能让您满意。工单 #{n} 已重新交办，社区会跟进处理。"
ALREADY_REPORTED = "您已经反映过这个问题（工单 #{n}），正在处理中。回复“查询 {n}”看进度，“催办 {n}”催一催。"
DUPLICATE_LINKED = "已有居民反映过这个问题（工单 #{n}，{category}），正在处理。已为您关注，进展会同时告诉您。"
CLARIFY = "请问您反映的是哪一类问题？回复数字：\n{choices}\n回复“取消”可放弃。"
PHOTO_ADDED = "照片已补充到工单 #{n}。"
# What to do now, by the kind of emergency (nlp [urgent.<kind>]): the first words of the reply.
EMERGENCY = {
    "fire": "情况紧急！请立即撤离到安全的地方，拨打 119，不要乘电梯。",
    "gas": "情况紧急！请不要开关电器、不要点火，开窗后马上离开，到室外拨打 119。",
    "rescue": "情况紧急！请立即拨打 119 求救，先保证自身安全，不要贸然施救。",
    "police": "情况紧急！请先到安全的地方，立即拨打 110 报警。",
    "medical": "情况紧急！请立即拨打 120 急救电话，不要随意搬动伤者。",
    "water": "情况紧急！请先远离进水处，能关总水阀就关上，不要碰电器，并拨打物业值班电话或供水抢修电话。",
    "power": "情况紧急！请远离冒火花的地方，不要触碰电线和电箱，并拨打物业值班电话或 95598 供电抢修。",
    "structure": "情况紧急！请立即远离下方和周围，提醒路过的人绕行，并拨打物业值班电话；有人受伤请拨打 120。",
    "traffic": "情况紧急！请远离车道，提醒行人注意安全，拨打 122 交通事故报警；有人受伤请拨打 120。",
    "any": "情况紧急！请先确保人身安全，立即拨打 119（火警）/110（报警）/120（急救）。",
}
# The number of each kind, and a short clause naming it when a second kind adds a different number.
EMERGENCY_NUMBER = {
    "fire": "119",
    "gas": "119",
    "rescue": "119",
    "police": "110",
    "medical": "120",
    "traffic": "122",
}
EMERGENCY_ALSO = {
    "fire": "着火请拨打 119。",
    "gas": "闻到燃气味请开窗离开、拨打 119。",
    "rescue": "有人被困请拨打 119。",
    "police": "有人行凶请拨打 110。",
    "medical": "有人受伤请拨打 120。",
    "traffic": "车辆失控请远离车道、拨打 122。",
}
URGENT_RECORDED = "已记录为紧急工单 #{n}，社区已收到提醒。请告诉我们具体地点（小区和楼栋），或点“+”发送位置。"
URGENT_STILL_WAITING = (
    "紧急工单 #{n} 已记录，社区已收到提醒。请告诉我们具体地点（小区和楼栋），或点“+”发送位置。"
)
URGENT_KEPT = "好的。紧急工单 #{n} 已记录，社区会电话联系您；如已处理好，请回复“撤销 {n}”。"


def accepted_reply(n: int, category: str, branch: str, within: str, urgent: bool) -> str:
    return (
        f"已受理，工单号 #{n}（{category}）。\n"
        f"由{branch}处理，{'已加急，' if urgent else ''}预计 {within}内响应。\n"
        "回复“查询”可看进度。"
    )


def order_accepted(n: int, who: str) -> str:
    return f"您反映的问题（工单 #{n}）已由{who}接单，正在处理。"


def order_progress(n: int, text: str) -> str:
    return f"工单 #{n} 有新进展：{text}"


def order_resolved(n: int, text: str) -> str:
    return f"工单 #{n} 已办结：{text}\n" + RATE_ASK


def order_resolved_follower(n: int, text: str) -> str:
    return f"您关注的工单 #{n} 已办结：{text}\n如仍有问题，请再告诉我们。"


# --- work orders: to staff ----------------------------------------------------------------------


def new_order(
    n: int, category: str, place: str, words: str, urgent: bool, photos: int = 0, voices: int = 0
) -> str:
    head = f"【{'紧急' if urgent else '新'}工单 #{n}】{category}"
    attached = "，".join(
        part
        for part in (f"附照片 {photos} 张" if photos else "", f"附语音 {voices} 条" if voices else "")
        if part
    )
    return (
        f"{head}\n地点：{place}\n居民反映：{words}\n"
        + (f"{attached}\n" if attached else "")
        + f"请回复“接单 {n}”接单。"
    )


def media_counts(media: list[dict[str, object]] | None) -> dict[str, int]:
    """How many photos and voice messages an order carries (its `media` list)."""
    items = media or []
    voices = sum(1 for m in items if m.get("kind") == "voice")
    return {"photos": len(items) - voices, "voices": voices}


def urgent_unplaced(n: int, category: str, words: str, near: str | None) -> str:
    where = f"（居民绑定的地址在{near}）" if near else ""
    return (
        f"【紧急·地点待确认】工单 #{n}（{category}）\n居民反映：{words}\n"
        f"居民还没说明地点{where}，已请其补充。请尽快联系，或回复“派单 {n} 网格或人”。"
    )


def urgent_alert(n: int, category: str, place: str, words: str, assignee: str) -> str:
    return f"【紧急工单 #{n}】{category}\n地点：{place}\n居民反映：{words}\n已派给{assignee}，请督促尽快处置。回复“状态 {n}”查看。"


def informed(n: int, category: str, place: str, department: str) -> str:
    return f"【知悉】工单 #{n}（{category}，{place}）已派给{department}处理。回复“状态 {n}”查看。"


def staff_done(n: int, what: str, hint: str) -> str:
    return f"工单 #{n} {what}。{hint}"


def reopened_notice(n: int, words: str) -> str:
    return f"【重办】工单 #{n} 居民评价不满意，已退回重新处理。\n居民反映：{words}\n处理后请回复“办结 {n} 结果”。"


def reopened_admin(n: int, who: str) -> str:
    return f"【督办提醒】工单 #{n} 居民不满意，已退回{who}重新处理。回复“状态 {n}”查看。"


def rated_notice(n: int, rating: str) -> str:
    return f"工单 #{n} 居民评价：{rating}。工单已关闭，辛苦了！"


NOT_ALLOWED = "抱歉，您没有权限操作工单 #{n}。如有疑问请联系社区。"
CANCELLED = "已撤销工单 #{n}。如还需要帮助，随时告诉我们。"
CANCELLED_NOTICE = "工单 #{n} 居民已撤销，无需再处理。"
URGED = "已催办工单 #{n}，我们会尽快处理。"
URGED_RECENTLY = "工单 #{n} 刚催办过，请稍候，有进展会第一时间告诉您。"
URGE_NOTICE = "【催办】居民催办工单 #{n}（{category}）：{words}\n请尽快处理，回复“进展 {n} 内容”告知居民。"
URGE_CLOSED = "工单 #{n} 已{state}，不需要催办。"
BIND_ASK = "请回复您的地址，例如“绑定 筱塘新村3号楼”，或直接发送位置。"
BOUND = "已绑定：{place}。以后反映问题不写地址，也会交给{branch}。"
TRANSFERRED = "工单 #{n} 已转派给{who}。"
TRANSFER_NOTICE = "工单 #{n} 已转交{who}处理，请耐心等待。"
RETURNED = "工单 #{n} 已退回社区，社区会重新派单。"
RETURN_NOTICE = "【退单】工单 #{n}（{category}）被{who}退回：{reason}\n请回复“派单 {n} 网格或人”重新派单。"
EXTENDED = "工单 #{n} 已延期 {days} 天，新的办结时限：{due}。"
EXTEND_NOTICE = "工单 #{n} 需要延期 {days} 天办结，原因：{reason}。给您带来不便，敬请谅解。"
EXTEND_ASKED = "延期超过 3 天需社区同意，已提交社区审批。"
EXTEND_REQUEST = (
    "【延期申请】{who}申请工单 #{n} 延期 {days} 天：{reason}\n同意请回复“延期 {n} {days} {reason}”。"
)
DISPATCHED = "工单 #{n} 已派给{who}。"
SUPERVISED = "已督办工单 #{n}，承办人会收到提醒。"
SUPERVISE_NOTICE = "【督办】{who}督办工单 #{n}（{category}）：{words}\n请尽快处理，回复“进展 {n} 内容”反馈。"
CLAIMED = "您已领办工单 #{n}，感谢担当！有进展请回复“进展 {n} 内容”。"
CLAIM_NOTICE = "工单 #{n} 已由党员{who}领办。"
DASHBOARD_LINK = "指挥中心登录链接（10 分钟内有效，仅可使用一次，请勿转发）：\n{url}"
NOTHING_OVERDUE = "目前没有超时工单，也没有未送达的通知。"
NO_ORDERS_IN_LIST = "没有符合条件的工单。"
NO_SUCH_ORDER = "没有找到工单 #{n}，请核对工单号。"
ADMIN_ONLY = "抱歉，“{word}”只有社区或街道管理员可以使用。"
STAFF_ONLY = "抱歉，“{word}”是工作人员指令。居民直接描述问题即可提交。"


# --- timers -------------------------------------------------------------------------------------
# Reminders, escalations (吹哨) and their per-person summaries, sent by bot/workers/timers.py.

TIMER_LIST_MAX = 8  # orders listed in one summary; the rest are counted ("等 N 张")


def timer_span(seconds: float) -> str:
    """A readable length of time, rounded down: 20 秒, 45 分钟, 3 小时, 2 天."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} 秒"
    if seconds < 3600:
        return f"{max(1, seconds // 60)} 分钟"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} 小时"
    return f"{seconds // 86400} 天"


def timer_status(verb: str, seconds_to_due: float) -> str:
    """Where an order stands against its deadline: 距接单时限还剩 1 小时 / 已到… / 超时未接单 2 小时."""
    if seconds_to_due > 0:
        return f"距{verb}时限还剩 {timer_span(seconds_to_due)}"
    if -seconds_to_due < 5:  # the deadline's own step, taken on time
        return f"已到{verb}时限"
    return f"超时未{verb} {timer_span(-seconds_to_due)}"


def timer_hint(verb: str, n: int) -> str:
    """What to type next, for the person who must act."""
    if verb == "接单":
        return f"请回复“接单 {n}”接单。"
    if verb == "办结":
        return f"办好后请回复“办结 {n} 结果”。"
    return f"请尽快派单，回复“状态 {n}”查看。"


def timer_remind(n: int, category: str, status: str, deadline: str, words: str, hint: str) -> str:
    """To whoever must act: where the order stands and its deadline (时限 今天 15:35)."""
    return f"【工单提醒】工单 #{n}（{category}）{status}（时限 {deadline}）。\n问题：{words}\n{hint}"


def timer_escalate(
    n: int, category: str, grid: str, status: str, deadline: str, who: str, below: list[str], words: str
) -> str:
    """To a level above: what was missed and since when, who holds it, and who was told before them."""
    told = f"已提醒{below[0]}" + "".join(f"、{b}" for b in below[1:]) + "。" if below else ""
    return (
        f"【超时督办】工单 #{n}（{category}，{grid}）{status}（时限 {deadline}），承办：{who}。{told}\n"
        f"问题：{words}\n请督促办理，回复“状态 {n}”查看。"
    )


def timer_line(n: int, category: str, status: str, who: str | None = None) -> str:
    """One order in a summary; `who` (the assignee) for orders the reader oversees."""
    return f"#{n} {category} {status}" + (f"（承办：{who}）" if who else "")


def timer_summary(lines: list[str], own: bool, oversee: bool) -> str:
    """Several orders in one message: the reader's own (`own`), others' to oversee (`oversee`), or both."""
    if own and not oversee:
        head, tail = f"您有 {len(lines)} 张工单需要处理：", "回复“待办”查看。"
    elif oversee and not own:
        head, tail = f"有 {len(lines)} 张工单超时，请督促办理：", "回复“状态 号”查看详情。"
    else:
        head, tail = f"您有 {len(lines)} 张工单需要关注：", "回复“待办”或“状态 号”查看。"
    shown = lines[:TIMER_LIST_MAX]
    if len(lines) > len(shown):
        shown.append(f"…等 {len(lines)} 张")
    return "\n".join([head, *shown, tail])


# --- reach: place codes (扫码报事), the menu, 双报到, hot spots, Open311 ---------------------------

SCANNED_WELCOME = "欢迎关注社区网格服务号！\n"
SCANNED = (
    "您好，这里是{place}（由{branch}负责）。请描述遇到的问题，可以附照片，不用再写地址。\n"
    "紧急情况请直接拨打 110 / 119 / 120。"
)
SCANNED_BY_STAFF = "这是{place}（{grid}）的报事码。居民扫码后直接描述问题，工单就会派到本网格。"
HOW_TO_REPORT = (
    "怎样报事：直接发文字或语音，说清问题和地点，例如“筱塘新村3号楼楼道灯坏了”，可以附照片或位置。\n"
    "扫楼道里张贴的二维码报事，不用写地址。紧急情况请直接拨打 110 / 119 / 120。"
)
HOTLINES = (
    "便民电话：\n"
    "火警 119 · 报警 110 · 急救 120 · 交通事故 122\n"
    "政务服务便民热线 12345\n"
    "供电服务 95598\n"
    "燃气、供水报修请拨打缴费单上的服务电话。\n"
    "其他问题直接在这里告诉我们。"
)

# 双报到: in-service Party members register with a community (handlers/registration.py).
REGISTER_STAFF = "您已是{unit}的{role}，无需报到。回复“帮助”查看可用指令。"
REGISTER_PENDING = "您的报到申请 #{n} 正在等待社区审核，审核后会通知您。"
REGISTER_DONE = "您已报到到{grid}，可以领办本网格的工单：回复“待办”看工单，“领单 号”领办。"
REGISTER_NO_COMMUNITY = "没有找到“{word}”。请写社区全称，例如：报到 筱塘社区 第一网格 张三\n可选社区：{names}"
REGISTERED = "已提交报到申请 #{n}（{where}）。社区审核后会通知您。"
REGISTERED_NO_ADMIN = "已提交报到申请 #{n}（{where}）。该社区暂未设管理员，请直接联系社区。"
NAMELESS = "未留姓名的党员（用户尾号 {tail}）"
APPROVE_NEEDS_GRID = "报到申请 #{n} 没有写网格。请写上网格，例如：同意 {n} {example}"
APPROVED = "已同意报到申请 #{n}：{who}成为{grid}的报到党员。"
APPROVED_NOTICE = (
    "您的报到已通过！您现在是{branch}的报到党员，可以领办本网格的工单：\n"
    "回复“待办”看工单，“领单 号”领办。回复“帮助”看全部指令。"
)
REJECTED = "已拒绝报到申请 #{n}。"
WITHDRAWN = "已撤销 #{n} 的报到：{who}不再是报到党员，其承办中的工单请用“派单 号 网格或人”改派。"
WITHDRAWN_NOTICE = "您的报到（#{n}）已由社区撤销{reason}。感谢您的付出！如有疑问请联系社区。"
APPROVE_UNKNOWN_GRID = "没有找到“{word}”。请写{community}的网格，例如：同意 {n} {example}"
REJECTED_NOTICE = "您的报到申请 #{n} 未通过{reason}。如有疑问请联系社区。"
NO_SUCH_REGISTRATION = "没有找到报到申请 #{n}，请核对编号。"
REGISTRATION_DECIDED = "报到申请 #{n} 已经{state}，无需再处理。"
REGISTRATION_NOT_YOURS = "抱歉，报到申请 #{n} 不属于您管理的社区。"


def register_notice(n: int, who: str, where: str, has_grid: bool) -> str:
    agree = f"同意 {n}" if has_grid else f"同意 {n} 网格名"
    return (
        f"【党员报到 #{n}】{who}申请到{where}报到（在职党员双报到）。\n"
        f"同意请回复“{agree}”，不同意请回复“拒绝 {n} 原因”。"
    )


# 主动治理: hot spots (handlers/hotspots.py).
NO_HOTSPOTS = "目前没有热点。同一网格同类问题集中出现时，会第一时间提醒您。"


def hotspot_alert(grid: str, category: str, count: int, window: str, usual: float, lines: list[str]) -> str:
    normal = f"（平时约 {usual:.1f} 条）" if usual >= 0.05 else ""
    return (
        f"【热点预警】{grid} 近 {window}收到 {count} 条“{category}”反映{normal}：\n"
        + "\n".join(lines)
        + "\n请研判是否集中处置。回复“热点”查看，“状态 号”看详情。"
    )
