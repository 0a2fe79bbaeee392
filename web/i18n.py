"""Chinese first, English second: a message catalogue and Asia/Shanghai times.

Templates write the Chinese text through ``_()``: ``{{ _("我的班次") }}``. With the
``lang`` cookie set to ``en`` (the switch in the footer), ``_`` returns the English
entry of `EN`; a text without an entry stays Chinese (a test checks every template text
has one). Times are stored in UTC and shown in the zone of ``TIMEZONE`` (Asia/Shanghai).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Flask, current_app, g, request

LANG_COOKIE = "lang"
LANGS = ("zh", "en")

EN: dict[str, str] = {
    "Bastion 志愿者排班": "Bastion volunteer rostering",
    "疫情防控志愿者排班与任务调度系统。": "Volunteer rostering and task dispatch for epidemic control.",
    "志愿者登录": "Volunteer login",
    "工作人员登录": "Staff login",
    "手机号": "Phone number",
    "获取验证码": "Send me a code",
    "验证码": "Code",
    "登录": "Log in",
    "用户名": "Username",
    "密码": "Password",
    "退出登录": "Log out",
    "已退出登录。": "You are logged out.",
    "手机号格式不正确。": "That is not a phone number.",
    "如果该手机号已登记为志愿者，验证码已发送，5 分钟内有效。":
        "If this phone is registered as a volunteer's, a code was sent; it is valid for 5 minutes.",
    "重新获取验证码": "Request a new code",
    "用户名或密码错误。": "Wrong username or password.",
    "验证码错误或已过期，请重新获取。": "The code is wrong or has expired; request a new one.",
    "尝试次数过多，请 15 分钟后再试。": "Too many attempts; try again in 15 minutes.",
    "语言": "Language",
    "首页": "Home",
    "排班": "Rosters",
    "概览": "Dashboard",
    "导入": "Imports",
    "我的班次": "My shifts",
    "本支部": "My branch",
    "版本": "Version",
    "没有权限": "Forbidden",
    "你没有权限查看此页面。": "You may not see this page.",
    "页面不存在": "Not found",
    "找不到这个页面。": "There is no such page.",
    "请求无效": "Bad request",
    "表单已过期或无效，请刷新页面后重试。": "The form has expired or is invalid; reload the page and try again.",
    "返回首页": "Back to the home page",
    '。请查看最新情况后再发布。': '. Look at the roster again before publishing.',
    '下界': 'Bound',
    '下载模板': 'Download templates',
    '不可用时间': 'When I cannot work',
    '与已发布版本比较': 'Compare with the published version',
    '两个版本相同。': 'The two versions are the same.',
    '今天': 'Today',
    '保存': 'Save',
    '值': 'Value',
    '全天': 'All day',
    '全部': 'All',
    '列': 'Column',
    '创建': 'Created',
    '删除': 'Delete',
    '前一周': 'Previous week',
    '原因（可不填）': 'Reason (optional)',
    '参数': 'Parameters',
    '发布': 'Publish',
    '发布冲突：其他人已发布了版本 ': 'Publish conflict: someone else published version ',
    '只检查，不写入': 'Check only, write nothing',
    '可用志愿者': 'Volunteers with it',
    '名称': 'Name',
    '后一周': 'Next week',
    '周期': 'Period',
    '在岗志愿者': 'Active volunteers',
    '导入失败，未写入任何内容': 'Import failed; nothing was written',
    '导入类型': 'What to import',
    '岗位': 'Post',
    '已发布版本': 'Published version',
    '已发布版本 ': 'Published version ',
    '已用时间（秒）': 'Elapsed (s)',
    '希望不排': 'Rather not',
    '希望排班': 'I would like to work',
    '总人数': 'People',
    '技能': 'Skill',
    '排班意愿': 'My wishes',
    '排班（用人需求、不可用时间）': 'Roster (for demand and unavailability)',
    '文件（XLSX 或 CSV）': 'File (XLSX or CSV)',
    '新增': 'Added',
    '无': 'None',
    '日期': 'Date',
    '明天': 'Tomorrow',
    '最忙一天需要': 'Needed on the busiest day',
    '最近求解': 'Latest solve',
    '未保存，请修改以下错误：': 'Not saved; fix these:',
    # New roster period (rosters.new)
    "新建排班周期": "New roster period",
    "天数": "Days",
    "规则集": "Rule set",
    "创建排班周期": "Create the roster period",
    "如：雨花区 4月第2周": "e.g. Yuhua district, week 2 of April",
    "标准规则（与演示区相同）": "Standard rules (as in the demo district)",
    "复制规则：": "Copy the rules of: ",
    "已创建排班周期，请导入用人需求。": "Roster period created; now import its demand.",
    "日历链接已重置：旧链接已失效，请用新链接重新订阅。":
        "Calendar link reset: the old link no longer works; subscribe again with the new one.",
    '未满足': 'Unmet',
    '权重（留空为硬性规则）': 'Weight (blank: a hard rule)',
    '查看生成的版本': 'See the new version',
    '正在求解，查看进度': 'Solving: see the progress',
    '求解时间须在 1 到 3600 秒之间。': 'The time limit must be 1 to 3600 seconds.',
    '求解时间（秒）': 'Time limit (s)',
    '求解记录': 'Solve runs',
    '求解进度': 'Solve progress',
    '没有已发布的班次。': 'No published shifts.',
    '没有符合条件的岗位。': 'No posts match.',
    '点位': 'Site',
    '状态': 'Status',
    '班次': 'Shift',
    '生成': 'Generate',
    '生成排班': 'Generate a roster',
    '登记不可用': 'Add',
    '登记意愿': 'Add',
    '目标值': 'Objective',
    '确定发布此版本？': 'Publish this version?',
    '移除': 'Removed',
    '筛选': 'Filter',
    '行': 'Row',
    '街道': 'Street',
    '覆盖率 %': 'Coverage %',
    '规则': 'Rule',
    '规则已保存。': 'Rules saved.',
    '规则设置': 'Rule settings',
    '导出': 'Exports',
    '已发布版本（没有则为最新草稿）：': 'The published version (else the latest draft): ',
    '排班表 XLSX': 'Roster XLSX',
    '服务时长 XLSX': 'Service hours XLSX',
    '服务时长 CSV': 'Service hours CSV',
    '调整': 'Moved',
    '近期没有已发布的班次。': 'No published shifts coming up.',
    '还没有排班。': 'No rosters yet.',
    '还没有版本。': 'No versions yet.',
    '问题': 'Problem',
    '须为不小于 0 的整数（留空为硬性规则）': 'a whole number ≥ 0 (blank: a hard rule)',
    '须为数字': 'must be a number',
    '已登记不可用时间。': 'Saved.',
    '已登记意愿。': 'Saved.',
    '已删除。': 'Deleted.',
    '无法开始求解：': 'Could not start the solve: ',
    '请选择导入类型和文件。': 'Choose what to import and a file.',
    # dispatch, a volunteer's tasks, absences
    '人数': 'People',
    '今天及逾期': 'Today and overdue',
    '以下是任务的当前情况，请确认后再操作。': 'This is the task as it is now; check it before acting.',
    '以后': 'Later',
    '任务已创建。': 'Task created.',
    '任务已取消。': 'Task cancelled.',
    '任务已完成。': 'Task done.',
    '任务已开始。': 'Task started.',
    '任务类型': 'Task type',
    '冲突：任务已被他人修改': 'Conflict: someone else changed this task',
    '分钟': 'min',
    '创建任务': 'Create the task',
    '原因': 'Reason',
    '取消任务': 'Cancel the task',
    '取消原因': 'Why it is cancelled',
    '受影响的班次': 'Shifts affected',
    '地点': 'Place',
    '备注': 'Notes',
    '完成': 'Done',
    '已排除': 'Excluded',
    '已接单': 'Accepted',
    '已接单。': 'Accepted.',
    '已标记为未完成。': 'Marked as failed.',
    '已派单，等待志愿者答复。': 'Offered; waiting for the volunteer to answer.',
    '已登记缺勤': 'Absence recorded',
    '已自动派单，等待志愿者答复。': 'Dispatched automatically; waiting for the answers.',
    '已谢绝，任务将派给其他志愿者。': 'Declined; the task goes to someone else.',
    '开始': 'Start',
    '开始日期': 'From (date)',
    '开始班次': 'From (shift)',
    '当前版本': 'Version now',
    '当前状态': 'Status now',
    '只调整受影响的班次，其他人的安排尽量不动。': "Changes only what the absence affects; everyone else's shifts stay where possible.",
    '待答复': 'Awaiting your answer',
    '志愿者': 'Volunteer',
    '您看到的版本': 'The version you saw',
    '我的任务': 'My tasks',
    '截止': 'Due',
    '截止时间（北京时间）': 'Due (Beijing time)',
    '房间': 'Room',
    '按任务类型默认': "The task type's default",
    '接单': 'Accept',
    '接单后显示联系方式': 'contact shown once you accept',
    '推荐志愿者': 'Suggested volunteers',
    '操作': 'Actions',
    '新建任务': 'New task',
    '暂无任务。': 'No tasks.',
    '未完成原因': 'Why it failed',
    '查找': 'Search',
    '查找志愿者（姓名或手机号）': 'Find a volunteer (name or phone)',
    '标记为未完成': 'Mark as failed',
    '楼栋': 'Building',
    '求助居民': 'Requester',
    '求助居民姓名': "Requester's name",
    '求助居民电话': "Requester's phone",
    '没有任务。': 'No tasks.',
    '没有任务退回。': 'No tasks went back.',
    '没有找到志愿者。': 'No volunteer found.',
    '没有符合条件的志愿者。': 'Nobody is eligible.',
    '没有符合条件的志愿者，任务留在待派单队列。': 'Nobody is eligible; the task stays in the queue.',
    '派单': 'Dispatch',
    '派给': 'Offer to',
    '生成调整方案 (repair)': 'Propose a repair',
    '登记缺勤': 'Record the absence',
    '等待答复': 'Waiting for',
    '紧急程度': 'Urgency',
    '结束日期': 'To (date)',
    '结束班次': 'To (shift)',
    '结果': 'Outcome',
    '继续登记': 'Record another',
    '缺勤期间没有已发布的班次。': 'No published shifts in the absence.',
    '缺勤登记': 'Absences',
    '自动派单': 'Dispatch automatically',
    '说明（可不填）': 'Note (optional)',
    '请先查找志愿者。': 'Search for the volunteer first.',
    '请在此时间前答复': 'Answer by',
    '谢绝': 'Decline',
    '近期缺勤': 'Current and coming absences',
    '返回派单': 'Back to dispatch',
    '退回派单队列的任务': 'Tasks back in the queue',
    '预计用时（分钟，留空按类型默认）': "Duration (minutes; blank: the type's default)",
    # repairs
    '调整方案': 'Repair proposal',
    '缺勤': 'Absent',
    '基于已发布版本': 'from published version',
    '正在计算调整方案…': 'Computing the proposal…',
    '已采纳，发布为版本': 'Accepted, published as version',
    '调整内容': 'Changes',
    '没有需要调整的班次。': 'No shift needs to change.',
    '变动': 'Change',
    '调班': 'Move',
    '顶替': 'replacing',
    '仍未覆盖的班次': 'Shifts still uncovered',
    '缺': 'short',
    '采纳并发布此调整方案？': 'Accept and publish this proposal?',
    '采纳并发布': 'Accept and publish',
    '拒绝': 'Reject',
    '手工调整': 'Edit by hand',
    '还没有发布的版本。': 'No published version yet.',
    '违反硬性规则，不能调整': 'Breaks a hard rule: not allowed',
    '违反软性规则（需确认）': 'Breaks soft rules (confirm to go ahead)',
    '代价': 'cost',
    '没有违反任何规则。': 'Breaks no rule.',
    '志愿者编号': 'Volunteer id',
    '调班：原班次': 'Move: the shift it leaves',
    '检查': 'Check',
    '我已了解上述软性规则的违反，仍要调整': 'I know about the soft breaches above; make the change',
    '调整并发布': 'Change and publish',
    '该缺勤没有影响已发布的班次，无需调整。': 'The absence touches no published shift; nothing to repair.',
    '无法开始计算调整方案：': 'Could not start the repair: ',
    '已为每个受影响的排班生成调整方案：': 'A proposal for each roster it touches: ',
    '排班已有新的发布版本，此调整方案已过期，请重新生成。': 'The roster has a newer published version: this proposal is stale; request a new one.',
    '发布冲突：页面显示的已发布版本不是最新的，请刷新后再试。': 'Publish conflict: the page showed an older published version; reload and try again.',
    '已采纳调整方案，发布为版本 ': 'Proposal accepted, published as version ',
    '已拒绝调整方案。': 'Proposal rejected.',
    '已调整并发布为版本 ': 'Changed and published as version ',
    '通知': 'Notifications',
    '发送失败和等待发送的短信通知。失败的通知可重新发送。':
        'Text messages that failed or are waiting to be sent. A failed one can be sent again.',
    '类型': 'Kind',
    '尝试次数': 'Attempts',
    '下次发送': 'Next try',
    '错误': 'Error',
    '重试': 'Retry',
    '没有待发送或失败的通知。': 'No notification is waiting or failed.',
    '任务派单': 'Task offer',
    '排班变动': 'Shift change',
    '上岗提醒': 'Shift reminder',
    '待发送': 'Waiting',
    '发送中': 'Sending',
    '已发送': 'Sent',
    '发送失败': 'Failed',
    '已作废（未发送）': 'Obsolete (not sent)',
    '已作废的派单通知（发送前派单已超时、撤回或已答复）未发送，显示昨天以来的。':
        'Task offer notices whose offer expired, was withdrawn or answered before they went '
        'out are obsolete and not sent; those since yesterday are listed.',
    '派单已超时': 'the offer expired',
    '派单已撤回': 'the offer was withdrawn',
    '已接受': 'accepted',
    '已拒绝': 'declined',
    '派单已删除': 'the offer was deleted',
    '该通知正在发送或已发送，无需重试。': 'This notification is being sent or was sent: no retry needed.',
    '已重新加入发送队列。': 'Queued to be sent again.',
    # dispatch2: the site wall board and the secretary's board additions
    '值班看板': 'Duty board',
    '当前值班': 'On duty now',
    '下一班': 'Next shift',
    '人': 'people',
    '无人': 'nobody',
    '缺技能': 'missing skill',
    '本班次无排班。': 'Nobody is rostered for this shift.',
    '当前没有值班班次。': 'No shift is running now.',
    '没有已发布的下一班。': 'No next shift is published.',
    '每分钟自动刷新。': 'Reloads every minute.',
    '一键派单': 'One-click offer',
    '没有近期缺勤。': 'No recent absences.',
    '待处理的调整方案': 'Pending repair proposals',
    '没有待处理的调整方案。': 'No pending repair proposals.',
    '值班看板（电视）': 'Duty board (TV)',
}


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(_=gettext, current_lang=current_lang)
    app.jinja_env.filters.update(localtime=localtime, localdate=localdate)


def current_lang() -> str:
    """``en`` if the language cookie says so, else ``zh``."""
    lang = g.get("lang")
    if lang is None:
        lang = g.lang = "en" if request.cookies.get(LANG_COOKIE) == "en" else "zh"
    return str(lang)


def gettext(text: str) -> str:
    """`text` (Chinese) in the current language."""
    if current_lang() == "en":
        return EN.get(text, text)
    return text


DEFAULT_ZONE = "Asia/Shanghai"


def zone() -> ZoneInfo:
    """The app's time zone (``TIMEZONE``); Asia/Shanghai outside a request."""
    name = current_app.config.get("TIMEZONE") if current_app else None
    return ZoneInfo(name or DEFAULT_ZONE)


def local_now() -> dt.datetime:
    """Now, in the app's time zone (Asia/Shanghai)."""
    return dt.datetime.now(zone())


def localtime(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An aware timestamp as local wall-clock time (``2022-04-04 16:00``)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}")
    return value.astimezone(zone()).strftime(fmt)


WEEKDAYS_ZH = "一二三四五六日"
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def localdate(value: dt.date | None) -> str:
    """A date with its weekday: ``4月4日 周一`` / ``Mon 4 Apr``."""
    if value is None:
        return ""
    if current_lang() == "en":
        return f"{WEEKDAYS_EN[value.weekday()]} {value.day} {value.strftime('%b')}"
    return f"{value.month}月{value.day}日 周{WEEKDAYS_ZH[value.weekday()]}"
