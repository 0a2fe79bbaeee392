"""Downloadable import templates: one XLSX (or CSV) per kind, Chinese headers.

The data sheet holds the header row only (no example rows that could be imported by
mistake); phone and ID columns are formatted as text so Excel keeps every digit; a
second sheet, 填写说明, says how to fill each column and shows an example row.
"""

from __future__ import annotations

import io

from scheduler.imports import COLUMNS, KIND_LABELS, KINDS

#: The file name a browser should save the template under.
FILENAMES = {kind: f"{KIND_LABELS[kind]}导入模板.xlsx" for kind in KINDS}

_YES_NO = '"是,否"'
_CHOICES = {
    "party": _YES_NO,
    "status": '"在岗,请假,离开"',
    "kind": '"卡口,小区,隔离酒店,核酸检测点,其他"',
}


def template_xlsx(kind: str) -> bytes:
    """The XLSX template of `kind` (one of `scheduler.imports.KINDS`)."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    if kind not in COLUMNS:
        raise ValueError(f"unknown import kind {kind!r}; one of {', '.join(KINDS)}")
    columns = COLUMNS[kind]
    book = Workbook()
    sheet = book.active
    sheet.title = KIND_LABELS[kind]
    bold = Font(bold=True)
    required_fill = PatternFill("solid", fgColor="FFF2CC")
    for i, column in enumerate(columns, start=1):
        cell = sheet.cell(row=1, column=i, value=column.header)
        cell.font = bold
        if column.required:
            cell.fill = required_fill
        if column.note:
            cell.comment = Comment(column.note, "Bastion")
        letter = get_column_letter(i)
        sheet.column_dimensions[letter].width = max(12, 2 * len(column.header) + 6)
        if column.text:
            # Text format for the whole column: Excel keeps 11-digit phones and 18-digit
            # ID numbers as typed instead of turning them into (lossy) numbers.
            sheet.column_dimensions[letter].number_format = "@"
        choices = _CHOICES.get(column.field)
        if choices:
            rule = DataValidation(type="list", formula1=choices, allow_blank=True)
            rule.add(f"{letter}2:{letter}10001")
            sheet.add_data_validation(rule)
    sheet.freeze_panes = "A2"

    notes = book.create_sheet("填写说明")
    notes.append(["列名", "是否必填", "填写说明", "示例"])
    for cell in notes[1]:
        cell.font = bold
    for column in columns:
        notes.append([column.header, "必填" if column.required else "选填", column.note,
                      column.example])
    notes.append([])
    notes.append(["说明", "", "从第一个工作表导入；表头上方可以有标题行。导入时先检查全部行，有任何错误都不会写入，"
                  "并列出每处错误的行号、列名和改法。", ""])
    for letter, width in (("A", 14), ("B", 10), ("C", 70), ("D", 24)):
        notes.column_dimensions[letter].width = width
    for row in notes.iter_rows(min_row=2):
        row[2].alignment = Alignment(wrap_text=True, vertical="top")

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def template_csv(kind: str) -> bytes:
    """The header row of `kind` as CSV in UTF-8 with a BOM (Excel then reads it right)."""
    if kind not in COLUMNS:
        raise ValueError(f"unknown import kind {kind!r}; one of {', '.join(KINDS)}")
    return ("\ufeff" + ",".join(c.header for c in COLUMNS[kind]) + "\r\n").encode("utf-8")
