"""Database <-> exchange format (scheduler/problems.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import solver
from scheduler.models import (
    Assignment,
    AuditEvent,
    Preference,
    Roster,
    RosterVersion,
    Site,
    Unavailability,
    Volunteer,
)
from scheduler.problems import (
    SolutionError,
    load_problem,
    roster_problem,
    store_solution,
    version_assignments,
    version_solution,
)
from tests.fixtures.problems import (
    demand,
    make_problem,
    preference,
    shared_dir,
    site,
    volunteer,
)

pytest_plugins = ["tests.fixtures.db"]

YUHUA = shared_dir() / "examples" / "yuhua-small.json"
ACTOR = "协调员"


def _yuhua() -> dict[str, Any]:
    if not YUHUA.exists():
        pytest.skip(f"{YUHUA} is missing")
    doc: dict[str, Any] = json.loads(YUHUA.read_text(encoding="utf-8"))
    return doc


def _meaning(doc: dict[str, Any]) -> tuple[Any, ...]:
    """What the solver reads from a document (its parsed form, without the raw dict)."""
    p = solver.parse_problem(doc)
    return (p.name, p.timezone, p.start, p.days, p.coverage_weight, p.shifts, p.sites,
            p.posts, p.demand, p.volunteers, p.rules)


def _count(db: Session, model: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def _small() -> dict[str, Any]:
    """Two posts, one shift pattern, three volunteers: quick to store by hand."""
    return make_problem(
        days=3,
        sites=[site("s1", posts=["p1", "p2"]), site("h1", kind="hotel", posts=["h1-p"])],
        demand=[demand("p1", "M", 1, 2), demand("p2", "M", 1, dates=[0, 2]),
                demand("h1-p", "N", 1, requires={"party": 1})],
        volunteers=[volunteer("v1", skills=["party", "driver"], max_shifts=3),
                    volunteer("v2", unavailable=[(1, None), (2, "M")],
                              preferences=[preference(0, want=False, shift="M", weight=3)]),
                    volunteer("v3", sites=["s1"], min_shifts=1)],
        rules=[{"type": "min_rest_hours", "hours": 12},
               {"type": "max_shift_per_week", "shift": "N", "count": 2, "weight": 5,
                "applies_to": "party"},
               {"type": "balance", "weight": 1}])


def _assign(*rows: tuple[str, int, str, str]) -> dict[str, Any]:
    return {"format": "roster-solution/1", "status": "FEASIBLE", "objective": 1, "bound": 0,
            "assignments": [{"volunteer": v, "date": f"2022-04-0{4 + d}", "shift": s, "post": p}
                            for v, d, s, p in rows]}


def test_yuhua_round_trip_through_the_database(db: Session) -> None:
    doc = _yuhua()
    roster = load_problem(db, doc, actor=ACTOR, reason="示例")
    db.commit()
    db.expire_all()

    again = roster_problem(db, roster.id)
    assert _meaning(again) == _meaning(doc)
    # Same ids in the same order, same demand and rules, as written.
    assert [s["id"] for s in again["shifts"]] == [s["id"] for s in doc["shifts"]]
    assert [s["id"] for s in again["sites"]] == [s["id"] for s in doc["sites"]]
    assert [v["id"] for v in again["volunteers"]] == [v["id"] for v in doc["volunteers"]]
    assert again["demand"] == doc["demand"]
    assert again["rules"] == doc["rules"]
    assert json.loads(json.dumps(again)) == again  # plain JSON

    solution = solver.solve(again, time_limit=3, workers=2, seed=1)
    assert solution["status"] in ("OPTIMAL", "FEASIBLE") and solution["assignments"]
    version = store_solution(db, roster.id, solution, actor=ACTOR)
    db.commit()
    db.expire_all()

    stored = version_assignments(db, version.id)
    key = lambda a: (a["date"], a["shift"], a["post"], a["volunteer"])  # noqa: E731
    assert stored == sorted(solution["assignments"], key=key)
    assert version.number == 1 and version.state == "draft"
    assert version.objective == solution["objective"]
    back = version_solution(db, version.id)
    problem_back = solver.parse_problem(roster_problem(db, roster.id))
    report = solver.check(problem_back, solver.parse_assignments(problem_back, back))
    assert report.ok and report.objective == solution["objective"]
    actions = db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["roster.load_problem", "roster_version.create"]


def test_load_problem_stores_district_data(db: Session) -> None:
    roster = load_problem(db, _small(), actor=ACTOR)
    v1, v2, v3 = db.scalars(select(Volunteer).order_by(Volunteer.code)).all()
    assert v1.party_member and v1.skills == ["driver"] and v1.max_shifts == 3
    assert not v1.sites_restricted and v3.sites_restricted
    assert [s.code for s in v3.allowed_sites] == ["s1"] and v3.min_shifts == 1
    assert sorted((u.date.day, u.shift.code if u.shift else None) for u in v2.unavailability) == [
        (5, None), (6, "M")]
    (pref,) = v2.preferences
    assert (pref.want, pref.weight, pref.shift and pref.shift.code) == (False, 3, "M")
    assert [(d.post.code, d.shift.code, d.min, d.max, d.requires, d.dates)
            for d in roster.demand] == [
        ("p1", "M", 1, 2, {}, None), ("p2", "M", 1, 1, {}, ["2022-04-04", "2022-04-06"]),
        ("h1-p", "N", 1, 1, {"party": 1}, None)]
    assert roster.rule_set is not None
    assert [(r.type, r.params, r.weight, r.applies_to) for r in roster.rule_set.rules] == [
        ("min_rest_hours", {"hours": 12}, None, None),
        ("max_shift_per_week", {"shift": "N", "count": 2}, 5, "party"),
        ("balance", {}, 1, None)]
    event = db.scalars(select(AuditEvent)).one()
    assert (event.actor, event.entity, event.entity_id) == (ACTOR, "roster", str(roster.id))
    assert event.after is not None and event.after["created"]["volunteers"] == 3


def test_loading_again_updates_by_id_and_replaces_the_period(db: Session) -> None:
    first = load_problem(db, _small(), actor=ACTOR)
    doc = _small()
    doc["volunteers"][1]["unavailable"] = [{"date": "2022-04-04", "shift": "N"}]
    doc["volunteers"][1]["preferences"] = []
    doc["volunteers"][0]["name"] = "李伟(改)"
    second = load_problem(db, doc, actor=ACTOR, name="第二期")
    assert first.id != second.id and second.name == "第二期"
    assert _count(db, Volunteer) == 3 and _count(db, Roster) == 2
    v2 = db.scalars(select(Volunteer).where(Volunteer.code == "v2")).one()
    assert [(u.date.day, u.shift and u.shift.code) for u in db.scalars(
        select(Unavailability).where(Unavailability.volunteer_id == v2.id))] == [(4, "N")]
    assert _count(db, Preference) == 0
    assert _meaning(roster_problem(db, first.id)) == _meaning(doc | {"name": first.name})


def test_an_invalid_problem_writes_nothing(db: Session) -> None:
    doc = _small()
    doc["demand"][0]["post"] = "nowhere"
    with pytest.raises(solver.ProblemError, match=r"demand\[0\]\.post"):
        load_problem(db, doc, actor=ACTOR)
    assert _count(db, Volunteer) == 0 and _count(db, AuditEvent) == 0


def test_roster_problem_uses_only_active_volunteers(db: Session) -> None:
    roster = load_problem(db, _small(), actor=ACTOR)
    v2 = db.scalars(select(Volunteer).where(Volunteer.code == "v2")).one()
    v2.status = "absent"
    db.flush()
    assert [v["id"] for v in roster_problem(db, roster.id)["volunteers"]] == ["v1", "v3"]
    with pytest.raises(LookupError):
        roster_problem(db, roster.id + 1000)


def test_roster_problem_takes_active_district_data(
        db: Session, create_site: Callable[..., Site]) -> None:
    roster = load_problem(db, _small(), actor=ACTOR)
    create_site("new", posts=["new-p"])
    create_site("closed", posts=["closed-p"], active=False)
    h1 = db.scalars(select(Site).where(Site.code == "h1")).one()
    h1.active = False  # closed, but this roster's demand still names its post
    db.flush()
    doc = roster_problem(db, roster.id)
    assert [(s["id"], [p["id"] for p in s["posts"]]) for s in doc["sites"]] == [
        ("s1", ["p1", "p2"]), ("h1", ["h1-p"]), ("new", ["new-p"])]


def test_assignments_keep_their_identity_across_versions(db: Session) -> None:
    roster = load_problem(db, _small(), actor=ACTOR)
    one = store_solution(db, roster.id, _assign(
        ("v1", 0, "M", "p1"), ("v3", 0, "M", "p2"), ("v1", 2, "N", "h1-p")), actor=ACTOR)
    two = store_solution(db, roster.id, _assign(
        ("v1", 0, "M", "p2"), ("v3", 0, "M", "p1"), ("v2", 0, "N", "h1-p")), actor=ACTOR,
        note="手工调整")
    assert (one.number, two.number) == (1, 2)

    def by_key(version: RosterVersion) -> dict[tuple[str, int, str], Assignment]:
        return {(a.volunteer.code, a.date.day, a.shift.code): a for a in version.assignments}

    db.expire_all()
    a, b = by_key(one), by_key(two)
    # Moved to another post: same uid, next revision. New: new uid. Dropped: gone.
    assert b[("v1", 4, "M")].uid == a[("v1", 4, "M")].uid and b[("v1", 4, "M")].revision == 2
    assert b[("v3", 4, "M")].uid == a[("v3", 4, "M")].uid and b[("v3", 4, "M")].revision == 2
    assert b[("v2", 4, "N")].uid not in {x.uid for x in a.values()}
    assert b[("v2", 4, "N")].revision == 1 and ("v1", 6, "N") not in b
    assert len({x.uid for x in a.values()}) == 3

    # Once a version is published, new drafts take their identities from it.
    one.state, two.state = "published", "superseded"
    db.flush()
    three = store_solution(db, roster.id, _assign(("v1", 2, "N", "h1-p"), ("v3", 1, "M", "p1")),
                           actor=ACTOR)
    c = by_key(three)
    assert c[("v1", 6, "N")].uid == a[("v1", 6, "N")].uid and c[("v1", 6, "N")].revision == 1
    assert c[("v3", 5, "M")].uid not in {x.uid for x in [*a.values(), *b.values()]}
    assert _count(db, AuditEvent) == 4


@pytest.mark.parametrize(("solution", "message"), [
    (_assign(("nobody", 0, "M", "p1")), "unknown volunteer"),
    (_assign(("v1", 0, "M", "h1-p")), "no demand asks for"),
    (_assign(("v1", 9, "M", "p1")), "not a date in the horizon"),
    (_assign(("v2", 1, "M", "p1")), "hard rule violation"),  # v2 is away that day
    (_assign(("v3", 0, "N", "h1-p")), "hard rule violation"),  # v3 only works at s1
    ({"format": "roster-solution/1", "status": "INFEASIBLE", "assignments": []}, "INFEASIBLE"),
    ({"format": "roster-problem/1"}, "not a roster-solution/1"),
])
def test_a_bad_solution_writes_nothing(db: Session, solution: dict[str, Any],
                                       message: str) -> None:
    roster = load_problem(db, _small(), actor=ACTOR)
    with pytest.raises(SolutionError, match=message):
        store_solution(db, roster.id, copy.deepcopy(solution), actor=ACTOR)
    assert _count(db, RosterVersion) == 0 and _count(db, Assignment) == 0
    assert _count(db, AuditEvent) == 1  # the load only


def test_a_failure_while_storing_rolls_back_the_version_and_its_audit(db: Session) -> None:
    roster = load_problem(db, _small(), actor=ACTOR)
    db.commit()
    # The same person twice on one shift passes the format check but not the database.
    twice = _assign(("v1", 0, "M", "p1"), ("v1", 0, "M", "p2"))
    with pytest.raises(IntegrityError), db.begin_nested():
        store_solution(db, roster.id, twice, actor=ACTOR, allow_hard_violations=True)
    assert _count(db, RosterVersion) == 0 and _count(db, Assignment) == 0
    assert _count(db, AuditEvent) == 1
