"""Imports of the sheets a district has: volunteers, sites and posts, demand, unavailability.

`import_file(session, kind, filename, data, actor=...)` reads an XLSX workbook or a CSV
file (UTF-8, UTF-8 with BOM, GBK/GB18030, UTF-16 "Unicode text"; the type is detected
from the bytes, not the name), finds the header row (the first of the first rows that
holds every required column; a title row above it is fine; Chinese headers, English
aliases), validates every row, and only then writes, in the caller's transaction inside
a savepoint, with one audit event. Nothing is written when anything is wrong:
`ImportRejected.errors` lists every problem as an `ImportIssue` with the row number as
Excel shows it, the column header, the value (phone and ID numbers masked: 138****8000)
and a Chinese message that says how to fix it (plus English).

What each kind does with rows that match the database:

- ``volunteers``: matched by phone (E.164). A known phone *updates* that volunteer (the
  sheet is the newer truth); a phone twice in the file is an error naming both rows.
  A column that the file does not have leaves that field alone; a blank cell in a column
  it has clears the field (status: blank means active). ID numbers (身份证号) are checked
  (Excel's scientific notation loses digits: rejected) but not stored.
- ``sites``: one row per post. Sites are matched by code, else by name; posts by code,
  else by name within their site. Known ones are updated, others created.
- ``demand``: needs a roster (`roster_id`); the file *replaces* the roster's demand. A
  shift given as a time range (``20:00-次日08:00``) that no shift template has is created.
- ``unavailability``: volunteers by phone; rows already stored are left as they are.

Errors: `ImportRejected` (422; `UnreadableFile` for files that are not a readable sheet)
and `ImportTooLarge` (413: `MAX_FILE_BYTES`, `MAX_ROWS`), both `ImportFailed`.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import re
import unicodedata
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from scheduler import audit
from scheduler.db import utcnow
from scheduler.models import (
    Demand,
    PhoneError,
    Post,
    Roster,
    ShiftTemplate,
    Site,
    Unavailability,
    Volunteer,
    normalize_phone,
    volunteer_sites,
)
from solver.i18n import SKILLS

#: Largest file accepted (bytes); larger ones raise `ImportTooLarge` (413).
MAX_FILE_BYTES = 5 * 1024 * 1024
#: Most data rows (non-blank rows under the header) accepted; more raise `ImportTooLarge`.
MAX_ROWS = 10_000
#: Most rows read at all, blank ones included (a sheet formatted down to row 1,048,576).
MAX_SCANNED_ROWS = 5 * MAX_ROWS
#: Most bytes the parts of an XLSX file may unpack to (a zip bomb is refused).
MAX_UNZIPPED_BYTES = 50 * 1024 * 1024
#: Columns read per row; anything further right is ignored.
MAX_COLUMNS = 64
#: The header row is looked for among this many non-blank rows at the top.
HEADER_SEARCH_ROWS = 20
#: Most dates one row may expand to (a date range).
MAX_RANGE_DAYS = 366

KINDS = ("volunteers", "sites", "demand", "unavailability")
KIND_LABELS = {"volunteers": "志愿者", "sites": "点位和岗位", "demand": "用人需求",
               "unavailability": "不可用时间"}


# -- results and errors -------------------------------------------------------------------

@dataclass(frozen=True)
class ImportIssue:
    """One problem: where (row as Excel numbers it, column header), the value, how to fix."""

    code: str
    message: str  # Chinese, says how to fix it
    message_en: str
    row: int | None = None
    column: str | None = None
    column_letter: str | None = None
    value: str | None = None  # masked for phone and ID numbers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ImportFailed(Exception):
    """An import that wrote nothing; `errors` says why, `status` is the HTTP status."""

    status = 422

    def __init__(self, errors: Sequence[ImportIssue]) -> None:
        self.errors = list(errors)
        first = self.errors[0].message if self.errors else ""
        more = f"（另有 {len(self.errors) - 1} 处错误）" if len(self.errors) > 1 else ""
        super().__init__(first + more)


    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        return {"status": self.status, "error": type(self).__name__, "message": str(self),
                "errors": [e.to_dict() for e in self.errors]}


class ImportRejected(ImportFailed):
    """Bad rows or a bad file: 422, with every error listed."""


class UnreadableFile(ImportRejected):
    """Not a readable XLSX or CSV file (corrupt, truncated, binary, old .xls, empty)."""


class ImportTooLarge(ImportFailed):
    """Over `MAX_FILE_BYTES` or `MAX_ROWS`: 413."""

    status = 413


@dataclass
class ImportResult:
    kind: str
    rows: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    details: dict[str, int] = field(default_factory=dict)
    warnings: list[ImportIssue] = field(default_factory=list)
    audit_event_id: int | None = None
    dry_run: bool = False

    @property
    def message(self) -> str:
        """A one-line Chinese summary: 志愿者：共 5 行，新增 3，更新 1，未变 1。"""
        parts = [f"共 {self.rows} 行", f"新增 {self.created}"]
        parts += [f"{label} {n}" for label, n in (("更新", self.updated), ("未变", self.unchanged),
                                                  ("删除", self.deleted)) if n]
        prefix = "（试导入，未写入）" if self.dry_run else ""
        return f"{prefix}{KIND_LABELS[self.kind]}：{'，'.join(parts)}。"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["warnings"] = [w.to_dict() for w in self.warnings]
        out["message"] = self.message
        return out


def _file_error(code: str, zh: str, en: str) -> UnreadableFile:
    return UnreadableFile([ImportIssue(code=code, message=zh, message_en=en)])


# -- columns ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    field: str
    header: str  # the template's Chinese header
    aliases: tuple[str, ...] = ()
    required: bool = False
    sensitive: bool = False  # value masked in errors
    text: bool = False  # the template formats the column as text
    note: str = ""  # how to fill it, for the template's instructions
    example: str = ""


COLUMNS: dict[str, tuple[Column, ...]] = {
    "volunteers": (
        Column("name", "姓名", ("名字", "志愿者姓名", "name", "full name"), required=True,
               note="必填。少数民族姓名中的间隔号写作“·”。", example="李伟"),
        Column("phone", "手机号", ("手机", "手机号码", "联系电话", "电话", "联系方式", "phone",
                                 "mobile", "phone number", "tel"),
               required=True, sensitive=True, text=True,
               note="必填，11 位手机号；已有此手机号的志愿者会被更新，不会重复创建。",
               example="13800138000"),
        Column("id_number", "身份证号", ("身份证", "身份证号码", "证件号码", "id number",
                                     "id card", "id card number"),
               sensitive=True, text=True,
               note="选填，仅用于核对，不保存。请把该列设为“文本”格式，否则 Excel 会丢掉后 3 位。",
               example="110101199003071233"),
        Column("unit", "单位", ("所在单位", "工作单位", "部门", "单位/部门", "unit",
                              "organisation", "organization", "department"),
               note="选填，如“雨花区卫健局”。", example="雨花区卫健局"),
        Column("skills", "技能", ("特长", "技能标签", "skills", "tags"),
               note="选填，多个用顿号分隔：党员、医护、驾驶员、安保、心理咨询，或英文标签。",
               example="医护、驾驶员"),
        Column("party", "党员", ("是否党员", "政治面貌", "party", "party member"),
               note="选填，是/否。", example="是"),
        Column("max_shifts", "最多班次", ("最多班数", "班次上限", "max shifts"),
               note="选填，整个排班周期最多上几个班。", example="5"),
        Column("min_shifts", "最少班次", ("最少班数", "班次下限", "min shifts"),
               note="选填，至少上几个班。", example=""),
        Column("sites", "可去点位", ("可去的点位", "限定点位", "点位", "allowed sites", "sites"),
               note="选填，点位编号或名称，多个用顿号分隔；不填表示可去任何点位。", example=""),
        Column("status", "状态", ("在岗状态", "status"),
               note="选填：在岗 / 请假 / 离开；不填为在岗。", example="在岗"),
    ),
    "sites": (
        Column("site_code", "点位编号", ("点位代码", "site code", "site id"),
               note="选填；不填时按点位名称匹配，新点位自动编号。", example="wjl-check"),
        Column("site_name", "点位名称", ("点位", "点位名", "site", "site name"), required=True,
               note="必填。", example="万家丽路卡口"),
        Column("kind", "点位类型", ("类型", "kind", "site kind", "type"),
               note="选填：卡口 / 小区 / 隔离酒店 / 核酸检测点 / 其他。", example="卡口"),
        Column("post_code", "岗位编号", ("岗位代码", "post code", "post id"),
               note="选填；不填时按点位内的岗位名称匹配。", example=""),
        Column("post_name", "岗位名称", ("岗位", "岗位名", "post", "post name"),
               note="每行一个岗位；不填则只登记点位。", example="测温登记"),
        Column("address", "地址", ("点位地址", "详细地址", "address"),
               note="选填，显示在志愿者的日历里；不填则保持原样。", example="长沙市雨花区万家丽南路188号"),
        Column("street", "街道", ("所属街道", "街道办", "street", "sub-district"),
               note="选填，用于按街道筛选点位。", example="黎托街道"),
        Column("contact_name", "联系人", ("点位联系人", "contact", "contact name"),
               note="选填，点位的联系人，显示在日历里。", example="王芳"),
        Column("contact_phone", "联系电话", ("联系人电话", "联系方式", "contact phone"),
               note="选填，请把该列设为“文本”格式。", example="13900001111"),
    ),
    "demand": (
        Column("site", "点位", ("点位名称", "点位编号", "site"),
               note="点位名称或编号；岗位名称在多个点位重复时必填。", example="万家丽路卡口"),
        Column("post", "岗位", ("岗位名称", "岗位编号", "post"), required=True,
               note="必填，岗位名称或编号。", example="测温登记"),
        Column("shift", "班次", ("班次名称", "时段", "时间段", "shift"), required=True,
               note="必填：班次名称（早班）或时间段（08:00-16:00、20:00-次日08:00）。",
               example="20:00-次日08:00"),
        Column("min", "最少人数", ("人数", "需求人数", "min", "minimum", "people"),
               required=True, note="必填，整数。", example="2"),
        Column("max", "最多人数", ("max", "maximum"),
               note="选填，不填等于最少人数。", example="3"),
        Column("dates", "日期", ("日期范围", "dates", "date"),
               note="选填，不填表示每天；多个日期用顿号分隔，范围用“至”：2022-04-05至2022-04-07。",
               example=""),
        Column("requires", "技能要求", ("要求", "需要技能", "requires", "required skills"),
               note="选填，如“党员1、医护1”：每班至少 1 名党员、1 名医护。", example="党员1"),
    ),
    "unavailability": (
        Column("phone", "手机号", ("手机", "手机号码", "联系电话", "电话", "phone", "mobile"),
               required=True, sensitive=True, text=True,
               note="必填，志愿者的手机号（须已导入）。", example="13800138000"),
        Column("name", "姓名", ("名字", "志愿者姓名", "name"),
               note="选填；填写时须与该手机号的志愿者一致，用于核对。", example="李伟"),
        Column("date", "日期", ("不可用日期", "date", "dates"), required=True,
               note="必填，如 2022-04-05，或范围 2022-04-05至2022-04-07。",
               example="2022-04-05"),
        Column("shift", "班次", ("时段", "shift"),
               note="选填：班次名称或时间段；不填表示整天不可用。", example="夜班"),
        Column("reason", "原因", ("事由", "备注", "reason", "note"), note="选填。",
               example="家中有事"),
    ),
}


def _norm_header(value: Any) -> str:
    text = unicodedata.normalize("NFKC", str(value)).lower()
    text = re.sub(r"[(\[【].*?[)\]】]", "", text)  # 手机号（必填）
    return re.sub(r"[\s*:：_\-]+", "", text)


_HEADERS: dict[str, dict[str, str]] = {
    kind: {_norm_header(name): c.field for c in cols for name in (c.header, *c.aliases)}
    for kind, cols in COLUMNS.items()}


# -- reading files ------------------------------------------------------------------------

def _letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _rows_xlsx(data: bytes) -> Iterator[Iterator[tuple[int, Sequence[Any]]]]:
    """Per worksheet, its rows as (row number, values)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except Exception as exc:  # BadZipFile, NotImplementedError (zip version), EOFError…
        raise _file_error("file_corrupt",
                          "文件已损坏或不完整（无法解压），请重新保存为 .xlsx 或 CSV 后再上传。",
                          "The file is damaged or truncated (not a readable zip); save it "
                          "again as .xlsx or CSV.") from exc
    names = {i.filename for i in infos}
    if "xl/workbook.xml" not in names:
        raise _file_error("not_a_workbook",
                          "这不是 Excel 工作簿（.xlsx），请用 Excel 或 WPS 另存为 .xlsx 或 CSV。",
                          "This is not an Excel workbook (.xlsx); save it as .xlsx or CSV.")
    if sum(i.file_size for i in infos) > MAX_UNZIPPED_BYTES:
        raise ImportTooLarge([ImportIssue(
            code="file_too_large",
            message="文件解压后过大（或文件已损坏）：请删除无关的工作表、图片，重新保存后再上传。",
            message_en="The workbook unpacks to too much data (or is damaged); remove unrelated "
                       "sheets and pictures and save it again.")])
    try:
        from openpyxl import load_workbook

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types on bad input
        raise _unreadable_xlsx() from exc
    try:
        sheets = [s for s in book.worksheets if hasattr(s, "iter_rows")]
        active = book.active
        if active in sheets:
            sheets.remove(active)
            sheets.insert(0, active)
        for sheet in sheets:
            yield _sheet_rows(sheet)
    finally:
        book.close()


def _unreadable_xlsx() -> UnreadableFile:
    return _file_error("file_corrupt",
                       "无法读取该 Excel 文件（可能已损坏、被截断或已加密），请在 Excel 中打开后另存为"
                       " .xlsx 或 CSV 再上传。",
                       "The Excel file cannot be read (damaged, truncated or encrypted); open "
                       "it in Excel and save it again as .xlsx or CSV.")


def _sheet_rows(sheet: Any) -> Iterator[tuple[int, Sequence[Any]]]:
    try:
        if hasattr(sheet, "reset_dimensions"):
            sheet.reset_dimensions()  # the stored dimensions may be wrong
        yield from enumerate(sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True), start=1)
    except ImportFailed:
        raise
    except Exception as exc:  # a damaged sheet part
        raise _unreadable_xlsx() from exc


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings: tuple[str, ...] = ("utf-16",)
    elif data.startswith(b"\xef\xbb\xbf"):
        encodings = ("utf-8-sig",)
    else:
        encodings = ("utf-8", "gb18030")
    if b"\x00" in data and encodings != ("utf-16",):
        raise _binary()
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, UnicodeError):
            continue
        if _CONTROL.search(text):
            raise _binary()
        return text
    raise _file_error("bad_encoding",
                      "无法识别文件编码，请另存为“CSV UTF-8（逗号分隔）”或 .xlsx 后再上传。",
                      "Unknown text encoding; save the file as CSV UTF-8 or .xlsx.")


def _binary() -> UnreadableFile:
    return _file_error("not_text",
                       "这不是 CSV 文本文件（含二进制内容），请上传 .xlsx 或 CSV 文件。",
                       "This is not a CSV text file (it holds binary data); upload .xlsx or "
                       "CSV.")


def _rows_csv(data: bytes) -> Iterator[Iterator[tuple[int, Sequence[Any]]]]:
    text = _decode(data)
    head = text[:20000].splitlines()[:HEADER_SEARCH_ROWS]
    delimiter = max((",", "\t", ";"), key=lambda d: sum(line.count(d) for line in head))

    def rows() -> Iterator[tuple[int, Sequence[Any]]]:
        try:
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
            for number, values in enumerate(reader, start=1):
                yield number, values[:MAX_COLUMNS]
        except csv.Error as exc:
            raise _file_error("csv_malformed",
                              f"CSV 文件格式有误（{exc}），请用 Excel 打开后重新另存为 CSV 或 .xlsx。",
                              f"Malformed CSV ({exc}); save it again from Excel.") from exc

    yield rows()


@dataclass
class _Table:
    header_row: int
    columns: dict[str, int]  # field -> index
    headers: dict[str, str]  # field -> header text as in the file
    records: list[tuple[int, dict[str, Any]]]


def _read_table(kind: str, filename: str, data: bytes) -> _Table:
    if len(data) > MAX_FILE_BYTES:
        raise ImportTooLarge([ImportIssue(
            code="file_too_large",
            message=f"文件过大（{len(data) / 1048576:.1f} MB），最大 {MAX_FILE_BYTES // 1048576} MB；"
                    "请分成几个文件导入。",
            message_en=f"The file is too large ({len(data)} bytes; the limit is "
                       f"{MAX_FILE_BYTES}); split it.")])
    if not data.strip():
        raise _file_error("file_empty", "文件是空的，请填写后再上传。",
                          "The file is empty.")
    lower = (filename or "").lower()
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise _file_error("old_xls",
                          "这是旧版 .xls 文件或已加密的工作簿，请在 Excel/WPS 中另存为 .xlsx（不设密码）"
                          "或 CSV 后再上传。",
                          "This is an old .xls file or an encrypted workbook; save it as .xlsx "
                          "(without a password) or CSV.")
    if data.startswith(b"PK"):
        sheets: Iterator[Iterator[tuple[int, Sequence[Any]]]] = _rows_xlsx(data)
    elif lower.endswith((".xlsx", ".xlsm")):
        raise _file_error("file_corrupt",
                          "文件扩展名是 .xlsx，但内容不是 Excel 工作簿（可能已损坏或改过扩展名），"
                          "请重新另存为 .xlsx 或 CSV。",
                          "The name says .xlsx but the content is not a workbook; save it again.")
    else:
        sheets = _rows_csv(data)
    best: tuple[int, int, list[str]] | None = None  # matched, row, missing
    for rows in sheets:
        found = _find_header(kind, rows)
        if isinstance(found, _Table):
            return found
        if found is not None and (best is None or found[0] > best[0]):
            best = found
    required = [c.header for c in COLUMNS[kind] if c.required]
    if best is None or best[0] == 0:
        names = "、".join(f"“{h}”" for h in required)
        raise _file_error(
            "header_missing",
            f"没有找到表头：文件前 {HEADER_SEARCH_ROWS} 行中没有 {names} 等列名。"
            f"请使用下载的“{KIND_LABELS[kind]}”模板，或把表头改为模板中的列名。",
            f"No header row found: none of the first {HEADER_SEARCH_ROWS} rows names the "
            f"columns {', '.join(required)}; use the downloaded template.")
    _, row, missing = best
    raise ImportRejected([ImportIssue(
        code="column_missing", row=row, column=m,
        message=f"缺少必填列“{m}”：请在第 {row} 行表头中加上这一列（列名见模板）。",
        message_en=f"The required column {m!r} is missing from the header in row {row}.")
        for m in missing])


def _find_header(kind: str, rows: Iterator[tuple[int, Sequence[Any]]]
                 ) -> _Table | tuple[int, int, list[str]] | None:
    names = _HEADERS[kind]
    cols = COLUMNS[kind]
    seen = 0
    best: tuple[int, int, list[str]] | None = None
    for number, values in rows:
        if number > MAX_SCANNED_ROWS:
            raise _too_many_rows()
        if not any(_clean(v) for v in values):
            continue
        seen += 1
        if seen > HEADER_SEARCH_ROWS:
            return best
        matched: dict[str, list[int]] = {}
        for i, v in enumerate(values):
            key = names.get(_norm_header(v)) if isinstance(v, str) else None
            if key is not None:
                matched.setdefault(key, []).append(i)
        missing = [c.header for c in cols if c.required and c.field not in matched]
        if missing:
            if best is None or len(matched) > best[0]:
                best = (len(matched), number, missing)
            continue
        twice = {f: ix for f, ix in matched.items() if len(ix) > 1}
        if twice:
            raise ImportRejected([ImportIssue(
                code="column_twice", row=number, column=str(values[ix[0]]).strip(),
                message=f"表头中“{str(values[ix[0]]).strip()}”出现了多次（第 "
                        f"{'、'.join(_letter(i) for i in ix)} 列），请只保留一列。",
                message_en=f"The column {str(values[ix[0]]).strip()!r} appears more than once "
                           f"(columns {', '.join(_letter(i) for i in ix)}).")
                for f, ix in twice.items()])
        columns = {f: ix[0] for f, ix in matched.items()}
        headers = {f: str(values[i]).strip() for f, i in columns.items()}
        records = []
        for row_number, row in rows:
            if row_number > MAX_SCANNED_ROWS:
                raise _too_many_rows()
            record = {f: (row[i] if i < len(row) else None) for f, i in columns.items()}
            if not any(_clean(v) for v in record.values()):
                continue
            records.append((row_number, record))
            if len(records) > MAX_ROWS:
                raise _too_many_rows()
        return _Table(number, columns, headers, records)
    return best


def _too_many_rows() -> ImportTooLarge:
    return ImportTooLarge([ImportIssue(
        code="too_many_rows",
        message=f"行数过多：一次最多导入 {MAX_ROWS} 行，请分成几个文件导入（并删除表格末尾的空行）。",
        message_en=f"Too many rows: at most {MAX_ROWS} per file; split the file.")])


# -- cell values --------------------------------------------------------------------------

class _Bad(ValueError):
    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.code, self.zh, self.en = code, zh, en


_INVISIBLE = re.compile("[\u200b-\u200f\u2060\ufeff\u00ad]")
_SCIENTIFIC = re.compile(r"^[+-]?\d+(\.\d+)?e[+-]?\d+$", re.I)


def _clean(value: Any) -> str:
    """A cell as text: NFKC (full-width digits and spaces), invisible characters gone."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if not isinstance(value, str):
        return str(value)
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", value))
    return " ".join(text.split())


def _display(value: Any) -> str:
    text = _clean(value)
    return text if len(text) <= 200 else text[:200] + "…"


def mask(value: Any) -> str:
    """A phone or ID number with its middle hidden: 138****8000, 110***********1233."""
    text = re.sub(r"\s", "", _clean(value)).lstrip("'")
    n = len(text)
    if n <= 2:
        return "*" * n
    if n < 8:
        return text[0] + "*" * (n - 2) + text[-1]
    return text[:3] + "*" * (n - 7) + text[-4:]


def _text_value(value: Any, limit: int) -> str:
    text = _clean(value)
    if len(text) > limit:
        raise _Bad("too_long", f"内容过长（{len(text)} 个字），最多 {limit} 个字，请精简。",
                   f"Too long ({len(text)} characters; at most {limit}).")
    return text


_CJK = "\u3400-\u9fff\uf900-\ufaff"
_NAME_DOT = re.compile(rf"(?<=[{_CJK}])\s*[.•・‧∙⋅·●｡。\u2027\u30fb]\s*(?=[{_CJK}])")
_NAME_OK = re.compile(r"^[^\W\d_](?:[^\W\d_]|[·' \-])*$")


def _parse_name(value: Any) -> str:
    text = _clean(value)
    text = _NAME_DOT.sub("·", text)
    if re.fullmatch(rf"[{_CJK}· ]+", text):
        text = text.replace(" ", "")  # 李 伟 -> 李伟
    if not text:
        raise _Bad("required", "姓名不能为空，请填写。", "The name is required.")
    if len(text) > 50:
        raise _Bad("too_long", "姓名过长（最多 50 个字），请核对。", "The name is too long.")
    if not _NAME_OK.match(text):
        bad = next((ch for ch in text if not (ch.isalpha() or ch in "·' -")), text[0])
        raise _Bad("name_invalid",
                   f"姓名中有不应出现的字符“{bad}”：姓名只能包含文字和间隔号“·”，请删去数字、备注等内容。",
                   f"The name contains {bad!r}; names hold letters and the middle dot only.")
    return text


def _lost_digits(what: str) -> _Bad:
    return _Bad(
        "digits_lost",
        f"{what}已被 Excel 变成科学计数法，后几位数字已经丢失，无法恢复：请把该列设为“文本”格式，"
        f"重新输入完整的{what}后再导入。",
        f"The {'ID' if what == '身份证号' else 'phone'} number was turned into scientific "
        f"notation by Excel and its last digits are lost: format the column as text and "
        f"type the numbers again.")


def _parse_phone(value: Any) -> str:
    if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
        raise _bad_phone()
    if isinstance(value, float):
        if not value.is_integer():
            raise _bad_phone()
        value = int(value)
    text = _clean(value).lstrip("'")
    if not text:
        raise _Bad("required", "手机号不能为空，请填写 11 位手机号。", "The phone number is required.")
    if _SCIENTIFIC.match(text.replace(" ", "")):
        raise _lost_digits("手机号")
    try:
        return normalize_phone(text)
    except PhoneError:
        raise _bad_phone() from None


def _bad_phone() -> _Bad:
    return _Bad("phone_invalid",
                "手机号格式不正确：请填写 11 位手机号（如 13800138000，可带 +86）或带区号的固定电话。",
                "Not a phone number: write an 11-digit mobile number (13800138000, +86 allowed) "
                "or a landline with its area code.")


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_check_digit(first17: str) -> str:
    """The check character of an 18-digit resident ID number (GB 11643, ISO 7064 MOD 11-2)."""
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _parse_id(value: Any) -> str | None:
    if isinstance(value, bool):
        raise _bad_id()
    if isinstance(value, int | float):
        if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
            raise _bad_id()
        if abs(value) >= 1e15:  # Excel keeps 15 significant digits
            raise _lost_digits("身份证号")
        text = str(int(value))
    else:
        text = _clean(value).lstrip("'").replace(" ", "").upper()
        if _SCIENTIFIC.match(text):
            raise _lost_digits("身份证号")
    if not text:
        return None
    if re.fullmatch(r"\d{17}[\dX]", text):
        birth = text[6:14]
        if id_check_digit(text[:17]) != text[17]:
            raise _Bad("id_checksum",
                       "身份证号校验位不正确（可能有数字输错），请与本人核对后重新填写。",
                       "The ID number's check digit is wrong; check it with the person.")
    elif re.fullmatch(r"\d{15}", text):
        birth = "19" + text[6:12]
    else:
        raise _bad_id()
    try:
        dt.date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError:
        raise _Bad("id_invalid", "身份证号中的出生日期不存在，请核对后重新填写。",
                   "The birth date in the ID number does not exist.") from None
    return text


def _bad_id() -> _Bad:
    return _Bad("id_invalid",
                "身份证号格式不正确：应为 18 位（最后一位可以是 X），请核对后重新填写。",
                "Not an ID number: 18 characters, digits (the last may be X).")


_YES = {"是", "y", "yes", "true", "1", "√", "✓", "✔", "对", "有", "t"}
_NO = {"否", "n", "no", "false", "0", "×", "✗", "x", "无", "不是", "f"}
_PARTY_YES = {"党员", "中共党员", "预备党员", "中共预备党员", "中国共产党党员"}
_PARTY_NO = {"群众", "团员", "共青团员", "非党员", "民主党派", "无党派"}


def _parse_bool(value: Any, *, party: bool = False) -> bool | None:
    text = _clean(value).lower()
    if not text:
        return None
    if text in _YES or (party and text in _PARTY_YES):
        return True
    if text in _NO or (party and text in _PARTY_NO):
        return False
    raise _Bad("yes_no", "请填写“是”或“否”。", "Write 是 (yes) or 否 (no).")


def _parse_count(value: Any, what: str) -> int | None:
    if isinstance(value, bool):
        raise _bad_count(what)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise _bad_count(what)
        number = int(value)
    else:
        text = _clean(value)
        if not text:
            return None
        text = re.sub(r"\s*(人|名|个|班|次)$", "", text)
        if not re.fullmatch(r"[+-]?\d{1,6}(\.0+)?", text):
            raise _bad_count(what)
        number = int(float(text))
    if number < 0 or number > 100000:
        raise _bad_count(what)
    return number


def _bad_count(what: str) -> _Bad:
    return _Bad("not_a_count", f"{what}应为不小于 0 的整数，如 2，请修改。",
                f"{what}: write a whole number of at least 0.")


_STATUS = {
    "active": ("在岗", "正常", "可用", "active"),
    "absent": ("请假", "暂停", "休息", "暂不可用", "absent"),
    "left": ("离开", "退出", "已离开", "离岗", "left"),
}
_STATUS_OF = {label: s for s, labels in _STATUS.items() for label in labels}

_KINDS = {
    "checkpoint": ("卡口", "检查站", "道口", "卡点", "checkpoint"),
    "building": ("小区", "楼栋", "社区", "居民楼", "building"),
    "hotel": ("隔离酒店", "酒店", "隔离点", "hotel"),
    "testing": ("核酸检测点", "检测点", "采样点", "核酸采样点", "testing"),
    "other": ("其他", "其它", "other"),
}
_KIND_OF = {label: k for k, labels in _KINDS.items() for label in labels}

_SKILL_OF: dict[str, str] = {
    "党员": "party", "中共党员": "party", "医护": "medical", "医护人员": "medical",
    "医务人员": "medical", "医生": "medical", "护士": "medical", "驾驶员": "driver",
    "司机": "driver", "安保": "security", "保安": "security", "心理咨询": "counselor",
    "心理咨询员": "counselor", "心理咨询师": "counselor", "心理疏导": "counselor",
    "老年志愿者": "senior", "教师": "teacher", "老师": "teacher",
}
for _tag, _text in SKILLS.items():
    _SKILL_OF.setdefault(_text.zh, "counselor" if _tag == "counsellor" else _tag)
    _SKILL_OF.setdefault(_tag, "counselor" if _tag == "counsellor" else _tag)
_TAG = re.compile(r"[a-z][a-z0-9_\-]{0,39}")
_SPLIT = re.compile(r"[、,;；/|+\n]+|\s+")


def _skill(token: str) -> str:
    tag = _SKILL_OF.get(token) or _SKILL_OF.get(token.lower())
    if tag:
        return tag
    if _TAG.fullmatch(token.lower()):
        return token.lower()
    raise _Bad("skill_unknown",
               f"不认识的技能“{token}”：请填写 党员、医护、驾驶员、安保、心理咨询，或英文标签（如 driver），"
               "多个用顿号分隔。",
               f"Unknown skill {token!r}: use 党员, 医护, 驾驶员, 安保, 心理咨询 or an English tag.")


def _parse_skills(value: Any) -> list[str]:
    return list(dict.fromkeys(_skill(t) for t in _SPLIT.split(_clean(value)) if t))


def _parse_requires(value: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for token in re.split(r"[、,;；/|\n]+|\s+(?=\D)", _clean(value)):
        token = token.strip()
        if not token:
            continue
        m = (re.fullmatch(r"(\d+)\s*(?:名|个|人)?\s*(\D+)", token)
             or re.fullmatch(r"(\D+)(\d+)\s*(?:名|个|人)?", token))
        if m is None:
            skill, n = _skill(token), 1
        elif m.group(1).isdigit():
            skill, n = _skill(m.group(2).strip()), int(m.group(1))
        else:
            skill, n = _skill(m.group(1).rstrip(":×* ")), int(m.group(2))
        out[skill] = out.get(skill, 0) + n
    return out


_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
                   r"(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?")
_SHORT_DATE = re.compile(r"(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")


def _parse_date(value: Any, year: int | None = None) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        number = int(value)
        if number == value and 36526 <= number <= 73050:  # an Excel serial date
            return dt.date(1899, 12, 30) + dt.timedelta(days=number)
        value = str(number)
    text = _clean(value)
    try:
        m = _DATE.fullmatch(text)
        if m:
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        if re.fullmatch(r"\d{8}", text):
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        m = _SHORT_DATE.fullmatch(text)
        if m and year is not None:
            return dt.date(year, int(m[1]), int(m[2]))
    except ValueError:
        raise _Bad("date_invalid", f"日期“{text}”不存在，请核对。",
                   f"The date {text!r} does not exist.") from None
    raise _Bad("date_invalid", "日期格式不正确，请写成 2022-04-05（须含年份）。",
               "Not a date: write it as 2022-04-05 (with the year).")


def _parse_dates(value: Any, year: int | None = None) -> list[dt.date]:
    """Dates and ranges (2022-04-05至2022-04-07), separated by 、 , ; or new lines."""
    if not isinstance(value, str):
        return [_parse_date(value, year)]
    out: list[dt.date] = []
    for part in re.split(r"[、,;；\n]+", _clean(value)):
        part = part.strip()
        if not part:
            continue
        pieces = re.split(r"\s*(?:至|到|~|〜|—|–)\s*", part)
        if len(pieces) == 1:
            out.append(_parse_date(pieces[0], year))
            continue
        if len(pieces) != 2:
            raise _Bad("date_invalid", "日期范围请写成 2022-04-05至2022-04-07。",
                       "Write a date range as 2022-04-05至2022-04-07.")
        first = _parse_date(pieces[0], year)
        last = _parse_date(pieces[1], first.year)
        if last < first:
            raise _Bad("date_range", "日期范围的结束早于开始，请检查先后顺序。",
                       "The range ends before it starts.")
        if (last - first).days >= MAX_RANGE_DAYS:
            raise _Bad("date_range", f"日期范围过长（最多 {MAX_RANGE_DAYS} 天），请分成几行。",
                       f"The range is longer than {MAX_RANGE_DAYS} days.")
        out += [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    return list(dict.fromkeys(out))


_RANGE = re.compile(
    r"^(?P<label>.*?)\s*(?:当日|当天)?\s*(?P<h1>\d{1,2})[:点](?P<m1>\d{2})?\s*"
    r"(?:-|~|〜|至|到|—|–|−)+\s*(?P<next>次日|翌日|第二天)?\s*"
    r"(?P<h2>\d{1,2})[:点](?P<m2>\d{2})?\s*$")


def parse_shift_range(text: str) -> tuple[str, dt.time, dt.time] | None:
    """(label, start, end) of `早班 08:00-16:00`, `20:00-次日08:00`; None without times.

    Raises `ValueError` for impossible times or a shift longer than 24 hours.
    """
    text = re.sub(r"[()\[\]【】]", " ", _clean(text)).strip()
    m = _RANGE.match(text)
    if m is None:
        return None
    h1, m1, h2, m2 = int(m["h1"]), int(m["m1"] or 0), int(m["h2"]), int(m["m2"] or 0)
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        raise ValueError("impossible time")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m["next"]:
        end += 1440
        if end > start + 1440:
            raise ValueError("longer than 24 hours")
    elif end <= start:
        if end == start:
            raise ValueError("empty shift")
        end += 1440
    end %= 1440
    return m["label"].strip(), dt.time(start // 60, start % 60), dt.time(end // 60, end % 60)


def shift_label(start: dt.time, end: dt.time) -> str:
    """`08:00-16:00`, or `20:00-次日08:00` for a shift that crosses midnight."""
    nxt = "次日" if end <= start else ""
    return f"{start:%H:%M}-{nxt}{end:%H:%M}"


# -- validation helpers --------------------------------------------------------------------

class _Errors:
    def __init__(self, kind: str, table: _Table) -> None:
        self.kind, self.table = kind, table
        self.items: list[ImportIssue] = []
        self.sensitive = {c.field for c in COLUMNS[kind] if c.sensitive}

    def add(self, row: int | None, fieldname: str | None, value: Any, code: str, zh: str,
            en: str) -> None:
        shown = None
        if value is not None and _clean(value) != "":
            shown = mask(value) if fieldname in self.sensitive else _display(value)
        col = None if fieldname is None else self.table.columns.get(fieldname)
        self.items.append(ImportIssue(
            code=code, message=zh, message_en=en, row=row,
            column=None if fieldname is None else self.table.headers.get(
                fieldname, _header_of(self.kind, fieldname)),
            column_letter=None if col is None else _letter(col), value=shown))

    def bad(self, row: int, fieldname: str, value: Any, exc: _Bad) -> None:
        header = self.table.headers.get(fieldname, _header_of(self.kind, fieldname))
        self.add(row, fieldname, value, exc.code, f"“{header}”：{exc.zh}", f"{header}: {exc.en}")

    def parse(self, row: int, record: dict[str, Any], fieldname: str,
              parser: Callable[[Any], Any], required: bool = False) -> Any:
        value = record.get(fieldname)
        if required and _clean(value) == "":
            header = self.table.headers.get(fieldname, _header_of(self.kind, fieldname))
            self.add(row, fieldname, None, "required", f"“{header}”不能为空，请填写。",
                     f"{header} is required.")
            return None
        try:
            return parser(value)
        except _Bad as exc:
            self.bad(row, fieldname, value, exc)
            return _INVALID

    def duplicates(self, groups: dict[Any, list[tuple[int, Any]]], fieldname: str, what: str,
                   what_en: str, fix: str) -> None:
        for rows in groups.values():
            if len(rows) < 2:
                continue
            listed = "、".join(str(r) for r, _ in rows)
            for row, value in rows:
                self.add(row, fieldname, value, "duplicate_in_file",
                         f"{what}在文件中重复（第 {listed} 行）：{fix}",
                         f"The same {what_en} appears in rows {', '.join(str(r) for r, _ in rows)}.")


class _Invalid:
    def __bool__(self) -> bool:
        return False


_INVALID: Any = _Invalid()


def _header_of(kind: str, fieldname: str) -> str:
    return next(c.header for c in COLUMNS[kind] if c.field == fieldname)


def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _key(text: str) -> str:
    return re.sub(r"\s+", "", _clean(text)).lower()


class _Sites:
    """Sites and posts of the database, found by code or name."""

    def __init__(self, session: Session) -> None:
        self.sites = list(session.scalars(select(Site).options(selectinload(Site.posts))))
        self.by_code = {_key(s.code): s for s in self.sites}
        self.by_name: dict[str, list[Site]] = {}
        for s in self.sites:
            self.by_name.setdefault(_key(s.name), []).append(s)

    def site(self, text: str) -> Site | None:
        key = _key(text)
        found = self.by_code.get(key)
        if found is not None:
            return found
        named = self.by_name.get(key, [])
        return named[0] if len(named) == 1 else None


#: What an importer returns first: it writes the plan and returns the result and the
#: change list; called only when no row had an error.
_Writer = Callable[[], tuple[ImportResult, dict[str, Any]]]


# -- volunteers ---------------------------------------------------------------------------

def _import_volunteers(session: Session, table: _Table, errors: _Errors,
                       **_: Any) -> tuple[_Writer, dict[str, Any]]:
    has = set(table.columns)
    sites = _Sites(session) if "sites" in has else None
    plans: list[tuple[int, dict[str, Any]]] = []
    by_phone: dict[str, list[tuple[int, Any]]] = {}
    by_id: dict[str, list[tuple[int, Any]]] = {}

    def allowed(value: Any) -> list[Site] | None:
        text = _clean(value)
        if text in ("", "全部", "不限", "任意", "all", "any"):
            return None
        out = []
        for token in re.split(r"[、,;；/|\n]+", text):
            token = token.strip()
            if not token:
                continue
            site = sites.site(token) if sites else None
            if site is None:
                raise _Bad("site_unknown",
                           f"没有名称或编号为“{token}”的点位：请先导入点位，或改为已有的点位名称。",
                           f"No site is named or coded {token!r}; import the sites first.")
            out.append(site)
        return list(dict.fromkeys(out))

    for row, rec in table.records:
        p: dict[str, Any] = {}
        p["name"] = errors.parse(row, rec, "name", _parse_name, required=True)
        p["phone"] = errors.parse(row, rec, "phone", _parse_phone, required=True)
        if "id_number" in has:
            id_number = errors.parse(row, rec, "id_number", _parse_id)
            if id_number:
                by_id.setdefault(id_number, []).append((row, rec.get("id_number")))
        if "unit" in has:
            p["unit"] = errors.parse(row, rec, "unit", lambda v: _text_value(v, 200))
        skills = errors.parse(row, rec, "skills", _parse_skills) if "skills" in has else None
        party = (errors.parse(row, rec, "party", lambda v: _parse_bool(v, party=True))
                 if "party" in has else None)
        if skills is not _INVALID and party is not _INVALID:
            if party is False and skills and "party" in skills:
                errors.add(row, "party", rec.get("party"), "contradiction",
                           "“党员”填了“否”，但“技能”中有“党员”：请改成一致。",
                           "Party member says no but the skills list 党员.")
            if "skills" in has or "party" in has:
                tags = skills or []
                p["party_member"] = bool(party) or "party" in tags
                if "skills" in has:
                    p["skills"] = sorted(t for t in tags if t != "party")
        for name in ("max_shifts", "min_shifts"):
            if name in has:
                what = "最多班次" if name == "max_shifts" else "最少班次"
                p[name] = errors.parse(row, rec, name, partial(_parse_count, what=what))
        if (isinstance(p.get("max_shifts"), int) and isinstance(p.get("min_shifts"), int)
                and p["min_shifts"] > p["max_shifts"]):
            errors.add(row, "min_shifts", rec.get("min_shifts"), "min_over_max",
                       "最少班次大于最多班次，请调整其中一个。", "min_shifts exceeds max_shifts.")
        if "status" in has:
            p["status"] = errors.parse(row, rec, "status", _parse_status)
        if "sites" in has:
            p["sites"] = errors.parse(row, rec, "sites", allowed)
        if p["phone"]:
            by_phone.setdefault(p["phone"], []).append((row, rec.get("phone")))
        plans.append((row, p))

    errors.duplicates(by_phone, "phone", "手机号", "phone number",
                      "每人只能占一行，请删除重复的行或更正手机号。")
    errors.duplicates(by_id, "id_number", "身份证号", "ID number",
                      "每人只能占一行，请删除重复的行或更正身份证号。")
    if errors.items:
        return _nothing, {}

    phones = [p["phone"] for _, p in plans]
    existing: dict[str, Volunteer] = {}
    for chunk in _chunks(phones):
        query = select(Volunteer).where(Volunteer.phone.in_(chunk))
        if "sites" in has:
            query = query.options(selectinload(Volunteer.allowed_sites))
        existing.update((v.phone, v) for v in session.scalars(query) if v.phone)
    warn: list[ImportIssue] = []
    for row, p in plans:
        old = existing.get(p["phone"])
        if old is not None and old.name != p["name"]:
            warn.append(ImportIssue(
                code="name_changed", row=row, column=table.headers["phone"],
                value=mask(p["phone"][3:] if p["phone"].startswith("+86") else p["phone"]),
                message=f"该手机号已登记为“{old.name}”，导入后姓名将改为“{p['name']}”；"
                        "如非同一人，请更正手机号。",
                message_en=f"This phone belongs to {old.name!r}; the name becomes "
                           f"{p['name']!r}."))

    def write() -> tuple[ImportResult, dict[str, Any]]:
        created: list[dict[str, Any]] = []
        site_links: dict[str, list[Site]] = {}
        updates: list[dict[str, Any]] = []
        relinked: list[int] = []
        touched: list[Volunteer] = []
        changes = []
        unchanged = 0
        # Columns the file has: the same set on every row, so one executemany updates all.
        columns = [a for a in ("name", "unit", "skills", "party_member", "max_shifts",
                               "min_shifts", "status") if a in plans[0][1]]
        for _row, p in plans:
            v = existing.get(p["phone"])
            values: dict[str, Any] = {"name": p["name"], "unit": p.get("unit") or "",
                      "skills": p.get("skills") or [],
                      "party_member": bool(p.get("party_member")),
                      "max_shifts": p.get("max_shifts"), "min_shifts": p.get("min_shifts"),
                      "status": p.get("status") or "active"}
            if v is None:
                created.append({"code": "v-" + uuid.uuid4().hex[:12], "phone": p["phone"],
                                **values, "sites_restricted": p.get("sites") is not None})
                if p.get("sites"):
                    site_links[p["phone"]] = p["sites"]
                continue
            diff_before: dict[str, Any] = {
                a: getattr(v, a) for a in columns if getattr(v, a) != values[a]}
            diff_after = {a: values[a] for a in diff_before}
            if "sites" in p:
                old_sites = [s.code for s in v.allowed_sites] if v.sites_restricted else None
                new_sites = None if p["sites"] is None else [s.code for s in p["sites"]]
                if old_sites != new_sites:
                    diff_before["sites"], diff_after["sites"] = old_sites, new_sites
                    relinked.append(v.id)
                    site_links[p["phone"]] = p["sites"] or []
            if diff_after:
                change: dict[str, Any] = {"_id": v.id, **{a: values[a] for a in columns}}
                if "sites" in p:
                    change["sites_restricted"] = p["sites"] is not None
                updates.append(change)
                touched.append(v)
                changes.append({"code": v.code, "before": diff_before, "after": diff_after})
            else:
                unchanged += 1
        session.flush()
        # Core executemany: the ORM would send one statement per row on SQLite.
        now = utcnow()
        table = cast(Table, Volunteer.__table__)
        if updates:
            session.execute(update(table).where(table.c.id == bindparam("_id")),
                            [{**row, "updated_at": now} for row in updates])
            for v in touched:
                session.expire(v)
        if relinked:
            for chunk in _chunks(relinked):
                session.execute(delete(volunteer_sites)
                                .where(volunteer_sites.c.volunteer_id.in_(chunk)))
        if created:
            session.execute(insert(table),
                            [{**row, "created_at": now, "updated_at": now} for row in created])
        links = []
        for chunk in _chunks(list(site_links)):
            for vid, phone in session.execute(
                    select(Volunteer.id, Volunteer.phone).where(Volunteer.phone.in_(chunk))):
                links += [{"volunteer_id": vid, "site_id": site.id}
                          for site in site_links[str(phone)]]
        if links:
            session.execute(insert(volunteer_sites), links)
        return ImportResult("volunteers", len(plans), created=len(created),
                            updated=len(updates), unchanged=unchanged, warnings=warn,
                            details={"volunteers_created": len(created),
                                     "volunteers_updated": len(updates)}), {
            "created": [v["code"] for v in created], "updated": changes}

    return write, {}


def _parse_status(value: Any) -> str | None:
    text = _clean(value).lower()
    if not text:
        return None
    if text in _STATUS_OF:
        return _STATUS_OF[text]
    raise _Bad("status_invalid", "状态请填写 在岗、请假 或 离开（不填为在岗）。",
               "Status: 在岗 (active), 请假 (absent) or 离开 (left).")


def _nothing() -> Any:
    raise AssertionError("not reached")


# -- sites and posts -----------------------------------------------------------------------

def _free_code(wanted: str, taken: set[str], prefix: str) -> str:
    base = re.sub(r"\s+", "", wanted)[:90] or prefix
    code, n = base, 2
    while _key(code) in taken:
        code, n = f"{base}-{n}", n + 1
    taken.add(_key(code))
    return code


#: Optional site columns shown in calendar events, with their length limits.
_SITE_DETAILS = {"address": 300, "street": 100, "contact_name": 100, "contact_phone": 32}


def _import_sites(session: Session, table: _Table, errors: _Errors,
                  **_: Any) -> tuple[_Writer, dict[str, Any]]:
    db = _Sites(session)
    posts_by_code = {_key(p.code): p for s in db.sites for p in s.posts}
    # file site key -> {"rows", "code", "name", "kind", "site"(db)}
    sites: dict[str, dict[str, Any]] = {}
    post_rows: list[tuple[int, str, dict[str, Any]]] = []
    post_keys: dict[Any, list[tuple[int, Any]]] = {}

    for row, rec in table.records:
        code = errors.parse(row, rec, "site_code", lambda v: _text_value(v, 100))
        name = errors.parse(row, rec, "site_name", lambda v: _text_value(v, 200), required=True)
        kind = errors.parse(row, rec, "kind", _parse_kind)
        pcode = errors.parse(row, rec, "post_code", lambda v: _text_value(v, 100))
        pname = errors.parse(row, rec, "post_name", lambda v: _text_value(v, 200))
        details = {name_: errors.parse(row, rec, name_, partial(_text_value, limit=limit))
                   for name_, limit in _SITE_DETAILS.items()}
        if not name or code is _INVALID or kind is _INVALID:
            continue
        key = "code:" + _key(code) if code else "name:" + _key(name)
        entry = sites.get(key)
        if entry is None:
            found = db.by_code.get(_key(code)) if code else db.site(name)
            if not code and found is None and len(db.by_name.get(_key(name), [])) > 1:
                errors.add(row, "site_name", rec.get("site_name"), "site_ambiguous",
                           "有多个同名点位，请在“点位编号”列填写编号以区分。",
                           "Several sites have this name; give the site code.")
                continue
            entry = sites[key] = {"rows": [row], "code": code or None, "name": name,
                                  "kind": kind, "site": found, "posts": [], "details": {}}
        else:
            entry["rows"].append(row)
            if entry["name"] != name:
                errors.add(row, "site_name", rec.get("site_name"), "site_conflict",
                           f"同一点位编号在第 {entry['rows'][0]} 行的名称是“{entry['name']}”，"
                           "这里不同：请统一点位名称。",
                           "The same site code has another name in an earlier row.")
            if kind and entry["kind"] and kind != entry["kind"]:
                errors.add(row, "kind", rec.get("kind"), "site_conflict",
                           f"同一点位在第 {entry['rows'][0]} 行的类型不同：请统一点位类型。",
                           "The same site has another kind in an earlier row.")
            entry["kind"] = entry["kind"] or kind
        for name_, value in details.items():
            if value is _INVALID or not value:
                continue
            known = entry["details"].get(name_)
            if known is not None and known != value:
                errors.add(row, name_, rec.get(name_), "site_conflict",
                           f"同一点位在第 {entry['rows'][0]} 行的这一项是“{known}”，这里不同：请统一。",
                           "The same site has another value here in an earlier row.")
            entry["details"].setdefault(name_, value)
        if pcode is _INVALID or pname is _INVALID:
            continue
        if pcode and not pname:
            errors.add(row, "post_name", None, "required", "填写了岗位编号时，“岗位名称”不能为空。",
                       "A post code needs a post name.")
            continue
        if pname:
            pkey = ("code", _key(pcode)) if pcode else ("name", key, _key(pname))
            post_keys.setdefault(pkey, []).append(
                (row, rec.get("post_code") if pcode else rec.get("post_name")))
            post_rows.append((row, key, {"code": pcode or None, "name": pname}))
            if pcode:
                known = posts_by_code.get(_key(pcode))
                site_row = entry["site"]
                if known is not None and (site_row is None or known.site_id != site_row.id):
                    owner = next((s for s in db.sites if s.id == known.site_id), None)
                    errors.add(row, "post_code", rec.get("post_code"), "post_code_taken",
                               f"岗位编号“{pcode}”已属于点位“{owner.name if owner else ''}”："
                               "请换一个编号，或把本行点位改为该点位。",
                               f"Post code {pcode!r} belongs to another site.")
    errors.duplicates({k: v for k, v in post_keys.items() if k[0] == "code"}, "post_code",
                      "岗位编号", "post code", "请删除重复的行或更正编号。")
    errors.duplicates({k: v for k, v in post_keys.items() if k[0] == "name"}, "post_name",
                      "同一点位的岗位名称", "post name in one site",
                      "请删除重复的行或更正岗位名称。")
    if errors.items:
        return _nothing, {}

    def write() -> tuple[ImportResult, dict[str, Any]]:
        taken_sites = set(db.by_code)
        taken_posts = set(posts_by_code)
        counts = {"sites_created": 0, "sites_updated": 0, "posts_created": 0,
                  "posts_updated": 0}
        changes: list[dict[str, Any]] = []
        for entry in sites.values():
            site = entry["site"]
            if site is None:
                site = Site(code=entry["code"] or _free_code(entry["name"], taken_sites, "site"),
                            name=entry["name"], kind=entry["kind"] or "other", active=True,
                            **entry["details"])
                session.add(site)
                entry["site"] = site
                counts["sites_created"] += 1
                changes.append({"site": site.code, "created": True})
            else:
                before = {"name": site.name, "kind": site.kind, "active": site.active,
                          **{f: getattr(site, f) for f in entry["details"]}}
                site.name, site.active = entry["name"], True
                if entry["kind"]:
                    site.kind = entry["kind"]
                for name_, value in entry["details"].items():  # blank cells keep the value
                    setattr(site, name_, value)
                after = {"name": site.name, "kind": site.kind, "active": site.active,
                         **{f: getattr(site, f) for f in entry["details"]}}
                if after != before:
                    counts["sites_updated"] += 1
                    changes.append({"site": site.code, "before": before, "after": after})
        session.flush()
        position: dict[int, int] = {}
        for _row, key, p in post_rows:
            site = sites[key]["site"]
            pos = position.get(site.id, 0)
            position[site.id] = pos + 1
            post = posts_by_code.get(_key(p["code"])) if p["code"] else next(
                (q for q in site.posts if _key(q.name) == _key(p["name"])), None)
            if post is None:
                code = p["code"] or _free_code(f"{site.code}-{p['name']}", taken_posts, "post")
                post = Post(code=code, name=p["name"], position=pos, active=True)
                site.posts.append(post)
                counts["posts_created"] += 1
                changes.append({"post": code, "site": site.code, "created": True})
            else:
                before = {"name": post.name, "position": post.position, "active": post.active}
                post.name, post.position, post.active = p["name"], pos, True
                after = {"name": post.name, "position": post.position, "active": post.active}
                if after != before:
                    counts["posts_updated"] += 1
                    changes.append({"post": post.code, "before": before, "after": after})
        session.flush()
        created = counts["sites_created"] + counts["posts_created"]
        updated = counts["sites_updated"] + counts["posts_updated"]
        return ImportResult("sites", len(table.records), created=created, updated=updated,
                            unchanged=len(sites) + len(post_rows) - created - updated,
                            details=counts), {"changes": changes}

    return write, {}


def _parse_kind(value: Any) -> str | None:
    text = _clean(value).lower()
    if not text:
        return None
    if text in _KIND_OF:
        return _KIND_OF[text]
    raise _Bad("kind_invalid", "点位类型请填写 卡口、小区、隔离酒店、核酸检测点 或 其他。",
               "Site kind: 卡口, 小区, 隔离酒店, 核酸检测点 or 其他.")


# -- shifts (demand and unavailability) -----------------------------------------------------

class _Shifts:
    def __init__(self, session: Session, *, create: bool) -> None:
        self.rows = list(session.scalars(
            select(ShiftTemplate).order_by(ShiftTemplate.position, ShiftTemplate.id)))
        self.create = create
        self.new: dict[tuple[dt.time, dt.time], dict[str, Any]] = {}

    def names(self) -> str:
        shown = [f"{s.name}（{shift_label(s.start, s.end)}）" for s in self.rows if s.active]
        return "、".join(shown[:10]) or "（尚无班次）"

    def find(self, value: Any) -> ShiftTemplate | tuple[dt.time, dt.time]:
        text = _clean(value)
        try:
            parsed = parse_shift_range(text)
        except ValueError:
            raise _Bad("shift_invalid",
                       "班次时间不正确：请写成 08:00-16:00，跨夜写成 20:00-次日08:00（不超过 24 小时）。",
                       "Bad shift times: write 08:00-16:00, or 20:00-次日08:00 across midnight "
                       "(at most 24 hours).") from None
        if parsed is not None:
            label, start, end = parsed
            for s in self.rows:
                if s.start == start and s.end == end:
                    return s
            if not self.create:
                raise _Bad("shift_unknown",
                           f"没有 {shift_label(start, end)} 的班次：请改为已有班次：{self.names()}。",
                           "No shift has these times; use an existing shift.")
            entry = self.new.setdefault((start, end), {"label": label})
            entry["label"] = entry["label"] or label
            return (start, end)
        key = _key(text)
        for s in self.rows:
            if key in (_key(s.code), _key(s.name), _key(s.name).removesuffix("班")) or (
                    key.removesuffix("班") == _key(s.name).removesuffix("班") and key):
                return s
        raise _Bad("shift_unknown",
                   f"没有名为“{text}”的班次：请改为已有班次（{self.names()}），或直接写时间段如 08:00-16:00。",
                   f"No shift is named {text!r}; use an existing shift or a time range.")

    def materialise(self, session: Session) -> dict[tuple[dt.time, dt.time], ShiftTemplate]:
        out = {}
        taken = {_key(s.code) for s in self.rows}
        position = max((s.position for s in self.rows), default=-1) + 1
        for (start, end), entry in self.new.items():
            code = _free_code(f"{start:%H%M}-{end:%H%M}", taken, "shift")
            shift = ShiftTemplate(code=code, name=entry["label"] or shift_label(start, end),
                                  start=start, end=end, position=position, active=True)
            position += 1
            session.add(shift)
            out[(start, end)] = shift
        return out


# -- demand -------------------------------------------------------------------------------

def _import_demand(session: Session, table: _Table, errors: _Errors, *,
                   roster_id: int | None = None,
                   **_: Any) -> tuple[_Writer, dict[str, Any]]:
    roster = None if roster_id is None else session.get(Roster, roster_id)
    if roster is None:
        raise ImportRejected([ImportIssue(
            code="roster_missing",
            message="导入用人需求前请先选择排班周期（该排班周期不存在）。",
            message_en=f"Demand needs an existing roster (no roster {roster_id}).")])
    db = _Sites(session)
    all_posts = [p for s in db.sites for p in s.posts]
    post_by_code = {_key(p.code): p for p in all_posts}
    shifts = _Shifts(session, create=True)
    first, last = roster.start, roster.end
    years = sorted({first.year, last.year})
    plans: list[tuple[int, dict[str, Any]]] = []

    def period_dates(value: Any) -> list[dt.date] | None:
        if _clean(value) in ("", "每天", "全部", "all"):
            return None
        out: list[dt.date] | None = None
        for year in years:
            try:
                out = _parse_dates(value, year)
            except _Bad:
                if year == years[-1]:
                    raise
                continue
            if all(first <= d <= last for d in out):
                return out
        outside = [d for d in out or [] if not first <= d <= last]
        if outside:
            raise _Bad("date_outside",
                       f"日期 {outside[0].isoformat()} 不在排班周期内（{first.isoformat()} 至 "
                       f"{last.isoformat()}），请修改或删去。",
                       f"{outside[0].isoformat()} is outside the roster period.")
        return out

    for row, rec in table.records:
        site_text = _clean(rec.get("site"))
        post_text = _clean(rec.get("post"))
        post = None
        if not post_text:
            errors.parse(row, rec, "post", lambda v: v, required=True)
        else:
            site = db.site(site_text) if site_text else None
            if site_text and site is None:
                errors.add(row, "site", rec.get("site"), "site_unknown",
                           f"没有名称或编号为“{site_text}”的点位：请先导入点位和岗位，或更正点位名称。",
                           f"No site {site_text!r}; import sites and posts first.")
            else:
                candidates = site.posts if site is not None else all_posts
                post = post_by_code.get(_key(post_text))
                if post is None or (site is not None and post.site_id != site.id):
                    named = [p for p in candidates if _key(p.name) == _key(post_text)]
                    post = named[0] if len(named) == 1 else None
                    if len(named) > 1:
                        errors.add(row, "post", rec.get("post"), "post_ambiguous",
                                   f"多个点位都有岗位“{post_text}”：请在“点位”列写明是哪个点位。",
                                   "Several sites have this post; name the site.")
                    elif post is None:
                        where = f"点位“{site.name}”下" if site is not None else ""
                        known = "、".join(p.name for p in candidates[:10])
                        errors.add(row, "post", rec.get("post"), "post_unknown",
                                   f"{where}没有岗位“{post_text}”：请先导入点位和岗位，或改为已有岗位"
                                   f"（{known or '尚无岗位'}）。",
                                   f"No post {post_text!r}; import sites and posts first.")
        shift = errors.parse(row, rec, "shift", shifts.find, required=True)
        low = errors.parse(row, rec, "min", lambda v: _parse_count(v, "最少人数"), required=True)
        high = errors.parse(row, rec, "max", lambda v: _parse_count(v, "最多人数"))
        if isinstance(low, int) and isinstance(high, int) and high < low:
            errors.add(row, "max", rec.get("max"), "max_below_min",
                       "最多人数小于最少人数，请调整（或留空，表示等于最少人数）。",
                       "max is below min.")
        requires = errors.parse(row, rec, "requires", _parse_requires)
        top = high if isinstance(high, int) else low
        if isinstance(requires, dict) and isinstance(top, int):
            over = [(k, n) for k, n in requires.items() if n > top]
            if over:
                errors.add(row, "requires", rec.get("requires"), "requires_over_max",
                           f"技能要求的人数（{over[0][1]}）超过了每班人数（{top}），请调低要求或调高人数。",
                           "A skill requirement exceeds the number of people.")
        dates = errors.parse(row, rec, "dates", period_dates)
        plans.append((row, {"post": post, "shift": shift, "min": low, "max": high,
                            "requires": requires, "dates": dates}))

    if not errors.items:
        seen: dict[tuple[Any, Any], list[tuple[int, set[dt.date] | None]]] = {}
        for row, p in plans:
            key = (p["post"].id, p["shift"].id if isinstance(p["shift"], ShiftTemplate)
                   else p["shift"])
            mine = None if p["dates"] is None else set(p["dates"])
            for other_row, other in seen.get(key, []):
                if mine is None or other is None or mine & other:
                    errors.add(row, "post", rec_value(table, row, "post"), "duplicate_in_file",
                               f"与第 {other_row} 行是同一岗位、同一班次且日期重叠，需求会重复计算："
                               "请合并这两行或把日期分开。",
                               f"Same post and shift with overlapping dates as row {other_row}.")
            seen.setdefault(key, []).append((row, mine))
    if errors.items:
        return _nothing, {}

    def write() -> tuple[ImportResult, dict[str, Any]]:
        created_shifts = shifts.materialise(session)
        old = session.scalar(select(func.count()).select_from(Demand)
                             .where(Demand.roster_id == roster.id)) or 0
        session.execute(delete(Demand).where(Demand.roster_id == roster.id))
        session.flush()
        rows = []
        for i, (_row, p) in enumerate(plans):
            shift = p["shift"] if isinstance(p["shift"], ShiftTemplate) \
                else created_shifts[p["shift"]]
            rows.append(Demand(
                roster_id=roster.id, position=i, post=p["post"], shift=shift, min=p["min"],
                max=p["max"] if p["max"] is not None else p["min"],
                requires={k: n for k, n in (p["requires"] or {}).items() if n},
                dates=None if p["dates"] is None
                else sorted({d.isoformat() for d in p["dates"]})))
        session.add_all(rows)
        session.flush()
        session.expire(roster, ["demand"])
        return ImportResult("demand", len(plans), created=len(rows), deleted=int(old),
                            details={"demand_created": len(rows), "demand_deleted": int(old),
                                     "shifts_created": len(created_shifts)}), {
            "roster": roster.id, "shifts_created": [s.code for s in created_shifts.values()]}

    return write, {"roster": roster.id}


def rec_value(table: _Table, row: int, fieldname: str) -> Any:
    for number, rec in table.records:
        if number == row:
            return rec.get(fieldname)
    return None


# -- unavailability -----------------------------------------------------------------------

def _import_unavailability(session: Session, table: _Table, errors: _Errors,
                           **_: Any) -> tuple[_Writer, dict[str, Any]]:
    shifts = _Shifts(session, create=False)
    parsed = []
    for row, rec in table.records:
        phone = errors.parse(row, rec, "phone", _parse_phone, required=True)
        name = errors.parse(row, rec, "name", lambda v: _parse_name(v) if _clean(v) else None)
        dates = errors.parse(row, rec, "date", _parse_dates, required=True)
        shift = (errors.parse(row, rec, "shift", shifts.find)
                 if _clean(rec.get("shift")) else None)
        reason = errors.parse(row, rec, "reason", lambda v: _text_value(v, 200) or None)
        parsed.append((row, rec, phone, name, dates, shift, reason))
    phones = sorted({p[2] for p in parsed if p[2]})
    volunteers: dict[str, Volunteer] = {}
    for chunk in _chunks(phones):
        volunteers.update((v.phone, v) for v in session.scalars(
            select(Volunteer).where(Volunteer.phone.in_(chunk))) if v.phone)
    plans: list[tuple[Volunteer, dt.date, ShiftTemplate | None, str | None]] = []
    for row, rec, phone, name, dates, shift, reason in parsed:
        if not phone:
            continue
        v = volunteers.get(phone)
        if v is None:
            errors.add(row, "phone", rec.get("phone"), "volunteer_unknown",
                       "没有使用该手机号的志愿者：请核对手机号，或先导入该志愿者。",
                       "No volunteer has this phone number; import the volunteer first.")
            continue
        if name and name != v.name:
            errors.add(row, "name", rec.get("name"), "name_mismatch",
                       f"该手机号登记的志愿者是“{v.name}”，与本行姓名不一致：请核对手机号或姓名。",
                       f"This phone belongs to {v.name!r}, not to this name.")
            continue
        if dates and shift is not _INVALID and reason is not _INVALID:
            plans += [(v, d, shift, reason) for d in dates]
    if errors.items:
        return _nothing, {}

    def write() -> tuple[ImportResult, dict[str, Any]]:
        ids = sorted({v.id for v, *_ in plans})
        existing = set()
        for chunk in _chunks(ids):
            existing |= {(u.volunteer_id, u.date, u.shift_id) for u in session.scalars(
                select(Unavailability).where(Unavailability.volunteer_id.in_(chunk)))}
        rows = []
        unchanged = 0
        for v, d, shift, reason in plans:
            key = (v.id, d, None if shift is None else shift.id)
            if key in existing:
                unchanged += 1
                continue
            existing.add(key)
            rows.append(Unavailability(volunteer_id=v.id, date=d,
                                       shift_id=None if shift is None else shift.id,
                                       reason=reason))
        session.add_all(rows)
        session.flush()
        return ImportResult("unavailability", len(table.records), created=len(rows),
                            unchanged=unchanged,
                            details={"unavailability_created": len(rows)}), {
            "volunteers": len(ids)}

    return write, {}


_IMPORTERS: dict[str, Callable[..., tuple[_Writer, dict[str, Any]]]] = {
    "volunteers": _import_volunteers,
    "sites": _import_sites,
    "demand": _import_demand,
    "unavailability": _import_unavailability,
}


# -- entry point ----------------------------------------------------------------------------

def import_file(session: Session, kind: str, filename: str, data: bytes, actor: str, *,
                roster_id: int | None = None, dry_run: bool = False,
                reason: str | None = None) -> ImportResult:
    """Import one XLSX or CSV file of `kind` (see `KINDS`); all rows or none.

    Works in the caller's transaction (it does not commit) inside a savepoint; with
    `dry_run` everything is validated and counted, then rolled back. Raises
    `ImportRejected` (with every error), `UnreadableFile` or `ImportTooLarge`.
    """
    if kind not in _IMPORTERS:
        raise ValueError(f"unknown import kind {kind!r}; one of {', '.join(KINDS)}")
    if not actor:
        raise ValueError("an import needs an actor")
    table = _read_table(kind, filename, bytes(data))
    if not table.records:
        raise ImportRejected([ImportIssue(
            code="no_rows", row=table.header_row,
            message=f"第 {table.header_row} 行表头下面没有数据，请填写后再导入。",
            message_en="There are no rows under the header.")])
    errors = _Errors(kind, table)
    with session.no_autoflush:
        write, extra = _IMPORTERS[kind](session, table, errors, roster_id=roster_id)
    if errors.items:
        raise ImportRejected(sorted(errors.items, key=lambda e: (e.row or 0, e.column_letter
                                                                 or "")))
    nested = session.begin_nested()
    try:
        with session.no_autoflush:
            result, summary = write()
        event = audit.record(
            session, actor, f"import.{kind}", kind, extra.get("roster"),
            after={"file": filename, "sha256": hashlib.sha256(data).hexdigest(),
                   "header_row": table.header_row, "rows": result.rows,
                   "created": result.created, "updated": result.updated,
                   "unchanged": result.unchanged, "deleted": result.deleted,
                   **result.details, **summary},
            reason=reason)
        session.flush()
        result.audit_event_id = event.id
    except SQLAlchemyError as exc:
        nested.rollback()
        raise ImportRejected([ImportIssue(
            code="conflict",
            message="写入时数据库中的数据被同时修改（如他人同时导入），本次未写入任何内容，请重新导入。",
            message_en=f"The database changed while writing ({type(exc).__name__}); nothing "
                       "was written, import again.")]) from exc
    except BaseException:
        nested.rollback()
        raise
    if dry_run:
        nested.rollback()
        result.dry_run, result.audit_event_id = True, None
    else:
        nested.commit()
    return result
