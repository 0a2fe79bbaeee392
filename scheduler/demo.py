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

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from scheduler import audit, problems, rosters
from scheduler.accounts import services as accounts
from scheduler.accounts.models import User
from scheduler.models import Roster, Site, Volunteer
from solver import scenario
from solver.greedy import greedy
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
        session.connection().execute(
            update(Volunteer.__table__).where(Volunteer.__table__.c.id == bindparam("vid"))
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
