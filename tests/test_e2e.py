"""End to end in Debian's Chromium: a coordinator and a volunteer, through the real pages.

The app runs on a fresh migrated SQLite file, served by the live server with CSRF on;
solve jobs run in threads of this process (no ``REDIS_URL``). The district is the demo
district of one street over three days, as the import sheets a district office fills in.
Every page visited must be free of console errors and CSP violations.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from icalendar import Calendar
from openpyxl import load_workbook
from sqlalchemy import func, select

from scheduler import db, demo, imports, queues
from scheduler.accounts import services as accounts
from scheduler.models import Assignment, Post, RosterVersion, ShiftTemplate, Site, Volunteer
from tests.fixtures.pages import watched_page
from web import create_app

pytest_plugins = ["tests.fixtures.db", "tests.fixtures.browser"]

PASSWORD = "e2e-password-1"
DAYS = 3
#: Codes "sent" by the app (``BASTION_OTP_SENDER`` names `send_code`): (phone, code).
SENT: list[tuple[str, str]] = []

#: Keeps the progress bar's values across the reload the run page does when the solve ends.
INIT_SCRIPT = """
document.addEventListener("DOMContentLoaded", () => {
  const bar = document.querySelector("progress");
  if (!bar) return;
  const seen = JSON.parse(sessionStorage.getItem("bars") || "[]");
  const keep = () => sessionStorage.setItem("bars", JSON.stringify(seen));
  seen.push(bar.value);
  keep();
  new MutationObserver(() => { seen.push(bar.value); keep(); })
    .observe(bar, { attributes: true, attributeFilter: ["value"] });
});
"""


def send_code(phone: str, code: str) -> None:
    SENT.append((phone, code))


@dataclass
class Site_:
    base: str
    url: str
    sheets: dict[str, Path]
    start: dt.date
    problems: list[str] = field(default_factory=list)


@pytest.fixture
def site(new_database: Callable[[str], str], live_server: Callable[[Flask], str],
         monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Site_]:
    url = new_database("sqlite")
    db.upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)  # the in-process solve jobs read it
    monkeypatch.delenv("REDIS_URL", raising=False)
    with db.session_scope() as session:
        accounts.create_staff_user(session, "e2e-coordinator", "coordinator", PASSWORD, "test",
                                   display_name="端到端协调员")
    start = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date() + dt.timedelta(days=1)
    sheets = {}
    for kind, data in demo.demo_sheets(start=start, seed=0, days=DAYS, streets=1).items():
        sheets[kind] = tmp_path / demo.sheet_filename(kind)
        sheets[kind].write_bytes(data)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "e2e-secret",
                      "WTF_CSRF_ENABLED": True, "OTP_SENDER": "tests.test_e2e:send_code",
                      "CLOCK": False})
    SENT.clear()
    base = live_server(app)
    app.config["BASE_URL"] = base  # the feed links of the subscribe card point here
    yield Site_(base, url, sheets, start)
    queues.wait_local(timeout=30)
    db.get_engine().dispose()


def _page(context: Any, found: Site_) -> Any:
    return watched_page(context, found.problems, INIT_SCRIPT)


def _count(model: Any) -> int:
    with db.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _import(page: Any, base: str, kind: str, path: Path, roster: str | None = None) -> str:
    page.goto(base + "/imports")
    page.select_option("#kind", kind)
    if roster:
        page.select_option("#roster", label=roster)
    page.set_input_files("#file", str(path))
    page.click("form.card button[type=submit]")
    return str(page.locator("main").inner_text())


def _bad_volunteers(path: Path, tmp: Path) -> tuple[Path, str]:
    """The volunteers sheet with the phone of its fourth person cut to 10 digits (row 5)."""
    book = load_workbook(path)
    sheet = book.active
    bad = str(sheet.cell(row=5, column=2).value)[:-1]
    sheet.cell(row=5, column=2).value = bad
    out = io.BytesIO()
    book.save(out)
    target = tmp / "志愿者-有误.xlsx"
    target.write_bytes(out.getvalue())
    return target, bad


def test_coordinator_plans_and_a_volunteer_on_a_phone_sees_the_shifts(
        browser: Any, site: Site_, tmp_path: Path) -> None:
    base = site.base
    # -- the coordinator ------------------------------------------------------------------
    staff = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = _page(staff, site)
    page.goto(base + "/login/staff")
    page.fill("#username", "e2e-coordinator")
    page.fill("#password", PASSWORD)
    page.click("form.card button[type=submit]")
    page.wait_for_url(re.compile(r"/dashboard$"))

    page.goto(base + "/rosters")
    page.click("text=新建排班周期")
    page.fill("#f-name", "端到端 演示街道")
    page.fill("#f-days", "99")
    page.click("form.card button[type=submit]")  # the phone's form check refuses 99 days
    assert page.eval_on_selector("#f-days", "e => e.validity.rangeOverflow")
    assert page.url.endswith("/rosters/new")
    page.fill("#f-start", site.start.isoformat())
    page.fill("#f-days", str(DAYS))
    page.click("form.card button[type=submit]")
    page.wait_for_url(re.compile(r"/rosters/\d+$"))
    roster_url = page.url
    assert "端到端 演示街道" in page.inner_text("h1")

    # A sheet with one bad phone: every problem listed (row, column, value), nothing written.
    text = _import(page, base, "sites", site.sheets["sites"])
    assert "点位和岗位：共" in text
    bad_path, bad_phone = _bad_volunteers(site.sheets["volunteers"], tmp_path)
    text = _import(page, base, "volunteers", bad_path)
    assert "导入失败，未写入任何内容" in text
    row = page.locator("table.errors tbody tr").first
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    assert cells[0] == "5" and cells[1] == "手机号 (B)" and cells[2] == imports.mask(bad_phone)
    assert "手机号" in cells[3]
    assert _count(Volunteer) == 0
    # The refusal is the page's own status (422), which Chromium logs; nothing else may be.
    refused = [p for p in site.problems if p.endswith("status of 422 (UNPROCESSABLE ENTITY)")]
    assert len(refused) == 1 and refused[0].startswith(base + "/imports")
    site.problems.remove(refused[0])
    for kind in ("volunteers", "demand", "unavailability"):
        roster = "端到端 演示街道" if kind in ("demand", "unavailability") else None
        text = _import(page, base, kind, site.sheets[kind], roster)
        assert re.search(rf"{imports.KIND_LABELS[kind]}：共 \d+ 行，新增 [1-9]", text), text
    assert _count(Volunteer) == len(load_workbook(site.sheets["volunteers"]).active["A"]) - 1

    # Generate with a short time limit and watch the progress.
    page.goto(roster_url)
    page.fill("#time_limit", "3")
    page.click("button:has-text('生成')")
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    run_url = page.url
    page.locator("[data-field=status]").filter(has_text="finished").wait_for(timeout=40_000)
    page.locator("text=查看生成的版本 1").wait_for()
    bars = page.evaluate("JSON.parse(sessionStorage.getItem('bars'))")
    assert bars[0] < 100 and bars[-1] == 100 and len(bars) >= 2, bars  # it moved
    polled = page.request.get(run_url + ".json").json()
    assert polled["status"] == "finished" and polled["objective"] is not None

    def figures() -> dict[str, float]:
        return {k: float(page.inner_text(f"[data-field={k}]"))
                for k in ("objective", "coverage_percent")}

    assert figures() == {"objective": polled["objective"],
                         "coverage_percent": polled["coverage_percent"]}
    assert 0 < polled["coverage_percent"] <= 100
    page.reload()
    assert figures() == {"objective": polled["objective"],
                         "coverage_percent": polled["coverage_percent"]}

    # Publish (the button asks first).
    page.goto(roster_url)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("form.inline button:has-text('发布')")
    page.wait_for_url(roster_url)
    assert "已发布版本 1" in page.inner_text("main")
    assert page.locator("tbody tr").first.locator("td").nth(1).inner_text() == "published"
    staff.close()

    # -- a volunteer on a phone -----------------------------------------------------------
    with db.session_scope() as session:
        version = session.scalars(select(RosterVersion).where(
            RosterVersion.state == "published")).one()
        volunteer_id = session.scalars(
            select(Assignment.volunteer_id).where(Assignment.version_id == version.id)
            .order_by(Assignment.volunteer_id).limit(1)).one()
        volunteer = session.get(Volunteer, volunteer_id)
        assert volunteer is not None and volunteer.phone is not None
        phone, name = volunteer.phone, volunteer.name
        expected = sorted(session.execute(
            select(Assignment.date, Site.name, Post.name, ShiftTemplate.name,
                   ShiftTemplate.start)
            .join(Post, Post.id == Assignment.post_id).join(Site, Site.id == Post.site_id)
            .join(ShiftTemplate, ShiftTemplate.id == Assignment.shift_id)
            .where(Assignment.version_id == version.id,
                   Assignment.volunteer_id == volunteer_id)).all())
    phone_context = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844},
                                        is_mobile=True, has_touch=True, device_scale_factor=3)
    mobile = _page(phone_context, site)
    mobile.goto(base + "/login")
    mobile.fill("#phone", phone.removeprefix("+86"))
    mobile.tap("form.card button[type=submit]")
    mobile.locator("#code").wait_for()
    assert [p for p, _code in SENT] == [phone]
    mobile.fill("#code", SENT[-1][1])
    mobile.tap("form.card button[type=submit]")
    mobile.wait_for_url(re.compile(r"/me$"))
    assert name in mobile.inner_text("main")
    items = mobile.locator("ul.shifts li").all_inner_texts()
    assert len(items) == len(expected) >= 1
    for (day, site_name, post_name, _shift, _start), item in zip(expected, items, strict=True):
        assert f"{day.month}月{day.day}日" in item and f"{site_name} · {post_name}" in item
    width = mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px phone"

    # The subscribe card: the feed holds exactly these shifts.
    card = mobile.locator(".subscribe-card")
    assert card.is_visible() and card.locator("svg").count() == 1  # the QR code
    feed_url = card.locator(".subscribe-links input").input_value()
    card.locator(".subscribe-links input").focus()  # selected for copying (no inline JS)
    assert card.locator(".subscribe-links input").evaluate(
        "e => e.selectionStart === 0 && e.selectionEnd === e.value.length")
    assert feed_url.startswith(base + "/ical/") and feed_url.endswith(".ics")
    assert card.locator("a.button").get_attribute("href") == "webcal://" + feed_url.split(
        "://", 1)[1]
    feed = mobile.request.get(feed_url)
    assert feed.status == 200 and feed.headers["content-type"].startswith("text/calendar")
    shanghai = ZoneInfo("Asia/Shanghai")
    events = sorted(
        (e.decoded("dtstart").astimezone(shanghai).replace(tzinfo=None), str(e["summary"]))
        for e in Calendar.from_ical(feed.body()).walk("VEVENT"))
    assert events == sorted((dt.datetime.combine(day, start), f"{shift} · {site_name} · {post}")
                            for day, site_name, post, shift, start in expected)

    # "Reset my calendar link": the old link is dead at once, the new one works.
    with mobile.expect_navigation():
        mobile.tap(".subscribe-reset button")
    assert "旧链接已失效" in mobile.inner_text("main")
    new_url = mobile.locator(".subscribe-card .subscribe-links input").input_value()
    assert new_url != feed_url
    assert mobile.request.get(feed_url).status == 404
    assert mobile.request.get(new_url).status == 200
    phone_context.close()

    assert not site.problems, "\n".join(site.problems)
