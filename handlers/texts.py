"""Every sentence the bot says to a person, in one place: short, polite, plain simplified Chinese."""

from __future__ import annotations

WELCOME = (
    "您好，欢迎关注！这里是社区网格服务号。\n"
    "小区卫生、设施损坏、噪音、物业、安全隐患等问题，直接发文字、语音或照片告诉我们，"
    "我们会交给您所在网格的党支部处理，并随时告诉您进展。\n"
    "回复“帮助”查看用法。紧急情况请直接拨打 110 / 119 / 120。"
)

HELP_RESIDENT = (
    "使用说明：\n"
    "1. 直接描述问题，例如“筱塘新村3号楼楼道灯坏了”，可附照片或位置\n"
    "2. 回复“查询”看办理进度\n"
    "3. 回复“帮助”再次查看本说明\n"
    "紧急情况请直接拨打 110 / 119 / 120。"
)

HELP_STAFF = (
    "工作人员您好，可用指令：\n"
    "待办 — 我的待办工单\n"
    "接单 号 — 接收工单\n"
    "进展 号 内容 — 记录进展\n"
    "办结 号 内容 — 办结工单\n"
    "帮助 — 查看本说明"
)

VOICE_UNCLEAR = "抱歉，没有听清您的语音。请再说一遍，或直接发文字。"
UNSUPPORTED = "抱歉，目前只能处理文字、语音、图片和位置。请用文字描述您的问题。"
IMAGE_RECEIVED = "照片已收到。请再用一句话说明是什么问题、在哪里。"
LOCATION_RECEIVED = "位置已收到。请再用一句话说明遇到了什么问题。"
THROTTLED = "您发送得太快了，请稍等一分钟再发。您的消息我们已经记下。"
BUSY = "抱歉，系统正忙，请稍后再发一次。您的消息我们已经记下。"

# --- work orders: to residents ------------------------------------------------------------------

ASK_PLACE = "请问问题在哪个小区/哪栋楼？例如“筱塘新村3号楼”。也可以直接发送位置。"
PLACE_NOT_FOUND = (
    "没有找到这个地点。请写小区名或路名门牌，例如“筱塘新村3号楼”，或点“+”发送位置。回复“取消”可放弃。"
)
REPORT_CANCELLED = "好的，已取消。有需要随时再告诉我们。"
GREETING = "您好！请直接描述遇到的问题和地点，例如“筱塘新村3号楼楼道灯坏了”，也可以发语音或照片。"
NO_ORDERS = "您还没有反映过问题。直接描述问题和地点即可提交。"
NOT_YOUR_ORDER = "抱歉，没有找到您提交的工单 #{n}。回复“查询”可查看您的工单。"
RATE_ASK = "请为本次办理评价，回复数字：\n1 满意\n2 基本满意\n3 不满意"
RATE_THANKS = "感谢您的评价（{rating}）！工单 #{n} 已关闭。"
RATE_REOPENED = "抱歉没能让您满意。工单 #{n} 已重新交办，社区会跟进处理。"
PHOTO_ADDED = "照片已补充到工单 #{n}。"
EMERGENCY = {
    "fire": "情况紧急！请先撤离到安全处，立即拨打 119。",
    "medical": "情况紧急！请立即拨打 120 急救电话。",
    "police": "情况紧急！请注意安全，立即拨打 110 报警。",
    "any": "情况紧急！请先确保人身安全，立即拨打 119（火警）/110（报警）/120（急救）。",
}


def accepted_reply(n: int, category: str, branch: str, within: str, urgent: bool) -> str:
    return (
        f"已受理，工单号 #{n}（{category}）。\n"
        f"由{branch}处理，{'已加急，' if urgent else ''}预计 {within} 内响应。\n"
        "回复“查询”可看进度。"
    )


def order_accepted(n: int, who: str) -> str:
    return f"您反映的问题（工单 #{n}）已由{who}接单，正在处理。"


def order_progress(n: int, text: str) -> str:
    return f"工单 #{n} 有新进展：{text}"


def order_resolved(n: int, text: str) -> str:
    return f"工单 #{n} 已办结：{text}\n" + RATE_ASK


# --- work orders: to staff ----------------------------------------------------------------------


def new_order(n: int, category: str, place: str, words: str, urgent: bool) -> str:
    head = f"【{'紧急' if urgent else '新'}工单 #{n}】{category}"
    return f"{head}\n地点：{place}\n居民反映：{words}\n请回复“接单 {n}”接单。"


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
NO_SUCH_ORDER = "没有找到工单 #{n}，请核对工单号。"
ADMIN_ONLY = "抱歉，“{word}”只有社区或街道管理员可以使用。"
STAFF_ONLY = "抱歉，“{word}”是工作人员指令。居民直接描述问题即可提交。"
