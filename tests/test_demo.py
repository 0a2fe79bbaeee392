"""The demo district (scheduler/demo.py) as import sheets: imported, it is the district."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler import demo, imports, rosters
from scheduler.models import Demand, Post, Site, Unavailability, Volunteer
from scheduler.problems import roster_problem
from solver import scenario

pytest_plugins = ["tests.fixtures.db"]

START = dt.date(2022, 4, 4)


def _people(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Volunteers without their ids (imports number them anew) and preferences (no sheet);
    their sites and skills are sets."""
    out = []
    for v in doc["volunteers"]:
        out.append({**{k: v[k] for k in ("name", "unit", "max_shifts", "min_shifts")},
                    "skills": sorted(v["skills"]), "sites": sorted(v["sites"]),
                    "unavailable": sorted(v["unavailable"],
                                          key=lambda u: (u["date"], u.get("shift", "")))})
    return out


def test_demo_sheets_imported_into_an_empty_database_are_the_demo_district(
        db: Session) -> None:
    sheets = demo.demo_sheets(start=START, seed=3, days=7, streets=1)
    assert list(sheets) == list(demo.SHEET_ORDER)
    roster = rosters.create_roster(db, "协调员", name="演示", start=START, days=7)
    results = {kind: imports.import_file(db, kind, demo.sheet_filename(kind), data, "协调员",
                                         roster_id=roster.id)
               for kind, data in sheets.items()}
    expected = scenario.generate(seed=3, days=7, start=START.isoformat(),
                                 streets_per_district=1)
    posts = sum(len(s["posts"]) for s in expected["sites"])
    unavailable = sum(len(v["unavailable"]) for v in expected["volunteers"])
    assert db.scalar(select(func.count()).select_from(Volunteer)) == len(expected["volunteers"])
    assert db.scalar(select(func.count()).select_from(Site)) == len(expected["sites"])
    assert db.scalar(select(func.count()).select_from(Post)) == posts
    assert db.scalar(select(func.count()).select_from(Demand)) == len(expected["demand"])
    assert db.scalar(select(func.count()).select_from(Unavailability)) == unavailable
    assert results["unavailability"].created == unavailable
    # Not only the counts: the roster's problem is the generated one, field by field.
    got = roster_problem(db, roster.id)
    assert got["shifts"] == expected["shifts"]
    assert got["sites"] == expected["sites"]
    assert got["demand"] == expected["demand"]
    assert got["rules"] == expected["rules"]
    assert _people(got) == _people(expected)
    # Phones are the ones the demo gives (+86 138 0000 0001, … in generated order).
    first = db.scalars(select(Volunteer).order_by(Volunteer.id).limit(1)).one()
    assert (first.phone, first.name) == (demo.demo_phone(1), expected["volunteers"][0]["name"])


def test_demo_sheets_are_in_the_template_format() -> None:
    def values(data: bytes) -> list[tuple[Any, ...]]:
        return list(load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True))

    sheets = demo.demo_sheets(start=START, seed=0, days=3, streets=1)
    again = demo.demo_sheets(start=START, seed=0, days=3, streets=1)
    assert {k: values(v) for k, v in sheets.items()} == {k: values(v) for k, v in again.items()}
    book = load_workbook(io.BytesIO(sheets["volunteers"]))
    sheet = book.active
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["姓名", "手机号", "单位"]
    assert set(header) <= {c.header for c in imports.COLUMNS["volunteers"]}
    phone = sheet.cell(row=2, column=2)
    assert phone.value == "13800000001" and phone.number_format == "@"
    demand = load_workbook(io.BytesIO(sheets["demand"])).active
    shifts = {row[2] for row in demand.iter_rows(min_row=2, values_only=True)}
    assert shifts == {"早班 08:00-16:00", "中班 16:00-次日00:00", "夜班 00:00-08:00"}
    assert demo.sheet_filename("sites") == "1-点位和岗位.xlsx"
