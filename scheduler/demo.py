"""The demo district for ``make run``: loaded once, with a published roster and accounts.

`seed_demo` loads the generated district (`solver.scenario`) starting on a given date,
gives its volunteers demo phone numbers (so the phone login can be tried), stores the
day-by-day greedy roster as version 1 and publishes it, and creates a demo coordinator
and a secretary of the first street. It does nothing when the database already has a
roster or the accounts exist, so running it twice changes nothing. Development only: the
demo password is printed and fixed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from scheduler import audit, problems, rosters
from scheduler.accounts import services as accounts
from scheduler.accounts.models import User
from scheduler.imports import COLUMNS, KIND_LABELS, shift_label
from scheduler.models import Roster, Site, Volunteer
from solver import scenario
from solver.greedy import greedy
from solver.i18n import SKILLS
from solver.problem import parse_problem
from solver.rules import instantiate
from solver.solve import solution_document

DEMO_PASSWORD = "bastion-demo-only"
COORDINATOR, SECRETARY = "demo-coordinator", "demo-secretary"
#: The secretary's sites: the first street of the demo district.
SECRETARY_SITE_PREFIX = "d00s0-"
SECRETARY_BRANCH = "东岸街道党支部"


@dataclass
class DemoResult:
    roster_id: int | None
    created_users: list[str]


def demo_phone(index: int) -> str:
    """The demo phone of the `index`-th volunteer (1-based): +86 138 0000 0001 …"""
    return f"+86138{index:08d}"


def seed_demo(session: Session, actor: str, *, start: dt.date, seed: int = 0,
              days: int = 14) -> DemoResult:
    """Load the demo district and its accounts unless already there (caller commits)."""
    roster_id = None
    if session.scalar(select(func.count(Roster.id))) == 0:
        roster_id = _load_district(session, actor, start, seed, days)
    return DemoResult(roster_id, _create_users(session, actor))


def _load_district(session: Session, actor: str, start: dt.date, seed: int, days: int) -> int:
    doc = scenario.generate(seed=seed, days=days, start=start.isoformat())
    roster = problems.load_problem(session, doc, actor=actor, reason="demo district")
    _give_phones(session, actor)
    problem = parse_problem(problems.roster_problem(session, roster.id))
    rules = instantiate(problem)
    solution = solution_document(problem, rules, greedy(problem, rules), "FEASIBLE", 0, 0.0)
    version = problems.store_solution(session, roster.id, solution, actor=actor,
                                      note="demo: day-by-day greedy roster")
    rosters.publish(session, roster.id, version.number, None, actor, reason="demo")
    return roster.id


def _give_phones(session: Session, actor: str) -> None:
    ids = session.scalars(select(Volunteer.id).where(Volunteer.phone.is_(None))
                          .order_by(Volunteer.code)).all()
    rows = [{"vid": vid, "new_phone": demo_phone(i)} for i, vid in enumerate(ids, start=1)]
    if rows:
        table = cast(Table, Volunteer.__table__)
        session.connection().execute(
            update(table).where(table.c.id == bindparam("vid"))
            .values(phone=bindparam("new_phone")), rows)
        audit.record(session, actor, "volunteer.update", "volunteer", None,
                     after={"phones": f"demo phones for {len(rows)} volunteers"},
                     reason="demo district")


def _create_users(session: Session, actor: str) -> list[str]:
    created = []
    existing = set(session.scalars(select(User.username).where(
        User.username.in_([COORDINATOR, SECRETARY]))))
    if COORDINATOR not in existing:
        accounts.create_staff_user(session, COORDINATOR, "coordinator", DEMO_PASSWORD, actor,
                                   display_name="演示协调员")
        created.append(COORDINATOR)
    if SECRETARY not in existing:
        codes = session.scalars(select(Site.code).where(
            Site.code.startswith(SECRETARY_SITE_PREFIX)).order_by(Site.code)).all()
        accounts.create_staff_user(session, SECRETARY, "secretary", DEMO_PASSWORD, actor,
                                   site_codes=codes, branch=SECRETARY_BRANCH,
                                   display_name="演示书记")
        created.append(SECRETARY)
    return created


# -- the demo district as import sheets -----------------------------------------------------

#: The order a district imports its sheets in: posts before the people who may work
#: there, demand and unavailability (which name the shifts) last.
SHEET_ORDER = ("sites", "volunteers", "demand", "unavailability")
_SITE_KINDS = {"checkpoint": "卡口", "building": "小区", "hotel": "隔离酒店",
               "testing": "核酸检测点", "other": "其他"}


def sheet_filename(kind: str) -> str:
    """The file name of a demo sheet: numbered in import order, e.g. ``1-点位和岗位.xlsx``."""
    return f"{SHEET_ORDER.index(kind) + 1}-{KIND_LABELS[kind]}.xlsx"


def demo_sheets(*, start: dt.date, seed: int = 0, days: int = 14,
                streets: int = 4) -> dict[str, bytes]:
    """The demo district (`solver.scenario.generate`) as XLSX import sheets, by kind.

    Volunteers get the phones `seed_demo` gives them (`demo_phone`, in generated order).
    The same arguments give the same sheets.
    """
    doc = scenario.generate(seed=seed, days=days, start=start.isoformat(),
                            streets_per_district=streets)
    shifts = {s["id"]: s for s in doc["shifts"]}
    phones = {v["id"]: demo_phone(i)[3:] for i, v in enumerate(doc["volunteers"], start=1)}

    def skill(tag: str) -> str:
        return SKILLS[tag].zh if tag in SKILLS else tag

    def shift_text(code: str) -> str:
        s = shifts[code]
        return f"{s['name']} {shift_label(dt.time.fromisoformat(s['start']), dt.time.fromisoformat(s['end']))}"

    rows: dict[str, list[dict[str, object]]] = {kind: [] for kind in SHEET_ORDER}
    for site in doc["sites"]:
        for post in site["posts"]:
            rows["sites"].append({"site_code": site["id"], "site_name": site["name"],
                                  "kind": _SITE_KINDS[site["kind"]], "post_code": post["id"],
                                  "post_name": post["name"]})
    for v in doc["volunteers"]:
        rows["volunteers"].append({
            "name": v["name"], "phone": phones[v["id"]], "unit": v["unit"],
            "skills": "、".join(skill(t) for t in v["skills"] if t != scenario.PARTY),
            "party": "是" if scenario.PARTY in v["skills"] else "否",
            "max_shifts": v["max_shifts"], "min_shifts": v["min_shifts"],
            "sites": "、".join(v["sites"]) if v["sites"] is not None else "",
            "status": "在岗"})
        by_shift: dict[str | None, list[str]] = {}
        for u in v["unavailable"]:
            by_shift.setdefault(u.get("shift"), []).append(u["date"])
        for code, dates in by_shift.items():
            rows["unavailability"].append({
                "phone": phones[v["id"]], "name": v["name"], "date": _date_ranges(dates),
                "shift": "" if code is None else shift_text(code)})
    site_of = {p["id"]: s["id"] for s in doc["sites"] for p in s["posts"]}
    for d in doc["demand"]:
        rows["demand"].append({
            "site": site_of[d["post"]], "post": d["post"], "shift": shift_text(d["shift"]),
            "min": d["min"], "max": d["max"],
            "dates": "" if d["dates"] is None else _date_ranges(d["dates"]),
            "requires": "、".join(f"{skill(k)}{n}" for k, n in d["requires"].items() if n)})
    return {kind: _workbook(kind, rows[kind]) for kind in SHEET_ORDER}


def _date_ranges(dates: list[str]) -> str:
    """ISO dates as a district writes them: runs as ``2022-04-05至2022-04-07``, 、 between."""
    days = sorted({dt.date.fromisoformat(x) for x in dates})
    runs: list[list[dt.date]] = []
    for day in days:
        if runs and (day - runs[-1][-1]).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return "、".join(r[0].isoformat() if len(r) == 1 else f"{r[0].isoformat()}至{r[-1].isoformat()}"
                    for r in runs)


def _workbook(kind: str, rows: list[dict[str, object]]) -> bytes:
    import io

    from openpyxl import Workbook

    fields = set(rows[0]) if rows else {c.field for c in COLUMNS[kind] if c.required}
    columns = [c for c in COLUMNS[kind] if c.field in fields]
    book = Workbook()
    sheet = book.active
    sheet.title = KIND_LABELS[kind]
    sheet.append([c.header for c in columns])
    for row in rows:
        sheet.append([row.get(c.field) for c in columns])
    for i, column in enumerate(columns, start=1):
        if column.text:  # phones stay text, as in the templates
            for (cell,) in sheet.iter_rows(min_row=2, min_col=i, max_col=i):
                cell.number_format = "@"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
