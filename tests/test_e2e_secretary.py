"""End to end in Debian's Chromium: a secretary handles an absence and an urgent call.

A secretary records a volunteer's sick leave, asks for the repair and accepts it (a new
published version where the replacement has the shift, and the absent volunteer's feed
shows it cancelled); then she takes an urgent medicine delivery and offers it, and the
volunteer accepts it on a phone. The district is a small hand-built one (two sites of
the secretary, five volunteers with phones, a two-day roster from tomorrow, the greedy
roster published), made through the services; the app runs on a fresh migrated SQLite
file behind the live server, with CSRF on and repair jobs in threads of this process.
Every page visited must be free of console errors and CSP violations.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from icalendar import Calendar
from sqlalchemy import select

from scheduler import db, problems, queues, rosters
from scheduler.accounts import services as accounts
from scheduler.calendars import services as calendars
from scheduler.dispatch import services as dispatch
from scheduler.dispatch.models import Task
from scheduler.models import Assignment, Post, ShiftTemplate, Volunteer
from solver.greedy import greedy
from solver.problem import parse_problem
from solver.rules import instantiate
from solver.solve import solution_document
from tests.fixtures import problems as factory
from tests.fixtures.pages import watched_page
from web import create_app

pytest_plugins = ["tests.fixtures.db", "tests.fixtures.browser"]

SHANGHAI = ZoneInfo("Asia/Shanghai")
PASSWORD = "e2e-secretary-1"
SECRET = "e2e-secretary-secret"
#: Codes "sent" by the app (``OTP_SENDER`` names `send_code`): (phone, code).
SENT: list[tuple[str, str]] = []
NAMES = ["赵一鸣", "钱二丽", "孙三强", "李四海", "周五洲"]
RESIDENT, RESIDENT_PHONE = "欧阳娜娜", "13700137000"


def send_code(phone: str, code: str) -> None:
    SENT.append((phone, code))


@dataclass
class District:
    base: str
    start: dt.date
    roster_id: int
    problems: list[str] = field(default_factory=list)


@pytest.fixture
def district(new_database: Callable[[str], str], live_server: Callable[[Flask], str],
             monkeypatch: pytest.MonkeyPatch) -> Iterator[District]:
    url = new_database("sqlite")
    db.upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)  # the in-process repair jobs read it
    monkeypatch.delenv("REDIS_URL", raising=False)
    start = dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=1)
    doc = factory.make_problem(
        start=start.isoformat(), days=2, name="东岸街道 两日排班",
        sites=[factory.site("e2e-east", posts=["east-gate"], name="东塘小区"),
               factory.site("e2e-west", posts=["west-gate"], name="西湖卡口")],
        demand=[factory.demand("east-gate", "M", 1, 1), factory.demand("west-gate", "M", 1, 1)],
        volunteers=[dict(factory.volunteer(f"v{i}", name=name), phone=f"+86139123400{i:02d}")
                    for i, name in enumerate(NAMES, start=1)])
    for post in ("east-gate", "west-gate"):  # readable post names
        next(p for s in doc["sites"] for p in s["posts"] if p["id"] == post)["name"] = "门岗"
    with db.session_scope() as session:
        roster = problems.load_problem(session, doc, actor="e2e")
        problem = parse_problem(problems.roster_problem(session, roster.id))
        rules = instantiate(problem)
        solution = solution_document(problem, rules, greedy(problem, rules), "FEASIBLE", 0, 0.0)
        version = problems.store_solution(session, roster.id, solution, actor="e2e")
        rosters.publish(session, roster.id, version.number, None, "e2e")
        dispatch.ensure_task_types(session)
        accounts.create_staff_user(session, "e2e-secretary", "secretary", PASSWORD, "e2e",
                                   site_codes=["e2e-east", "e2e-west"],
                                   display_name="东岸书记")
        roster_id = roster.id
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "WTF_CSRF_ENABLED": True,
                      "OTP_SENDER": "tests.test_e2e_secretary:send_code", "CLOCK": False})
    SENT.clear()
    base = live_server(app)
    app.config["BASE_URL"] = base
    yield District(base, start, roster_id)
    queues.wait_local(timeout=30)
    db.get_engine().dispose()


def _shifts(version_id: int) -> set[tuple[int, dt.date, str, str]]:
    """(volunteer id, date, shift code, post code) of a version."""
    with db.session_scope() as session:
        rows = session.execute(
            select(Assignment.volunteer_id, Assignment.date, ShiftTemplate.code, Post.code)
            .join(ShiftTemplate, ShiftTemplate.id == Assignment.shift_id)
            .join(Post, Post.id == Assignment.post_id)
            .where(Assignment.version_id == version_id)).all()
        return {(v, d, s, p) for v, d, s, p in rows}


def _published(roster_id: int) -> tuple[int, int]:
    with db.session_scope() as session:
        version = rosters.published_version(session, roster_id)
        assert version is not None
        return version.id, version.number


def test_secretary_repairs_an_absence_and_dispatches_an_urgent_task(
        browser: Any, district: District) -> None:
    base, start = district.base, district.start
    version_id, number = _published(district.roster_id)
    assert number == 1
    before = _shifts(version_id)
    # A: someone working tomorrow; three of the five are then free to replace them.
    a_id, day, shift, post = min((r for r in before if r[1] == start), key=lambda r: r[3])
    with db.session_scope() as session:
        a = session.get(Volunteer, a_id)
        assert a is not None and a.phone is not None
        a_name, a_phone = a.name, a.phone

    # -- the secretary, at her desk -------------------------------------------------------
    desk = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = watched_page(desk, district.problems)
    page.goto(base + "/login/staff")
    page.fill("#username", "e2e-secretary")
    page.fill("#password", PASSWORD)
    page.click("form.card button[type=submit]")
    page.wait_for_url(re.compile(r"/dashboard$|/branch$|/$"))

    # Record the absence: found by phone, sick on tomorrow's morning shift.
    page.goto(base + "/absences")
    page.fill("#a-q", a_phone.removeprefix("+86")[-8:])
    page.click("form.card button:has-text('查找')")
    page.check(f"input[name=volunteer_id][value='{a_id}']")
    page.fill("#a-from", day.isoformat())
    page.select_option("#a-from-shift", shift)
    page.fill("#a-to", day.isoformat())
    page.select_option("#a-to-shift", shift)
    page.select_option("#a-reason", "sick")
    page.click("button:has-text('登记缺勤')")
    affected = page.locator("ul.affected li").all_inner_texts()
    site_name = {"east-gate": "东塘小区", "west-gate": "西湖卡口"}[post]
    assert len(affected) == 1, affected
    assert f"{day.month}月{day.day}日" in affected[0] and site_name in affected[0], affected

    # Ask for the repair, wait for it, read it and accept it (the button asks first).
    page.click("button:has-text('生成调整方案')")
    page.wait_for_url(re.compile(r"/repairs/\d+$"))
    accept = page.locator("button:has-text('采纳并发布')")
    accept.wait_for(timeout=30_000)  # the page polls and reloads when the job is done
    changes = page.locator("table.changes tbody tr").all_inner_texts()
    # A leaves the shift, someone free takes it: "A → —" and "A → replacement".
    assert len(changes) == 2 and f"{a_name} → —" in changes[0], changes
    [replacement] = [n for n in NAMES if f"{a_name} → {n}" in changes[1]]
    page.once("dialog", lambda dialog: dialog.accept())
    accept.click()
    page.wait_for_selector("text=已采纳，发布为版本 2")

    new_id, number = _published(district.roster_id)
    assert number == 2
    after = _shifts(new_id)
    with db.session_scope() as session:
        r_id = session.scalars(select(Volunteer.id).where(Volunteer.name == replacement)).one()
    assert (a_id, day, shift, post) not in after
    assert (r_id, day, shift, post) in after
    assert before - {(a_id, day, shift, post)} == after - {(r_id, day, shift, post)}

    # A's calendar feed keeps the shift, cancelled.
    with db.session_scope() as session:
        token = calendars.volunteer_token(session, a_id, "e2e", secret=SECRET)
    feed = page.request.get(f"{base}/ical/{token}.ics")
    assert feed.status == 200
    events = {e.decoded("dtstart").astimezone(SHANGHAI): str(e.get("status", ""))
              for e in Calendar.from_ical(feed.body()).walk("VEVENT")}
    morning = dt.datetime.combine(day, dt.time(8), tzinfo=SHANGHAI)
    assert events[morning] == "CANCELLED", events

    # An urgent medicine delivery at her east site, due in two hours.
    page.goto(base + "/dispatch")
    page.click("a.button:has-text('新建任务')")
    page.select_option("#f-type", "medicine_delivery")
    page.select_option("#f-site", label="东塘小区")
    page.fill("#f-building", "3栋")
    page.fill("#f-room", "502")
    page.fill("#f-name", RESIDENT)
    page.fill("#f-phone", RESIDENT_PHONE)
    page.select_option("#f-urgency", "urgent")
    due = (dt.datetime.now(SHANGHAI) + dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    page.fill("#f-due", due.strftime("%Y-%m-%dT%H:%M"))
    page.click("button:has-text('创建任务')")
    page.wait_for_url(re.compile(r"/dispatch/tasks/\d+$"))
    task_id = int(page.url.rsplit("/", 1)[1])
    assert "送药上门" in page.inner_text("h1") and "紧急" in page.inner_text("h1")
    assert RESIDENT in page.inner_text("main")  # she took the call
    top = page.locator("ol.suggestions > li").first
    chosen = top.locator("strong").inner_text()
    assert chosen != a_name  # off sick
    top.locator("button:has-text('派给')").click()
    page.wait_for_url(re.compile(rf"/dispatch/tasks/{task_id}$"))
    assert "等待答复" in page.inner_text("main") and chosen in page.inner_text("main")
    with db.session_scope() as session:
        task = session.get(Task, task_id)
        assert task is not None and task.status == "offered"
        [offered] = task.pending_ids
        volunteer = session.get(Volunteer, offered)
        assert volunteer is not None and volunteer.name == chosen and volunteer.phone
        v_phone = volunteer.phone
    desk.close()

    # -- the volunteer, on a phone --------------------------------------------------------
    phone = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844},
                                is_mobile=True, has_touch=True, device_scale_factor=3)
    mobile = watched_page(phone, district.problems)
    mobile.goto(base + "/login")
    mobile.fill("#phone", v_phone.removeprefix("+86"))
    mobile.tap("form.card button[type=submit]")
    mobile.locator("#code").wait_for()
    assert [p for p, _code in SENT] == [v_phone]
    mobile.fill("#code", SENT[-1][1])
    mobile.tap("form.card button[type=submit]")
    mobile.wait_for_url(re.compile(r"/me$"))
    mobile.goto(base + "/me/tasks")
    offer = mobile.locator("ul.tasks > li").first
    text = offer.inner_text()
    assert "送药上门" in text and "待答复" in text
    assert RESIDENT not in text and RESIDENT_PHONE not in text
    assert "欧***" in text and "137****7000" in text
    with mobile.expect_navigation():
        offer.locator("button:has-text('接单')").tap()
    mobile.goto(base + "/me/tasks")
    text = mobile.locator("ul.tasks > li").first.inner_text()
    assert RESIDENT in text and RESIDENT_PHONE in text, text
    width = mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px phone"
    with db.session_scope() as session:
        task = session.get(Task, task_id)
        assert task is not None and task.status == "accepted"
        assert task.assignee_ids == [offered]
    phone.close()

    assert not district.problems, "\n".join(district.problems)
