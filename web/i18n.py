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
