"""Imports of XLSX and CSV sheets (scheduler/imports.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler import imports
from scheduler.db import make_engine, upgrade
from scheduler.imports import (
    KINDS,
    ImportFailed,
    ImportRejected,
    ImportTooLarge,
    UnreadableFile,
    import_file,
    parse_shift_range,
)
from scheduler.models import (
    AuditEvent,
    Demand,
    Post,
    Roster,
    RuleSet,
    ShiftTemplate,
    Site,
    Unavailability,
    Volunteer,
)
from scheduler.templates import template_csv, template_xlsx
from tests.fixtures.sheets import (
    VOLUNTEER_HEADER,
    csv_bytes,
    fill_template,
    id_number,
    xlsx,
)

pytest_plugins = ["tests.fixtures.db"]

ACTOR = "协调员"
MODELS = (Volunteer, Site, Post, ShiftTemplate, Demand, Unavailability, AuditEvent)


def _counts(db: Session) -> dict[str, int]:
    return {m.__name__: int(db.scalar(select(func.count()).select_from(m)) or 0)
            for m in MODELS}


def _reject(db: Session, kind: str, filename: str, data: bytes,
            error: type[ImportFailed] = ImportRejected, **kw: Any) -> list[imports.ImportIssue]:
    """Import, expect `error`, check that nothing was written; the errors."""
    before = _counts(db)
    with pytest.raises(error) as info:
        import_file(db, kind, filename, data, ACTOR, **kw)
    db.expire_all()
    assert _counts(db) == before
    assert info.value.errors, "every rejection lists at least one error"
    for issue in info.value.errors:
        assert issue.message and issue.message_en
    return info.value.errors


def _one(errors: list[imports.ImportIssue], code: str) -> imports.ImportIssue:
    found = [e for e in errors if e.code == code]
    assert len(found) == 1, errors
    return found[0]


def _volunteer(db: Session, phone: str) -> Volunteer:
    return db.scalars(select(Volunteer).where(Volunteer.phone == phone)).one()


# -- volunteers: happy paths ----------------------------------------------------------------

def test_volunteers_xlsx_created_with_what_excel_does(db: Session) -> None:
    data = xlsx([
        VOLUNTEER_HEADER,
        ["买买提・艾力", 13800138000.0, id_number(), "雨花区卫健局", "医护、党员", "", 5],
        ["李 伟", "+86 139 0013 9000", "", "", "驾驶员,安保", "是", "3"],
        ["王芳", "１３７００１３７０００", "", "", "心理咨询 driver", "否", None],
        ["Anna Smith", "13600136000.0", "", "", "", "", ""],
    ])
    result = import_file(db, "volunteers", "名单.xlsx", data, ACTOR)
    assert (result.created, result.updated, result.rows) == (4, 0, 4)
    v = _volunteer(db, "+8613800138000")
    assert (v.name, v.unit, v.skills, v.party_member, v.max_shifts, v.status) == (
        "买买提·艾力", "雨花区卫健局", ["medical"], True, 5, "active")
    v = _volunteer(db, "+8613900139000")
    assert (v.name, v.skills, v.party_member, v.max_shifts) == (
        "李伟", ["driver", "security"], True, 3)
    v = _volunteer(db, "+8613700137000")
    assert (v.skills, v.party_member) == (["counselor", "driver"], False)
    assert _volunteer(db, "+8613600136000").name == "Anna Smith"
    event = db.get(AuditEvent, result.audit_event_id)
    assert event is not None and event.action == "import.volunteers" and event.actor == ACTOR
    assert event.after["created"] and event.after["rows"] == 4
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == 1


def test_volunteers_update_by_phone(db: Session, create_volunteer: Callable[..., Volunteer],
                                    create_site: Callable[..., Site]) -> None:
    site = create_site("wjl", name="万家丽路卡口")
    old = create_volunteer("李伟", phone="13800138000", unit="旧单位", max_shifts=2)
    data = csv_bytes([["姓名", "手机号", "单位", "可去点位"],
                      ["李伟", "138 0013 8000", "新单位", "万家丽路卡口"],
                      ["张三", "13900139000", "", ""]])
    result = import_file(db, "volunteers", "v.csv", data, ACTOR)
    assert (result.created, result.updated) == (1, 1)
    db.refresh(old)
    assert (old.unit, old.max_shifts, old.sites_restricted) == ("新单位", 2, True)
    assert [s.id for s in old.allowed_sites] == [site.id]
    assert db.scalar(select(func.count()).select_from(Volunteer)) == 2
    event = db.get(AuditEvent, result.audit_event_id)
    assert event is not None
    change = event.after["updated"][0]
    assert change["before"]["unit"] == "旧单位" and change["after"]["unit"] == "新单位"
    # the same file again changes nothing
    again = import_file(db, "volunteers", "v.csv", data, ACTOR)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert again.message == "志愿者：共 2 行，新增 0，未变 2。"


def test_volunteers_update_warns_of_a_new_name(db: Session,
                                               create_volunteer: Callable[..., Volunteer]) -> None:
    create_volunteer("李伟", phone="13800138000")
    result = import_file(db, "volunteers", "v.csv",
                         csv_bytes([["姓名", "手机号"], ["王芳", "13800138000"]]), ACTOR)
    assert result.updated == 1
    assert [(w.code, w.row, w.value) for w in result.warnings] == [
        ("name_changed", 2, "138****8000")]


def test_title_row_above_the_header(db: Session) -> None:
    data = xlsx([["Name", "Phone", "Skills"], ["李伟", "13800138000", "party"]],
                title="雨花区志愿者名单（2022年4月）")
    result = import_file(db, "volunteers", "v.xlsx", data, ACTOR)
    assert result.created == 1
    assert _volunteer(db, "+8613800138000").party_member


def test_gbk_csv(db: Session) -> None:
    rows = [["志愿者名单"], ["姓名", "手机号", "单位"], ["欧阳·娜娜", "13800138000", "长沙市雨花区"]]
    result = import_file(db, "volunteers", "v.csv", csv_bytes(rows, encoding="gbk"), ACTOR)
    assert result.created == 1
    v = _volunteer(db, "+8613800138000")
    assert (v.name, v.unit) == ("欧阳·娜娜", "长沙市雨花区")


def test_bom_csv(db: Session) -> None:
    rows = [["姓名", "手机号"], ["李伟", "13800138000"]]
    result = import_file(db, "volunteers", "v.csv", csv_bytes(rows, bom=True), ACTOR)
    assert result.created == 1


def test_utf16_tab_separated_text(db: Session) -> None:
    text = "姓名\t手机号\r\n李伟\t13800138000\r\n"
    result = import_file(db, "volunteers", "v.txt", text.encode("utf-16"), ACTOR)
    assert result.created == 1


def test_dry_run_writes_nothing(db: Session) -> None:
    before = _counts(db)
    result = import_file(db, "volunteers", "v.csv",
                         csv_bytes([["姓名", "手机号"], ["李伟", "13800138000"]]), ACTOR,
                         dry_run=True)
    assert result.created == 1 and result.dry_run and result.audit_event_id is None
    assert _counts(db) == before


# -- volunteers: bad input ----------------------------------------------------------------

def test_phone_invalid(db: Session) -> None:
    errors = _reject(db, "volunteers", "v.csv",
                     csv_bytes([["姓名", "手机号"], ["李伟", "1380013800"]]))
    e = _one(errors, "phone_invalid")
    assert (e.row, e.column, e.column_letter, e.value) == (2, "手机号", "B", "138***3800")
    assert "11 位" in e.message


def test_phone_in_scientific_notation(db: Session) -> None:
    errors = _reject(db, "volunteers", "v.csv",
                     csv_bytes([["姓名", "手机号"], ["李伟", "1.38001E+10"]]))
    e = _one(errors, "digits_lost")
    assert (e.row, e.column, e.value) == (2, "手机号", "1.3****E+10")


def test_id_number_in_scientific_notation_xlsx(db: Session) -> None:
    data = xlsx([["姓名", "手机号", "身份证号"],
                 ["李伟", "13800138000", 1.10101199003071e17]])
    e = _one(_reject(db, "volunteers", "v.xlsx", data), "digits_lost")
    assert (e.row, e.column, e.column_letter) == (2, "身份证号", "C")
    assert e.value is not None and "*" in e.value and "199003071" not in e.value
    assert "丢失" in e.message and "文本" in e.message


def test_id_number_in_scientific_notation_csv(db: Session) -> None:
    data = csv_bytes([["姓名", "手机号", "身份证号"], ["李伟", "13800138000", "1.10101E+17"]])
    e = _one(_reject(db, "volunteers", "v.csv", data), "digits_lost")
    assert (e.row, e.column, e.value) == (2, "身份证号", "1.1****E+17")


def test_id_number_check_digit(db: Session) -> None:
    bad = id_number()[:-1] + ("0" if id_number()[-1] != "0" else "1")
    data = csv_bytes([["姓名", "手机号", "身份证号"], ["李伟", "13800138000", bad]])
    e = _one(_reject(db, "volunteers", "v.csv", data), "id_checksum")
    assert e.value == bad[:3] + "*" * 11 + bad[-4:]


def test_duplicate_phones_within_the_file_list_both_rows(db: Session) -> None:
    data = xlsx([["姓名", "手机号"], ["李伟", "13800138000"], ["张三", "13900139000"],
                 ["王芳", "+86 138-0013-8000"]], title="名单")
    errors = _reject(db, "volunteers", "v.xlsx", data)
    dup = [e for e in errors if e.code == "duplicate_in_file"]
    assert [(e.row, e.column) for e in dup] == [(4, "手机号"), (6, "手机号")]
    assert all("第 4、6 行" in e.message for e in dup)
    assert dup[0].value == "138****8000" and dup[1].value.startswith("+86")


def test_full_width_digits_and_spaces(db: Session) -> None:
    data = csv_bytes([["姓名", "手机号", "最多班次"], ["李\u3000伟", "１３８\u3000００１３ ８０００", "５"]])
    import_file(db, "volunteers", "v.csv", data, ACTOR)
    v = _volunteer(db, "+8613800138000")
    assert (v.name, v.max_shifts) == ("李伟", 5)


def test_every_error_is_listed(db: Session) -> None:
    data = csv_bytes([["姓名", "手机号", "技能", "党员", "最多班次", "状态"],
                      ["李伟3", "13800138000", "", "", "", ""],
                      ["张三", "12345", "飞行员", "也许", "-1", "出差"],
                      ["", "13900139000", "", "", "", ""]])
    errors = _reject(db, "volunteers", "v.csv", data)
    assert sorted((e.row, e.column, e.code) for e in errors) == [
        (2, "姓名", "name_invalid"),
        (3, "党员", "yes_no"), (3, "手机号", "phone_invalid"), (3, "技能", "skill_unknown"),
        (3, "最多班次", "not_a_count"), (3, "状态", "status_invalid"),
        (4, "姓名", "required")]


def test_party_column_contradicts_skills(db: Session) -> None:
    data = csv_bytes([["姓名", "手机号", "技能", "党员"], ["李伟", "13800138000", "党员", "否"]])
    assert _one(_reject(db, "volunteers", "v.csv", data), "contradiction").row == 2


def test_unknown_site_in_allowed_sites(db: Session) -> None:
    data = csv_bytes([["姓名", "手机号", "可去点位"], ["李伟", "13800138000", "火星基地"]])
    e = _one(_reject(db, "volunteers", "v.csv", data), "site_unknown")
    assert (e.row, e.column, e.value) == (2, "可去点位", "火星基地")


# -- files and limits ---------------------------------------------------------------------

def test_file_too_large(db: Session) -> None:
    data = b"a" * (imports.MAX_FILE_BYTES + 1)
    with pytest.raises(ImportTooLarge) as info:
        import_file(db, "volunteers", "v.csv", data, ACTOR)
    assert info.value.status == 413 and info.value.errors[0].code == "file_too_large"


def test_too_many_rows(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "MAX_ROWS", 3)
    rows = [["姓名", "手机号"]] + [["李伟", f"1380013800{i}"] for i in range(4)]
    errors = _reject(db, "volunteers", "v.xlsx", xlsx(rows), error=ImportTooLarge)
    assert errors[0].code == "too_many_rows"


@pytest.mark.parametrize(("filename", "data", "code"), [
    ("v.xlsx", b"name,phone\n", "file_corrupt"),
    ("v.xlsx", b"PK\x03\x04garbage", "file_corrupt"),
    ("v.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "old_xls"),
    ("v.csv", bytes(range(256)) * 4, "not_text"),
    ("v.csv", b"", "file_empty"),
    ("v.csv", b"\xff\xfe\x00", "bad_encoding"),
])
def test_malformed_files(db: Session, filename: str, data: bytes, code: str) -> None:
    errors = _reject(db, "volunteers", filename, data, error=UnreadableFile)
    assert errors[0].code == code and errors[0].row is None


def test_truncated_xlsx(db: Session) -> None:
    data = xlsx([["姓名", "手机号"], ["李伟", "13800138000"]])
    errors = _reject(db, "volunteers", "v.xlsx", data[: len(data) // 2], error=UnreadableFile)
    assert errors[0].code == "file_corrupt"


def test_zip_that_is_not_a_workbook(db: Session) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    errors = _reject(db, "volunteers", "v.xlsx", out.getvalue(), error=UnreadableFile)
    assert errors[0].code == "not_a_workbook"


def test_header_not_found_and_column_missing(db: Session) -> None:
    errors = _reject(db, "volunteers", "v.csv", csv_bytes([["a", "b"], ["1", "2"]]),
                     error=UnreadableFile)
    assert errors[0].code == "header_missing"
    errors = _reject(db, "volunteers", "v.csv", csv_bytes([["标题"], ["姓名", "单位"], ["李伟", "x"]]))
    e = _one(errors, "column_missing")
    assert (e.row, e.column) == (2, "手机号")


def test_header_without_rows(db: Session) -> None:
    assert _reject(db, "volunteers", "v.csv", csv_bytes([["姓名", "手机号"]]))[0].code == "no_rows"


# -- sites and posts ----------------------------------------------------------------------

SITE_ROWS = [["点位编号", "点位名称", "点位类型", "岗位编号", "岗位名称"],
             ["wjl", "万家丽路卡口", "卡口", "", "测温登记"],
             ["wjl", "万家丽路卡口", "", "", "车辆引导"],
             ["", "锦江隔离酒店", "隔离酒店", "hot-med", "医护"]]


def test_sites_and_posts(db: Session) -> None:
    result = import_file(db, "sites", "s.xlsx", xlsx(SITE_ROWS), ACTOR)
    assert result.details == {"sites_created": 2, "sites_updated": 0, "posts_created": 3,
                              "posts_updated": 0}
    wjl = db.scalars(select(Site).where(Site.code == "wjl")).one()
    assert (wjl.kind, [p.name for p in wjl.posts]) == ("checkpoint", ["测温登记", "车辆引导"])
    hotel = db.scalars(select(Site).where(Site.name == "锦江隔离酒店")).one()
    assert hotel.kind == "hotel" and [p.code for p in hotel.posts] == ["hot-med"]
    # again, with a renamed post found by its code and one post more: updates, no copies
    rows = [*SITE_ROWS[:3], ["", "锦江隔离酒店", "", "hot-med", "医护组"],
            ["", "锦江隔离酒店", "", "", "安保"]]
    again = import_file(db, "sites", "s.xlsx", xlsx(rows), ACTOR)
    assert (again.details["sites_created"], again.details["posts_created"],
            again.details["posts_updated"]) == (0, 1, 1)
    db.refresh(hotel)
    assert [p.name for p in hotel.posts] == ["医护组", "安保"]


def test_sites_conflicts_and_duplicates(db: Session) -> None:
    rows = [*SITE_ROWS, ["wjl", "万家丽卡口", "小区", "", "测温登记"]]
    errors = _reject(db, "sites", "s.csv", csv_bytes(rows))
    assert sorted((e.row, e.column, e.code) for e in errors) == [
        (2, "岗位名称", "duplicate_in_file"), (5, "岗位名称", "duplicate_in_file"),
        (5, "点位名称", "site_conflict"), (5, "点位类型", "site_conflict")]


def test_sites_address_street_and_contact(db: Session) -> None:
    rows = [["点位编号", "点位名称", "岗位名称", "地址", "街道", "联系人", "联系电话"],
            ["wjl", "万家丽路卡口", "测温登记", "万家丽南路188号", "黎托街道", "王芳", 13900001111],
            ["wjl", "万家丽路卡口", "车辆引导", "", "", "", ""]]
    result = import_file(db, "sites", "s.xlsx", xlsx(rows), ACTOR)
    assert result.details["sites_created"] == 1
    wjl = db.scalars(select(Site).where(Site.code == "wjl")).one()
    assert (wjl.address, wjl.street, wjl.contact_name, wjl.contact_phone) == (
        "万家丽南路188号", "黎托街道", "王芳", "13900001111")
    # Blank cells keep what is there; a new contact replaces the old one.
    again = import_file(db, "sites", "s.csv", csv_bytes(
        [rows[0], ["wjl", "万家丽路卡口", "测温登记", "", "", "李明", ""]]), ACTOR)
    assert again.details["sites_updated"] == 1
    assert (wjl.address, wjl.contact_name, wjl.contact_phone) == (
        "万家丽南路188号", "李明", "13900001111")
    errors = _reject(db, "sites", "s.csv", csv_bytes(
        [rows[0], ["wjl", "万家丽路卡口", "测温登记", "", "", "李明", ""],
         ["wjl", "万家丽路卡口", "车辆引导", "", "", "赵六", ""]]))
    assert [(e.row, e.column, e.code) for e in errors] == [(3, "联系人", "site_conflict")]


# -- demand -------------------------------------------------------------------------------

@pytest.fixture
def district(db: Session, create_site: Callable[..., Site],
             create_shift: Callable[..., ShiftTemplate]) -> dict[str, Any]:
    create_site("wjl", name="万家丽路卡口", posts=["wjl-temp", "wjl-car"])
    for p, name in zip(db.scalars(select(Post).order_by(Post.id)), ["测温登记", "车辆引导"],
                       strict=True):
        p.name = name
    shifts = [create_shift("M", "08:00", "16:00", name="早班", position=0),
              create_shift("A", "16:00", "00:00", name="中班", position=1)]
    db.flush()
    return {"shifts": shifts}


def test_demand(db: Session, district: dict[str, Any],
                create_roster: Callable[..., Any]) -> None:
    roster = create_roster(start=dt.date(2022, 4, 4), days=7)
    rows = [["用人需求"], ["点位", "岗位", "班次", "最少人数", "最多人数", "日期", "技能要求"],
            ["万家丽路卡口", "测温登记", "早班", 2, 3, "", "党员1、医护1"],
            ["万家丽路卡口", "车辆引导", "中", "1人", "", "2022-04-05至2022-04-07", ""],
            ["", "wjl-temp", "夜班（20:00-次日08:00）", 1, None, "4月10日", "driver:1"]]
    result = import_file(db, "demand", "d.xlsx", xlsx(rows), ACTOR, roster_id=roster.id)
    assert (result.created, result.deleted, result.details["shifts_created"]) == (3, 0, 1)
    demand = db.scalars(select(Demand).where(Demand.roster_id == roster.id)
                        .order_by(Demand.position)).all()
    assert [(d.post.code, d.shift.code, d.min, d.max, d.requires, d.dates) for d in demand] == [
        ("wjl-temp", "M", 2, 3, {"party": 1, "medical": 1}, None),
        ("wjl-car", "A", 1, 1, {}, ["2022-04-05", "2022-04-06", "2022-04-07"]),
        ("wjl-temp", "2000-0800", 1, 1, {"driver": 1}, ["2022-04-10"])]
    night = demand[2].shift
    assert (night.name, night.start, night.end) == ("夜班", dt.time(20), dt.time(8))
    # a second import replaces the roster's demand
    again = import_file(db, "demand", "d.csv", csv_bytes(
        [["岗位", "班次", "最少人数"], ["测温登记", "20:00-08:00", 4]]), ACTOR, roster_id=roster.id)
    assert (again.created, again.deleted, again.details["shifts_created"]) == (1, 3, 0)


def test_demand_errors(db: Session, district: dict[str, Any],
                       create_roster: Callable[..., Any]) -> None:
    roster = create_roster(start=dt.date(2022, 4, 4), days=7)
    rows = [["点位", "岗位", "班次", "最少人数", "最多人数", "日期", "技能要求"],
            ["万家丽路卡口", "扫码", "早班", 2, "", "", ""],
            ["万家丽路卡口", "测温登记", "08:00-次日09:00", 2, 1, "2022-05-01", "医护3"],
            ["火星", "测温登记", "晚班", "两人", "", "", ""]]
    errors = _reject(db, "demand", "d.csv", csv_bytes(rows), roster_id=roster.id)
    assert sorted((e.row, e.column, e.code) for e in errors) == [
        (2, "岗位", "post_unknown"),
        (3, "技能要求", "requires_over_max"), (3, "日期", "date_outside"),
        (3, "最多人数", "max_below_min"), (3, "班次", "shift_invalid"),
        (4, "最少人数", "not_a_count"), (4, "点位", "site_unknown"), (4, "班次", "shift_unknown")]
    assert _reject(db, "demand", "d.csv", csv_bytes(rows), roster_id=None)[0].code == \
        "roster_missing"


def test_shift_ranges() -> None:
    assert parse_shift_range("20:00-次日08:00") == ("", dt.time(20), dt.time(8))
    assert parse_shift_range("早班 08:00-16:00") == ("早班", dt.time(8), dt.time(16))
    assert parse_shift_range("16:00～24:00") == ("", dt.time(16), dt.time(0))
    assert parse_shift_range("早班") is None
    for bad in ("08:00-次日09:00", "08:00-08:00", "25:00-08:00"):
        with pytest.raises(ValueError):
            parse_shift_range(bad)


# -- unavailability -----------------------------------------------------------------------

def test_unavailability(db: Session, district: dict[str, Any],
                        create_volunteer: Callable[..., Volunteer]) -> None:
    v = create_volunteer("李伟", phone="13800138000")
    rows = [["手机号", "姓名", "日期", "班次", "原因"],
            [13800138000, "李伟", dt.datetime(2022, 4, 5), "", "体检"],
            ["13800138000", "", "2022/4/6至2022/4/7", "早班", ""],
            ["13800138000", "", "2022年4月8日", "16:00-24:00", ""]]
    result = import_file(db, "unavailability", "u.xlsx", xlsx(rows), ACTOR)
    assert result.created == 4
    got = db.scalars(select(Unavailability).where(Unavailability.volunteer_id == v.id)
                     .order_by(Unavailability.date)).all()
    assert [(u.date.day, u.shift.code if u.shift else None, u.reason) for u in got] == [
        (5, None, "体检"), (6, "M", None), (7, "M", None), (8, "A", None)]
    again = import_file(db, "unavailability", "u.xlsx", xlsx(rows), ACTOR)
    assert (again.created, again.unchanged) == (0, 4)


def test_unavailability_errors(db: Session, district: dict[str, Any],
                               create_volunteer: Callable[..., Volunteer]) -> None:
    create_volunteer("李伟", phone="13800138000")
    rows = [["手机号", "姓名", "日期", "班次"],
            ["13900139000", "", "2022-04-05", ""],
            ["13800138000", "王芳", "2022-04-05", ""],
            ["13800138000", "", "4月5日", "20:00-次日08:00"]]
    errors = _reject(db, "unavailability", "u.csv", csv_bytes(rows))
    assert sorted((e.row, e.column, e.code, e.value) for e in errors) == [
        (2, "手机号", "volunteer_unknown", "139****9000"),
        (3, "姓名", "name_mismatch", "王芳"),
        (4, "日期", "date_invalid", "4月5日"), (4, "班次", "shift_unknown", "20:00-次日08:00")]


# -- templates ----------------------------------------------------------------------------

def test_template_round_trip(db: Session, create_roster: Callable[..., Any]) -> None:
    import_file(db, "sites", "s.xlsx", fill_template(template_xlsx("sites"), [
        ["wjl", "万家丽路卡口", "卡口", "", "测温登记"]]), ACTOR)
    volunteers = fill_template(template_xlsx("volunteers"), [
        ["李伟", "13800138000", id_number(), "社区", "党员、医护", "是", 5, 1, "万家丽路卡口", "在岗"]])
    assert import_file(db, "volunteers", "v.xlsx", volunteers, ACTOR).created == 1
    roster = create_roster(start=dt.date(2022, 4, 4), days=3)
    demand = fill_template(template_xlsx("demand"), [
        ["万家丽路卡口", "测温登记", "08:00-16:00", 1, 2, "", "党员1"]])
    assert import_file(db, "demand", "d.xlsx", demand, ACTOR, roster_id=roster.id).created == 1
    unavailable = fill_template(template_xlsx("unavailability"), [
        ["13800138000", "李伟", "2022-04-05", "08:00-16:00", "体检"]])
    assert import_file(db, "unavailability", "u.xlsx", unavailable, ACTOR).created == 1
    v = _volunteer(db, "+8613800138000")
    assert (v.party_member, v.skills, v.min_shifts, [s.code for s in v.allowed_sites]) == (
        True, ["medical"], 1, ["wjl"])


@pytest.mark.parametrize("kind", KINDS)
def test_header_names_are_unambiguous(kind: str) -> None:
    names = [imports._norm_header(n) for c in imports.COLUMNS[kind] for n in (c.header, *c.aliases)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("kind", KINDS)
def test_templates_have_the_chinese_headers(kind: str) -> None:
    rows = [c.header for c in imports.COLUMNS[kind]]
    from openpyxl import load_workbook
    book = load_workbook(io.BytesIO(template_xlsx(kind)))
    assert [c.value for c in book.worksheets[0][1]] == rows
    assert book.worksheets[0].max_row == 1  # no example row to import by mistake
    assert template_csv(kind).decode("utf-8-sig").strip() == ",".join(rows)


# -- random input -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    url = f"sqlite:///{tmp_path_factory.mktemp('imports') / 'random.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        site = Site(code="wjl", name="万家丽路卡口", kind="checkpoint",
                    posts=[Post(code="wjl-temp", name="测温登记")])
        session.add_all([site, Volunteer(code="v1", name="李伟", phone="13800138000"),
                         ShiftTemplate(code="M", name="早班", start=dt.time(8),
                                       end=dt.time(16))])
        session.add(Roster(name="随机", start=dt.date(2022, 4, 4), days=7,
                           rule_set=RuleSet(name="随机")))
    yield engine
    engine.dispose()


def _attempt(engine: Any, kind: str, filename: str, data: bytes) -> None:
    with engine.connect() as connection, connection.begin() as transaction:
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            import_file(session, kind, filename, data, ACTOR, roster_id=1)
        except ImportFailed as exc:
            assert exc.errors and exc.status in (413, 422)
        finally:
            session.close()
            transaction.rollback()


_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])


@_SETTINGS
@given(data=st.one_of(st.binary(max_size=600),
                      st.binary(max_size=400).map(lambda b: b"PK\x03\x04" + b),
                      st.text(max_size=300).map(lambda t: t.encode("utf-8"))),
       kind=st.sampled_from(KINDS), ext=st.sampled_from(["csv", "xlsx", "xls", ""]))
def test_random_bytes(scratch: Any, data: bytes, kind: str, ext: str) -> None:
    _attempt(scratch, kind, f"f.{ext}", data)


_CELLS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(2100, 1, 1)),
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=25),
    st.sampled_from(["13800138000", "1.38E+10", "是", "否", "党员、医护", "20:00-次日08:00",
                     "2022-04-05至2022-04-07", "早班", "万家丽路卡口", "测温登记", "１３８"]))


@_SETTINGS
@given(kind=st.sampled_from(KINDS), as_csv=st.booleans(), title=st.booleans(),
       rows=st.lists(st.lists(_CELLS, max_size=8), max_size=6))
def test_random_cells(scratch: Any, kind: str, as_csv: bool, title: bool,
                      rows: list[list[Any]]) -> None:
    header = [c.header for c in imports.COLUMNS[kind]]
    table = ([["标题"]] if title else []) + [header] + rows
    if as_csv:
        data = csv_bytes(table, encoding="gb18030")
        _attempt(scratch, kind, "f.csv", data)
    else:
        book = Workbook()
        for row in table:
            book.active.append(row)
        out = io.BytesIO()
        book.save(out)
        _attempt(scratch, kind, "f.xlsx", out.getvalue())


def test_a_failure_while_writing_leaves_nothing(db: Session,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import IntegrityError

    def fail(*_: Any, **__: Any) -> None:
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    monkeypatch.setattr(imports.audit, "record", fail)
    data = csv_bytes([["姓名", "手机号"], ["李伟", "13800138000"]])
    assert _reject(db, "volunteers", "v.csv", data)[0].code == "conflict"
    monkeypatch.undo()
    assert import_file(db, "volunteers", "v.csv", data, ACTOR).created == 1  # session usable


def test_requirement_forms() -> None:
    parse = imports._parse_requires
    assert parse("党员1、医护1") == {"party": 1, "medical": 1}
    assert parse("2名医护, driver:1") == {"medical": 2, "driver": 1}
    assert parse("医护×2 党员") == {"medical": 2, "party": 1}


def test_column_twice_and_error_body(db: Session) -> None:
    import json

    data = csv_bytes([["姓名", "手机号", "电话"], ["李伟", "13800138000", "13800138000"]])
    with pytest.raises(ImportRejected) as info:
        import_file(db, "volunteers", "v.csv", data, ACTOR)
    body = json.loads(json.dumps(info.value.to_dict(), ensure_ascii=False))
    assert body["status"] == 422 and body["errors"][0]["code"] == "column_twice"
    assert "B、C" in body["errors"][0]["message"]


_WORKBOOK = xlsx([["姓名", "手机号"], *[["李伟", f"138001380{i:02d}"] for i in range(20)]])


@_SETTINGS
@given(cut=st.integers(0, len(_WORKBOOK)),
       flips=st.lists(st.tuples(st.integers(0, len(_WORKBOOK) - 1), st.integers(0, 255)),
                      max_size=12))
def test_damaged_workbooks(scratch: Any, cut: int, flips: list[tuple[int, int]]) -> None:
    damaged = bytearray(_WORKBOOK)
    for at, byte in flips:
        damaged[at] = byte
    _attempt(scratch, "volunteers", "v.xlsx", bytes(damaged[:cut] if cut % 2 else damaged))
