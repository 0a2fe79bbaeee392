"""Exports that coordinators hand out: the roster workbook and the service-hours report.

- `roster_workbook(session, roster_id, version_number=None)`: XLSX bytes. A 说明 sheet
  (which version and why, coverage, legend), a 缺口明细 sheet (every unmet requirement
  with the solver's reason), one sheet per site (rows: post × shift; columns: dates;
  cells: names, ★ Party member, ✚ medical staff; unmet cells filled and marked
  "缺 N 人" with the reason as a cell comment) and one sheet per unit (its people's
  shifts: date, shift, site, post).
- `service_hours(session, roster_id, version_number=None)`: per volunteer and per unit,
  the shifts (人次), service days and hours (real shift lengths: 22:00-06:00 is 8 h);
  `service_hours_xlsx` / `service_hours_csv` write it.

Without `version_number` the published version is exported, else the latest draft (the
说明 sheet says which). Every sheet is the printable layout: landscape A4, fitted to the
page width, title rows (and label columns) repeated on each page, roster name in the
header and page numbers in the footer, frozen panes on screen. A second "print copy" of
each site would double the file and could drift from the on-screen sheet.

Exports leave the building, so phone numbers are masked (138****8000) unless the caller
passes ``full_phones=True``, and every text cell goes through `neutralise`: a value that
a spreadsheet would run as a formula (OWASP "CSV injection") is made plain text.

Each export reads the database in a fixed handful of queries (no query per row) and
writes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from scheduler.db import utcnow
from scheduler.imports import mask, shift_label
from scheduler.models import (
    Assignment,
    Demand,
    Post,
    Roster,
    RosterVersion,
    ShiftTemplate,
    Site,
    Volunteer,
)
from scheduler.rosters import published_version
from solver.i18n import skill_label

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

#: The skill tag of medical staff (the scenario generator's and the solver's `medical`).
MEDICAL_SKILL = "medical"
#: Marks after a name in the roster: Party member (党员), medical staff (医护).
PARTY_MARK, MEDICAL_MARK = "★", "✚"
#: First characters that make a spreadsheet read a cell as a formula (OWASP), tab and CR
#: included because Excel skips them before looking for one.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Excel's limit on sheet names, and the characters it refuses in them.
SHEET_NAME_MAX = 31
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")
#: Unit sheets are named "单位·<unit>" so that they cannot be taken for a site.
UNIT_SHEET_PREFIX = "单位·"
NO_UNIT = "（未填单位）"
STATE_LABELS = {"draft": "草稿", "published": "已发布", "superseded": "已被替代"}
WEEKDAYS = "一二三四五六日"
#: Fills: unmet demand (light red), no demand on that date (light grey), headers.
UNMET_FILL, NO_DEMAND_FILL, HEADER_FILL = "FFC7CE", "EDEDED", "DDEBF7"
_MOBILE = re.compile(r"1[3-9]\d{9}")


class NoVersionError(LookupError):
    """The roster has no version to export (it was never solved)."""


def neutralise(value: Any) -> Any:
    """`value`, or for text that a spreadsheet would run as a formula, that text after `'`.

    The one guard of every text cell the exports write (XLSX and CSV): names, units,
    site and post names come from imports and may hold ``=HYPERLINK(...)`` or ``@SUM(1)``.
    Numbers, dates and None pass through unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def shift_hours(shift: ShiftTemplate) -> float:
    """The length of a shift in hours; one that ends at or before its start ends next day."""
    start = shift.start.hour * 60 + shift.start.minute
    end = shift.end.hour * 60 + shift.end.minute
    minutes = (end - start) % 1440 or 1440
    return minutes / 60


def phone_text(phone: str | None, *, full: bool = False) -> str:
    """A stored E.164 phone as Chinese people write it, masked unless `full`.

    +8613800138000 → 138****8000, full: 138 0013 8000; a +86 landline gets its 0 back
    (full: 0731 84567890, 010 12345678). Full numbers are grouped with spaces so that
    Excel, opening the CSV, keeps them as text instead of a number without its leading 0.
    """
    if not phone:
        return ""
    if not phone.startswith("+86"):
        return phone if full else mask(phone)
    national = phone[3:]
    if _MOBILE.fullmatch(national):
        return f"{national[:3]} {national[3:7]} {national[7:]}" if full else mask(national)
    national = "0" + national
    area = 3 if national[1] in "12" else 4  # 010, 02X; every other area code has 4 digits
    return f"{national[:area]} {national[area:]}" if full else mask(national)


def sheet_title(name: str, taken: set[str]) -> str:
    """A valid Excel sheet name for `name`, not in `taken` (compared case-insensitively).

    Drops the characters Excel refuses, trims leading and trailing apostrophes, cuts to
    31 characters (UTF-16 units, as Excel counts), and resolves a clash — two long
    Chinese site names that only differ after the 31st character — with "(2)", "(3)"….
    The result is added to `taken`.
    """
    clean = _SHEET_NAME_BAD.sub("_", name).strip().strip("'").strip() or "未命名"
    title = _cut(clean, SHEET_NAME_MAX)
    n = 1
    while title.casefold() in taken:
        n += 1
        suffix = f"({n})"
        title = _cut(clean, SHEET_NAME_MAX - len(suffix)) + suffix
    taken.add(title.casefold())
    return title


def _cut(text: str, units: int) -> str:
    """The longest prefix of `text` with at most `units` UTF-16 code units."""
    out, used = [], 0
    for ch in text:
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > units:
            break
        out.append(ch)
    return "".join(out).rstrip("'")


# -- loading ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Row:
    """One assignment with the ids it names."""

    date: dt.date
    shift_id: int
    post_id: int
    volunteer_id: int


@dataclass
class _Data:
    """Everything one export needs, read in a fixed number of queries."""

    roster: Roster
    version: RosterVersion
    chosen: str  # why this version: "requested", "published", "latest draft"
    rows: list[_Row]
    volunteers: dict[int, Volunteer]
    shifts: dict[int, ShiftTemplate]
    posts: dict[int, Post]
    sites: dict[int, Site]
    demand: list[Demand]

    @property
    def dates(self) -> list[dt.date]:
        return [self.roster.start + dt.timedelta(days=i) for i in range(self.roster.days)]


def _pick_version(session: Session, roster: Roster,
                  number: int | None) -> tuple[RosterVersion, str]:
    if number is not None:
        version = session.scalars(select(RosterVersion).where(
            RosterVersion.roster_id == roster.id,
            RosterVersion.number == number)).one_or_none()
        if version is None:
            raise LookupError(f"roster {roster.id} has no version {number}")
        return version, "requested"
    version = published_version(session, roster.id)
    if version is not None:
        return version, "published"
    latest = session.scalar(select(func.max(RosterVersion.number)).where(
        RosterVersion.roster_id == roster.id, RosterVersion.state == "draft"))
    if latest is None:
        raise NoVersionError(f"roster {roster.id} has no version to export; solve it first")
    return _pick_version(session, roster, latest)[0], "latest draft"


def _choose(session: Session, roster_id: int,
            number: int | None) -> tuple[Roster, RosterVersion, str]:
    roster = session.get(Roster, roster_id)
    if roster is None:
        raise LookupError(f"no roster {roster_id}")
    return (roster, *_pick_version(session, roster, number))


def export_version(session: Session, roster_id: int,
                   version_number: int | None = None) -> RosterVersion:
    """The version that an export with these arguments shows (for messages and file names).

    `version_number`, else the published version, else the latest draft. Raises
    `LookupError` for an unknown roster or version, `NoVersionError` if there is none.
    """
    return _choose(session, roster_id, version_number)[1]


def _load(session: Session, roster_id: int, number: int | None) -> _Data:
    roster, version, chosen = _choose(session, roster_id, number)
    rows = [_Row(*r) for r in session.execute(
        select(Assignment.date, Assignment.shift_id, Assignment.post_id, Assignment.volunteer_id)
        .where(Assignment.version_id == version.id))]
    assigned = select(Assignment.volunteer_id).where(Assignment.version_id == version.id)
    volunteers = {v.id: v for v in session.scalars(
        select(Volunteer).where(Volunteer.id.in_(assigned)))}
    demand = list(session.scalars(select(Demand).where(Demand.roster_id == roster.id)
                                  .order_by(Demand.position)))
    posts = {p.id: p for p in session.scalars(
        select(Post).where(or_(
            Post.id.in_(select(Assignment.post_id).where(Assignment.version_id == version.id)),
            Post.id.in_(select(Demand.post_id).where(Demand.roster_id == roster.id))))
        .options(selectinload(Post.site)))}
    sites = {p.site.id: p.site for p in posts.values()}
    shifts = {s.id: s for s in session.scalars(select(ShiftTemplate))}
    return _Data(roster, version, chosen, rows, volunteers, shifts, posts, sites, demand)


def _name(volunteer: Volunteer) -> str:
    """The name with its marks: 张伟★✚."""
    marks = (PARTY_MARK if volunteer.party_member else "") + (
        MEDICAL_MARK if MEDICAL_SKILL in (volunteer.skills or ()) else "")
    return volunteer.name + marks


def _unit(volunteer: Volunteer) -> str:
    return volunteer.unit.strip() or NO_UNIT


def _day(date: dt.date) -> str:
    return f"{date.month}月{date.day}日"


def _weekday(date: dt.date) -> str:
    return "周" + WEEKDAYS[date.weekday()]


def _shift_order(shift: ShiftTemplate) -> tuple[int, dt.time, int]:
    return shift.position, shift.start, shift.id


def _entry_date(entry: dict[str, Any]) -> dt.date | None:
    """The date of an `unmet` entry, None if the stored text is not a date."""
    try:
        return dt.date.fromisoformat(str(entry.get("date")))
    except ValueError:
        return None


def _missing_text(entry: dict[str, Any]) -> str:
    """缺 2 人 / 缺 1 名医护."""
    n, skill = entry.get("missing", 0), entry.get("skill")
    return f"缺 {n} 人" if skill is None else f"缺 {n} 名{skill_label(skill).zh}"


# -- workbook helpers ---------------------------------------------------------------------

def _put(sheet: Worksheet, row: int, column: int, value: Any) -> Any:
    """Write one cell, neutralised; every cell of every export is written here or by `_append`."""
    return sheet.cell(row=row, column=column, value=neutralise(value))


def _append(sheet: Worksheet, values: Iterable[Any]) -> None:
    sheet.append([neutralise(v) for v in values])


def _header_footer_text(text: str) -> str:
    """Text for an Excel header or footer, where `&` starts a code."""
    return text.replace("&", "&&")


def _print_setup(sheet: Worksheet, title: str, *, title_rows: str,
                 title_columns: str | None = None, freeze: str | None = None) -> None:
    """Landscape A4 fitted to the page width, titles repeated, header and page numbers."""
    from openpyxl.worksheet.properties import PageSetupProperties

    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0  # as many pages down as it takes
    sheet.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    sheet.print_options.horizontalCentered = True
    sheet.page_margins.left = sheet.page_margins.right = 0.4
    sheet.print_title_rows = title_rows
    if title_columns:
        sheet.print_title_cols = title_columns
    sheet.oddHeader.center.text = _header_footer_text(title)
    sheet.oddFooter.center.text = "第 &P 页，共 &N 页"
    if freeze:
        sheet.freeze_panes = freeze


def _title_row(sheet: Worksheet, text: str, width: int) -> None:
    from openpyxl.styles import Alignment, Font

    cell = _put(sheet, 1, 1, text)
    cell.font = Font(bold=True, size=14)
    cell.alignment = Alignment(vertical="center")
    if width > 1:
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    sheet.row_dimensions[1].height = 24


def _header_row(sheet: Worksheet, row: int, headers: Sequence[str]) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill

    fill = PatternFill("solid", fgColor=HEADER_FILL)
    for column, text in enumerate(headers, start=1):
        cell = _put(sheet, row, column, text)
        cell.font = Font(bold=True)
        cell.fill = fill
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)


def _widths(sheet: Worksheet, widths: Sequence[float]) -> None:
    from openpyxl.utils import get_column_letter

    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width


def _save(book: Any) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# -- the roster workbook ------------------------------------------------------------------

@dataclass
class _Grid:
    """The roster on (post, shift, date) cells: who, how many needed, what is missing."""

    people: dict[tuple[int, int, dt.date], list[int]] = field(
        default_factory=lambda: defaultdict(list))
    needed: Counter[tuple[int, int, dt.date]] = field(default_factory=Counter)
    unmet: dict[tuple[int, int, dt.date], list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list))
    shifts: dict[int, set[int]] = field(  # post -> shifts with demand or people
        default_factory=lambda: defaultdict(set))


def _grid(data: _Data) -> _Grid:
    grid = _Grid()
    dates = data.dates
    for row in data.rows:
        grid.people[(row.post_id, row.shift_id, row.date)].append(row.volunteer_id)
    for d in data.demand:
        on = dates if d.dates is None else [dt.date.fromisoformat(x) for x in d.dates]
        for day in on:
            grid.needed[(d.post_id, d.shift_id, day)] += d.min
    for post, shift, _date in [*grid.needed, *grid.people]:
        grid.shifts[post].add(shift)
    post_of = {p.code: p.id for p in data.posts.values()}
    shift_of = {s.code: s.id for s in data.shifts.values()}
    for entry in data.version.unmet or []:
        post_id = post_of.get(str(entry.get("post")))
        shift_id = shift_of.get(str(entry.get("shift")))
        date = _entry_date(entry)
        if post_id is not None and shift_id is not None and date is not None:
            grid.unmet[(post_id, shift_id, date)].append(entry)  # others: in 缺口明细 only
    for names in grid.people.values():
        names.sort(key=lambda v: (data.volunteers[v].name, v))
    return grid


def roster_workbook(session: Session, roster_id: int, version_number: int | None = None, *,
                    full_phones: bool = False) -> bytes:
    """The roster version as an XLSX workbook (see the module docstring for its sheets).

    Raises `LookupError` for an unknown roster or version number, `NoVersionError` (a
    `LookupError`) for a roster without any version.
    """
    from openpyxl import Workbook

    data = _load(session, roster_id, version_number)
    grid = _grid(data)
    generated = utcnow().astimezone(ZoneInfo(data.roster.timezone))
    book = Workbook()
    taken: set[str] = set()
    cover = book.active
    cover.title = sheet_title("说明", taken)
    _cover_sheet(cover, data, grid, generated, full_phones)
    _unmet_sheet(book.create_sheet(sheet_title("缺口明细", taken)), data)
    for site in sorted(data.sites.values(), key=lambda s: s.id):
        _site_sheet(book.create_sheet(sheet_title(site.name, taken)), data, grid, site)
    by_unit: dict[str, list[_Row]] = defaultdict(list)
    for row in data.rows:
        by_unit[_unit(data.volunteers[row.volunteer_id])].append(row)
    for unit in sorted(by_unit):
        sheet = book.create_sheet(sheet_title(UNIT_SHEET_PREFIX + unit, taken))
        _unit_sheet(sheet, data, unit, by_unit[unit], full_phones)
    return _save(book)


def _version_label(data: _Data) -> str:
    version = data.version
    state = STATE_LABELS.get(version.state, version.state)
    why = {"requested": "按指定版本导出",
           "published": "默认导出已发布版本",
           "latest draft": "尚无已发布版本，导出最新草稿（未发布，仅供核对）"}[data.chosen]
    return f"第 {version.number} 版（{state}）— {why}"


def _cover_sheet(sheet: Worksheet, data: _Data, grid: _Grid, generated: dt.datetime,
                 full_phones: bool) -> None:
    from openpyxl.styles import Alignment, Font

    roster, version = data.roster, data.version
    needed = sum(grid.needed.values())
    missing = sum(int(u.get("missing") or 0) for u in version.unmet or []
                  if u.get("skill") is None)
    by_skill: Counter[str] = Counter()
    for u in version.unmet or []:
        if u.get("skill") is not None:
            by_skill[skill_label(u["skill"]).zh] += int(u.get("missing") or 0)
    coverage = "—" if needed == 0 else f"{max(0.0, 1 - missing / needed):.1%}"
    lines: list[tuple[str, Any]] = [
        ("排班名称", roster.name),
        ("排班周期", f"{roster.start.isoformat()} 至 {roster.end.isoformat()}（{roster.days} 天）"),
        ("导出版本", _version_label(data)),
        ("求解状态", version.solver_status or "—"),
        ("生成时间", f"{generated:%Y-%m-%d %H:%M}（{data.roster.timezone}）"),
        ("需求人次（最低）", needed),
        ("已排人次", len(data.rows)),
        ("缺口人次", missing),
        ("覆盖率", coverage),
        ("技能缺口", "；".join(f"{k} {n} 人次" for k, n in sorted(by_skill.items())) or "无"),
        ("缺口明细", f"{len(version.unmet or [])} 项，见“缺口明细”工作表"),
        ("", ""),
        ("图例", ""),
        (PARTY_MARK, "党员"),
        (MEDICAL_MARK, "医护人员"),
        ("红色底纹", "缺口：格内写明“缺 N 人”，原因见批注和“缺口明细”"),
        ("灰色底纹", "当天该岗位该班次无用人需求"),
        ("手机号", "完整显示（按要求导出）" if full_phones else "已隐藏中间四位"),
        ("工时", "按班次实际时长计，跨午夜的夜班（如 22:00-次日06:00）计 8 小时"),
    ]
    _title_row(sheet, f"{roster.name} 排班表 说明", 2)
    for i, (label, value) in enumerate(lines, start=2):
        _put(sheet, i, 1, label).font = Font(bold=True)
        _put(sheet, i, 2, value).alignment = Alignment(wrap_text=True, horizontal="left")
        if label == "红色底纹":
            sheet.cell(row=i, column=1).fill = _fill(UNMET_FILL)
        if label == "灰色底纹":
            sheet.cell(row=i, column=1).fill = _fill(NO_DEMAND_FILL)
    _widths(sheet, (14, 80))
    _print_setup(sheet, f"{roster.name} 说明", title_rows="1:1")


def _fill(colour: str) -> Any:
    from openpyxl.styles import PatternFill

    return PatternFill("solid", fgColor=colour)


def _unmet_sheet(sheet: Worksheet, data: _Data) -> None:
    from openpyxl.styles import Alignment

    by_code = {p.code: p for p in data.posts.values()}
    shifts = {s.code: s for s in data.shifts.values()}
    headers = ("日期", "星期", "班次", "点位", "岗位", "缺口", "原因")
    _title_row(sheet, f"{data.roster.name} 缺口明细（第 {data.version.number} 版）",
               len(headers))
    _header_row(sheet, 2, headers)

    def order(u: dict[str, Any]) -> tuple[Any, ...]:
        """By date, then shift of the day, site and post as the site sheets show them."""
        post, shift = by_code.get(str(u.get("post"))), shifts.get(str(u.get("shift")))
        return (str(u.get("date")),
                _shift_order(shift) if shift else (1 << 30, dt.time(0), 0),
                (post.site_id, post.position, post.id) if post else (1 << 30, 0, 0),
                str(u.get("skill") or ""))

    for entry in sorted(data.version.unmet or [], key=order):
        post, shift = by_code.get(str(entry.get("post"))), shifts.get(str(entry.get("shift")))
        date = _entry_date(entry)
        day, weekday = (str(entry.get("date")), "") if date is None else (
            _day(date), _weekday(date))
        _append(sheet, [
            day, weekday, shift.name if shift else entry.get("shift"),
            post.site.name if post else "", post.name if post else entry.get("post"),
            _missing_text(entry), entry.get("reason_zh") or entry.get("reason") or ""])
        sheet.cell(row=sheet.max_row, column=7).alignment = Alignment(wrap_text=True)
    _widths(sheet, (10, 6, 8, 18, 14, 12, 90))
    _print_setup(sheet, f"{data.roster.name} 缺口明细", title_rows="1:2", freeze="A3")


def _site_sheet(sheet: Worksheet, data: _Data, grid: _Grid, site: Site) -> None:
    """Rows: the site's posts × shifts (those with demand or people); columns: dates."""
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font

    dates = data.dates
    posts = sorted((p for p in data.posts.values() if p.site_id == site.id),
                   key=lambda p: (p.position, p.id))
    headers = ["岗位", "班次"] + [f"{_day(d)}\n{_weekday(d)}" for d in dates]
    _title_row(sheet, f"{data.roster.name} · {site.name} 排班表（第 {data.version.number} 版，"
               f"{STATE_LABELS.get(data.version.state, data.version.state)}）", len(headers))
    _header_row(sheet, 2, headers)
    sheet.row_dimensions[2].height = 30
    wrap = Alignment(wrap_text=True, vertical="top")
    row = 3
    for post in posts:
        shifts = sorted((data.shifts[s] for s in grid.shifts.get(post.id, ())),
                        key=_shift_order)
        if not shifts:
            continue
        first = row
        for shift in shifts:
            _put(sheet, row, 2, f"{shift.name}\n{shift_label(shift.start, shift.end)}"
                 ).alignment = wrap
            lines = 1
            for column, date in enumerate(dates, start=3):
                key = (post.id, shift.id, date)
                text_lines = [_name(data.volunteers[v]) for v in grid.people.get(key, [])]
                missing = grid.unmet.get(key, [])
                text_lines += [_missing_text(u) for u in missing]
                cell = _put(sheet, row, column, "\n".join(text_lines) or None)
                cell.alignment = wrap
                if missing:
                    cell.fill = _fill(UNMET_FILL)
                    cell.font = Font(color="9C0006")
                    reasons = "\n".join(u.get("reason_zh") or u.get("reason") or ""
                                        for u in missing)
                    if reasons.strip():
                        cell.comment = Comment(reasons, "Bastion",
                                               width=320, height=160)
                elif grid.needed.get(key, 0) == 0 and not text_lines:
                    cell.fill = _fill(NO_DEMAND_FILL)
                lines = max(lines, len(text_lines))
            sheet.row_dimensions[row].height = max(30, 15 * lines)
            row += 1
        _put(sheet, first, 1, post.name).alignment = Alignment(wrap_text=True, vertical="center")
        if row - first > 1:
            sheet.merge_cells(start_row=first, start_column=1, end_row=row - 1, end_column=1)
    _widths(sheet, [12, 13] + [10] * len(dates))
    _print_setup(sheet, f"{data.roster.name} · {site.name}", title_rows="1:2",
                 title_columns="A:B", freeze="C3")


def _unit_sheet(sheet: Worksheet, data: _Data, unit: str, rows: list[_Row],
                full_phones: bool) -> None:
    """The unit's people and their shifts, one line per shift, by person then time."""
    headers = ("姓名", "手机号", "日期", "星期", "班次", "时间", "点位", "岗位")
    _title_row(sheet, f"{data.roster.name} · {unit} 人员班次（第 {data.version.number} 版）",
               len(headers))
    _header_row(sheet, 2, headers)

    def order(r: _Row) -> tuple[Any, ...]:
        shift = data.shifts[r.shift_id]
        return (data.volunteers[r.volunteer_id].name, r.volunteer_id, r.date,
                shift.start, shift.position)

    for r in sorted(rows, key=order):
        volunteer, shift, post = data.volunteers[r.volunteer_id], data.shifts[r.shift_id], \
            data.posts[r.post_id]
        _append(sheet, [_name(volunteer), phone_text(volunteer.phone, full=full_phones),
                        r.date, _weekday(r.date), shift.name,
                        shift_label(shift.start, shift.end), post.site.name, post.name])
        sheet.cell(row=sheet.max_row, column=3).number_format = "yyyy-mm-dd"
    _widths(sheet, (12, 15, 12, 6, 8, 18, 20, 16))
    _print_setup(sheet, f"{data.roster.name} · {unit}", title_rows="1:2", freeze="B3")


# -- service hours ------------------------------------------------------------------------

@dataclass(frozen=True)
class VolunteerHours:
    """One volunteer's service in a version: shifts (人次), distinct days, hours."""

    name: str
    unit: str
    phone: str
    shifts: int
    days: int
    hours: float


@dataclass(frozen=True)
class UnitHours:
    """A unit's totals: people who served, shifts (人次), hours."""

    unit: str
    people: int
    shifts: int
    hours: float


@dataclass
class HoursReport:
    """The service-hours report of one roster version."""

    roster_name: str
    version_number: int
    version_state: str
    volunteers: list[VolunteerHours]
    units: list[UnitHours]

    @property
    def total(self) -> UnitHours:
        return UnitHours("合计", sum(u.people for u in self.units),
                         sum(u.shifts for u in self.units),
                         round(sum(v.hours for v in self.volunteers), 2))


def service_hours(session: Session, roster_id: int, version_number: int | None = None, *,
                  full_phones: bool = False) -> HoursReport:
    """Shifts (人次), days and hours per volunteer who serves in the version, and per unit.

    Hours are the shifts' real lengths (a night shift 22:00-06:00 counts 8 h). A unit's
    figures are the sums of its volunteers'. Sorted by unit, then name. Raises like
    `roster_workbook`.
    """
    data = _load(session, roster_id, version_number)
    shifts: Counter[int] = Counter()
    minutes: Counter[int] = Counter()
    days: dict[int, set[dt.date]] = defaultdict(set)
    for row in data.rows:
        shifts[row.volunteer_id] += 1
        minutes[row.volunteer_id] += round(shift_hours(data.shifts[row.shift_id]) * 60)
        days[row.volunteer_id].add(row.date)
    people = sorted(data.volunteers.values(), key=lambda v: (_unit(v), v.name, v.id))
    volunteers = [VolunteerHours(v.name, _unit(v), phone_text(v.phone, full=full_phones),
                                 shifts[v.id], len(days[v.id]), round(minutes[v.id] / 60, 2))
                  for v in people]
    units: dict[str, list[VolunteerHours]] = defaultdict(list)
    for vh in volunteers:
        units[vh.unit].append(vh)
    unit_rows = [UnitHours(unit, len(vs), sum(v.shifts for v in vs),
                           round(sum(v.hours for v in vs), 2))
                 for unit, vs in sorted(units.items())]
    return HoursReport(data.roster.name, data.version.number, data.version.state,
                       volunteers, unit_rows)


VOLUNTEER_HEADERS = ("姓名", "单位", "手机号", "班次数（人次）", "服务天数", "服务时长（小时）")
UNIT_HEADERS = ("单位", "人数", "班次数（人次）", "服务时长（小时）")
#: The CSV has both tables in one: `类型` is 志愿者, 单位 or 合计 (filter on it in Excel).
CSV_HEADERS = ("类型", "单位", "姓名", "手机号", "人数", "班次数（人次）", "服务天数",
               "服务时长（小时）")


def service_hours_xlsx(session: Session, roster_id: int, version_number: int | None = None,
                       *, full_phones: bool = False) -> bytes:
    """The report as XLSX: sheet 志愿者工时 (per volunteer) and 单位汇总 (per unit + 合计)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    report = service_hours(session, roster_id, version_number, full_phones=full_phones)
    state = STATE_LABELS.get(report.version_state, report.version_state)
    book = Workbook()
    people = book.active
    people.title = "志愿者工时"
    _title_row(people, f"{report.roster_name} 志愿服务时长（第 {report.version_number} 版，"
               f"{state}）", len(VOLUNTEER_HEADERS))
    _header_row(people, 2, VOLUNTEER_HEADERS)
    for v in report.volunteers:
        _append(people, [v.name, v.unit, v.phone, v.shifts, v.days, v.hours])
    _widths(people, (12, 24, 15, 14, 10, 16))
    _print_setup(people, f"{report.roster_name} 志愿服务时长", title_rows="1:2", freeze="A3")

    units = book.create_sheet("单位汇总")
    _title_row(units, f"{report.roster_name} 各单位服务时长（第 {report.version_number} 版，"
               f"{state}）", len(UNIT_HEADERS))
    _header_row(units, 2, UNIT_HEADERS)
    for u in [*report.units, report.total]:
        _append(units, [u.unit, u.people, u.shifts, u.hours])
    for cell in units[units.max_row]:
        cell.font = Font(bold=True)
    _widths(units, (28, 8, 14, 16))
    _print_setup(units, f"{report.roster_name} 各单位服务时长", title_rows="1:2", freeze="A3")
    return _save(book)


def service_hours_csv(session: Session, roster_id: int, version_number: int | None = None,
                      *, full_phones: bool = False) -> bytes:
    """The report as one CSV (UTF-8 with BOM, so Excel reads the Chinese right).

    Volunteer rows, then unit rows, then the 合计 row, told apart by the 类型 column, so
    one file opens in Excel and filters either way.
    """
    report = service_hours(session, roster_id, version_number, full_phones=full_phones)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    rows: list[list[Any]] = [list(CSV_HEADERS)]
    rows += [["志愿者", v.unit, v.name, v.phone, "", v.shifts, v.days, v.hours]
             for v in report.volunteers]
    rows += [["单位", u.unit, "", "", u.people, u.shifts, "", u.hours] for u in report.units]
    total = report.total
    rows.append(["合计", "", "", "", total.people, total.shifts, "", total.hours])
    writer.writerows([neutralise(v) for v in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


__all__ = ["CSV_HEADERS", "FORMULA_PREFIXES", "MEDICAL_MARK", "MEDICAL_SKILL",
           "NoVersionError", "export_version", "PARTY_MARK", "HoursReport", "UnitHours", "VolunteerHours",
           "neutralise", "phone_text", "roster_workbook", "service_hours", "service_hours_csv",
           "service_hours_xlsx", "sheet_title", "shift_hours"]
