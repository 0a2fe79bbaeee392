"""Roster workbook and service-hours exports, read back with openpyxl and csv."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from scheduler import exports, problems, rosters
from scheduler.models import ShiftTemplate, Volunteer
from tests.fixtures.problems import assign, demand, make_problem, shift, site, volunteer

pytest_plugins = ["tests.fixtures.db"]

EVIL_NAME = '=HYPERLINK("http://evil.example/","点我")'
EVIL_UNIT = "@SUM(1)"
SITE_NAME = "万家丽南路卡口"
REASON = "万家丽南路卡口 车辆查验 4月5日 早班 缺 1 名人员：可排的 2 名人员中 2 人当天不可用"


def _problem(**overrides: Any) -> dict[str, Any]:
    """Two days; a checkpoint with 车辆查验 (M needs 2, N needs 1) and 测温登记 (M on day 2)."""
    fields: dict[str, Any] = dict(
        name="雨花区 第15周", days=2,
        shifts=[shift("M", "08:00", "16:00", "早班"), shift("N", "22:00", "06:00", "夜班")],
        sites=[{"id": "wjl", "name": SITE_NAME, "kind": "checkpoint",
                "posts": [{"id": "wjl-check", "name": "车辆查验"},
                          {"id": "wjl-reg", "name": "测温登记"}]}],
        demand=[demand("wjl-check", "M", 2), demand("wjl-check", "N", 1),
                demand("wjl-reg", "M", 1, dates=[1])],
        volunteers=[
            dict(volunteer("zw", skills=["party", "medical"], name="张伟"), unit="区人民医院"),
            dict(volunteer("ln", name="李娜"), unit="洞井街道办"),
            dict(volunteer("wf", skills=["medical"], name="王芳"), unit="洞井街道办"),
            dict(volunteer("evil", name=EVIL_NAME), unit=EVIL_UNIT),
        ])
    return make_problem(**(fields | overrides))


ROWS = [("zw", 0, "M", "wjl-check"), ("ln", 0, "M", "wjl-check"), ("wf", 0, "N", "wjl-check"),
        ("ln", 1, "M", "wjl-check"), ("evil", 1, "N", "wjl-check"), ("wf", 1, "M", "wjl-reg")]
PARTY_REASON = "万家丽南路卡口 车辆查验 4月4日 夜班 缺 1 名党员：没有可在此站点服务的党员"
UNMET = [{"post": "wjl-check", "date": "2022-04-05", "shift": "M", "missing": 1,
          "skill": None, "reason": REASON, "reason_zh": REASON},
         {"post": "wjl-check", "date": "2022-04-04", "shift": "N", "missing": 1,
          "skill": "party", "reason": PARTY_REASON}]


@pytest.fixture
def roster_id(db: Session) -> int:
    """The hand-built roster above, with draft version 1 (one slot short on 4月5日 早班)."""
    doc = _problem()
    roster = problems.load_problem(db, doc, actor="test")
    solution = assign(doc, ROWS) | {"status": "FEASIBLE", "unmet": UNMET}
    problems.store_solution(db, roster.id, solution, actor="test")
    zhang = db.scalars(select(Volunteer).where(Volunteer.code == "zw")).one()
    zhang.phone = "13800138000"
    db.flush()
    return roster.id


def _book(data: bytes) -> Any:
    return load_workbook(io.BytesIO(data))


def _site_cells(sheet: Worksheet) -> dict[tuple[str, str, str], Any]:
    """(post, shift name, date header's first line) -> cell, for a site sheet."""
    dates = [str(c.value).split("\n")[0] if c.value else "" for c in sheet[2]]
    out = {}
    post = None
    for row in sheet.iter_rows(min_row=3):
        post = row[0].value or post  # merged: only the first row of a post holds its name
        shift_name = str(row[1].value).split("\n")[0]
        for cell in row[2:]:
            out[(post, shift_name, dates[cell.column - 1])] = cell
    return out


def test_site_sheet_names_marks_and_unmet(db: Session, roster_id: int) -> None:
    book = _book(exports.roster_workbook(db, roster_id))
    assert book.sheetnames[:3] == ["说明", "缺口明细", SITE_NAME]
    cells = _site_cells(book[SITE_NAME])

    assert cells[("车辆查验", "早班", "4月4日")].value == "张伟★✚\n李娜"
    no_lead = cells[("车辆查验", "夜班", "4月4日")]
    assert no_lead.value == "王芳✚\n缺 1 名党员"
    assert no_lead.fill.fgColor.rgb.endswith(exports.UNMET_FILL)
    assert no_lead.comment is not None and no_lead.comment.text == PARTY_REASON
    short = cells[("车辆查验", "早班", "4月5日")]
    assert short.value == "李娜\n缺 1 人"
    assert short.fill.fgColor.rgb.endswith(exports.UNMET_FILL)
    assert short.comment is not None and REASON in short.comment.text
    assert cells[("测温登记", "早班", "4月5日")].value == "王芳✚"
    # 测温登记 needs nobody on 4月4日: an empty grey cell, not an unmet one.
    idle = cells[("测温登记", "早班", "4月4日")]
    assert idle.value is None and idle.fill.fgColor.rgb.endswith(exports.NO_DEMAND_FILL)
    assert not cells[("车辆查验", "早班", "4月4日")].fill.fgColor.rgb.endswith(
        exports.UNMET_FILL)

    unmet = [[c.value for c in r] for r in book["缺口明细"].iter_rows(min_row=3)]
    assert unmet == [
        ["4月4日", "周一", "夜班", SITE_NAME, "车辆查验", "缺 1 名党员", PARTY_REASON],
        ["4月5日", "周二", "早班", SITE_NAME, "车辆查验", "缺 1 人", REASON]]


def test_cover_sheet_says_which_version(db: Session, roster_id: int) -> None:
    def cover(**kw: Any) -> dict[str, Any]:
        sheet = _book(exports.roster_workbook(db, roster_id, **kw))["说明"]
        return {r[0].value: r[1].value for r in sheet.iter_rows(min_row=2) if r[0].value}

    info = cover()
    assert info["排班名称"] == "雨花区 第15周"
    assert info["排班周期"] == "2022-04-04 至 2022-04-05（2 天）"
    assert "第 1 版（草稿）" in info["导出版本"] and "最新草稿" in info["导出版本"]
    # 7 heads needed (2+1 a day on 车辆查验, 1 on 测温登记 day 2), 6 placed, 1 missing.
    assert (info["需求人次（最低）"], info["已排人次"], info["缺口人次"]) == (7, 6, 1)
    assert info["覆盖率"] == "85.7%"
    assert info["技能缺口"] == "党员 1 人次"
    assert dt.datetime.strptime(info["生成时间"][:16], "%Y-%m-%d %H:%M")
    assert info["生成时间"].endswith("（Asia/Shanghai）")
    assert info[exports.PARTY_MARK] == "党员" and info[exports.MEDICAL_MARK] == "医护人员"

    rosters.publish(db, roster_id, 1, None, "test")
    doc = _problem()
    problems.store_solution(db, roster_id, assign(doc, ROWS[:2]), actor="test")  # draft 2
    assert "第 1 版（已发布）" in cover()["导出版本"]
    assert "第 2 版（草稿）— 按指定版本导出" == cover(version_number=2)["导出版本"]
    assert cover(version_number=2)["已排人次"] == 2


def test_unit_sheets_list_their_people(db: Session, roster_id: int) -> None:
    book = _book(exports.roster_workbook(db, roster_id))
    sheet = book["单位·洞井街道办"]
    assert [c.value for c in sheet[2]] == ["姓名", "手机号", "日期", "星期", "班次", "时间",
                                           "点位", "岗位"]
    rows = [[c.value for c in r] for r in sheet.iter_rows(min_row=3)]
    assert rows == [
        ["李娜", None, dt.datetime(2022, 4, 4), "周一", "早班", "08:00-16:00", SITE_NAME, "车辆查验"],
        ["李娜", None, dt.datetime(2022, 4, 5), "周二", "早班", "08:00-16:00", SITE_NAME, "车辆查验"],
        ["王芳✚", None, dt.datetime(2022, 4, 4), "周一", "夜班", "22:00-次日06:00", SITE_NAME,
         "车辆查验"],
        ["王芳✚", None, dt.datetime(2022, 4, 5), "周二", "早班", "08:00-16:00", SITE_NAME,
         "测温登记"],
    ]
    hospital = [[c.value for c in r] for r in book["单位·区人民医院"].iter_rows(min_row=3)]
    assert [r[:2] for r in hospital] == [["张伟★✚", "138****8000"]]
    full = _book(exports.roster_workbook(db, roster_id, full_phones=True))["单位·区人民医院"]
    assert full["B3"].value == "138 0013 8000"


def test_every_sheet_is_set_up_for_printing(db: Session, roster_id: int) -> None:
    book = _book(exports.roster_workbook(db, roster_id))
    for sheet in book.worksheets:
        assert sheet.page_setup.orientation == "landscape", sheet.title
        assert str(sheet.page_setup.paperSize) == sheet.PAPERSIZE_A4
        assert sheet.page_setup.fitToWidth == 1 and sheet.sheet_properties.pageSetUpPr.fitToPage
        assert "雨花区 第15周" in sheet.oddHeader.center.text
        assert "&P" in sheet.oddFooter.center.text and "&N" in sheet.oddFooter.center.text
        assert sheet.print_title_rows
    site_sheet = book[SITE_NAME]
    assert site_sheet.freeze_panes == "C3"
    assert site_sheet.print_title_rows == "$1:$2" and site_sheet.print_title_cols == "$A:$B"


def test_formula_text_is_neutralised_in_xlsx_and_csv(db: Session, roster_id: int) -> None:
    book = _book(exports.roster_workbook(db, roster_id))
    evil_unit = book["单位·" + EVIL_UNIT]
    name = evil_unit["A3"]
    assert name.data_type == "s" and name.value == "'" + EVIL_NAME
    night = _site_cells(book[SITE_NAME])[("车辆查验", "夜班", "4月5日")]
    assert night.data_type == "s" and night.value == "'" + EVIL_NAME
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            assert all(c.data_type != "f" for c in row), sheet.title

    hours = _book(exports.service_hours_xlsx(db, roster_id))
    evil_rows = [[c.value for c in r] for r in hours["志愿者工时"].iter_rows(min_row=3)
                 if r[1].value == "'" + EVIL_UNIT]
    assert evil_rows and evil_rows[0][0] == "'" + EVIL_NAME
    assert "'" + EVIL_UNIT in [r[0].value for r in hours["单位汇总"].iter_rows(min_row=3)]

    rows = list(csv.reader(io.StringIO(exports.service_hours_csv(db, roster_id)
                                       .decode("utf-8-sig"))))
    assert ["志愿者", "'" + EVIL_UNIT, "'" + EVIL_NAME] == rows[[r[2] for r in rows].index(
        "'" + EVIL_NAME)][:3]


@pytest.mark.parametrize(("value", "expected"), [
    ("=1+2", "'=1+2"), ("+86 138", "'+86 138"), ("-2", "'-2"), ("@SUM(1)", "'@SUM(1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("张伟", "张伟"), ("a=b", "a=b"), ("", ""),
    (-2, -2), (None, None)])
def test_neutralise(value: Any, expected: Any) -> None:
    assert exports.neutralise(value) == expected


def test_hours_per_volunteer_and_unit(db: Session, roster_id: int) -> None:
    book = _book(exports.service_hours_xlsx(db, roster_id))
    people = {r[0].value: [c.value for c in r] for r in book["志愿者工时"].iter_rows(min_row=3)}
    assert people["张伟"] == ["张伟", "区人民医院", "138****8000", 1, 1, 8]
    # 22:00-06:00 on 4月4日 counts 8 h, plus 8 h on 4月5日.
    assert people["王芳"] == ["王芳", "洞井街道办", None, 2, 2, 16]
    assert people["李娜"][3:] == [2, 2, 16]

    units = {r[0].value: [c.value for c in r] for r in book["单位汇总"].iter_rows(min_row=3)}
    for unit, (_u, heads, shifts, hours) in units.items():
        members = [p for p in people.values() if unit == "合计" or p[1] == unit]
        assert heads == len(members), unit
        assert shifts == sum(p[3] for p in members), unit
        assert hours == sum(p[5] for p in members), unit
    assert units["洞井街道办"] == ["洞井街道办", 2, 4, 32]
    assert units["合计"] == ["合计", 4, 6, 48]


def test_hours_csv_has_bom_and_both_tables(db: Session, roster_id: int) -> None:
    data = exports.service_hours_csv(db, roster_id)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    volunteers = [r for r in rows if r["类型"] == "志愿者"]
    units = [r for r in rows if r["类型"] == "单位"]
    assert {r["姓名"] for r in volunteers} == {"张伟", "李娜", "王芳", "'" + EVIL_NAME}
    for unit in units:
        members = [v for v in volunteers if v["单位"] == unit["单位"]]
        assert int(unit["人数"]) == len(members)
        assert float(unit["服务时长（小时）"]) == sum(float(v["服务时长（小时）"]) for v in members)
    (total,) = [r for r in rows if r["类型"] == "合计"]
    assert (total["人数"], total["班次数（人次）"], total["服务时长（小时）"]) == ("4", "6", "48.0")


@pytest.mark.parametrize(("phone", "masked", "full"), [
    ("+8613800138000", "138****8000", "138 0013 8000"),
    ("+867318456789", "073****6789", "0731 8456789"),
    ("+861012345678", "010****5678", "010 12345678"),
    ("+447911123456", "+44******3456", "+447911123456"), (None, "", "")])
def test_phone_text(phone: str | None, masked: str, full: str) -> None:
    assert exports.phone_text(phone) == masked
    assert exports.phone_text(phone, full=True) == full


@pytest.mark.parametrize(("start", "end", "hours"), [
    ("08:00", "16:00", 8), ("22:00", "06:00", 8), ("16:00", "00:00", 8), ("08:00", "08:00", 24),
    ("20:30", "08:00", 11.5)])
def test_shift_hours_cross_midnight(start: str, end: str, hours: float) -> None:
    shift_ = ShiftTemplate(code="x", name="x", start=dt.time.fromisoformat(start),
                           end=dt.time.fromisoformat(end))
    assert exports.shift_hours(shift_) == hours


def test_sheet_names_are_valid_and_unique(db: Session) -> None:
    long = "雨花区东山街道万家丽南路与湘府东路交汇处临时卡口"  # 24 characters
    names = [long + "北侧第一检查通道入口", long + "北侧第一检查通道出口", "卡口[1]/东:*?\\",
             "'引号'"]
    sites = [site(f"s{i}", name=n, posts=[f"s{i}-p"]) for i, n in enumerate(names)]
    doc = _problem(sites=sites, demand=[demand(f"s{i}-p", "M") for i in range(len(names))],
                   volunteers=["v1"])
    roster = problems.load_problem(db, doc, actor="test")
    problems.store_solution(db, roster.id, assign(doc, [("v1", 0, "M", "s0-p")]), actor="test")
    titles = _book(exports.roster_workbook(db, roster.id)).sheetnames[2:2 + len(names)]
    assert titles[0] == (long + "北侧第一检查通道")[:31]
    assert titles[1] == (long + "北侧第一检查通道")[:28] + "(2)"
    assert titles[2] == "卡口_1__东____"
    assert titles[3] == "引号"
    assert all(len(t) <= 31 for t in titles)


def test_sheet_title_counts_utf16_and_ignores_case() -> None:
    taken: set[str] = set()
    assert exports.sheet_title("Hotel", taken) == "Hotel"
    assert exports.sheet_title("HOTEL", taken) == "HOTEL(2)"
    assert len(exports.sheet_title("😷" * 20, taken).encode("utf-16-le")) // 2 <= 31
    assert exports.sheet_title("", taken) == "未命名"


@contextmanager
def _count_queries(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_queries_do_not_grow_with_rows(db: Session, db_engine: Engine,
                                       create_volunteer: Callable[..., Volunteer]) -> None:
    def export_queries(roster_id: int) -> int:
        db.expire_all()
        with _count_queries(db_engine) as seen:
            exports.roster_workbook(db, roster_id)
            exports.service_hours_csv(db, roster_id)
        return len(seen)

    small = _problem(volunteers=["v1"])
    small_id = problems.load_problem(db, small, actor="test").id
    problems.store_solution(db, small_id, assign(small, [("v1", 0, "M", "wjl-check")]),
                            actor="test")
    big = _problem(name="大", volunteers=[f"w{i}" for i in range(30)],
                   demand=[demand("wjl-check", "M", 2, max=30), demand("wjl-check", "N", 1, max=30)])
    big_id = problems.load_problem(db, big, actor="test").id
    rows = [(f"w{i}", d, s, "wjl-check") for i in range(30) for d, s in ((0, "M"), (1, "N"))]
    problems.store_solution(db, big_id, assign(big, rows), actor="test")
    assert export_queries(big_id) == export_queries(small_id)


def test_unknown_roster_version_or_none(db: Session, roster_id: int) -> None:
    with pytest.raises(LookupError, match="no roster 999999"):
        exports.roster_workbook(db, 999999)
    with pytest.raises(LookupError, match=f"roster {roster_id} has no version 7"):
        exports.service_hours(db, roster_id, 7)
    empty = problems.load_problem(db, _problem(name="空"), actor="test")
    with pytest.raises(exports.NoVersionError, match="no version to export"):
        exports.roster_workbook(db, empty.id)
