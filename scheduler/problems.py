"""Between the database and the exchange format (`roster-problem/1`, `roster-solution/1`).

This is the one place that converts, so any roster can be exported as a problem file and
solved or checked by the solver's CLI, and any problem file can be loaded as a roster.

- `roster_problem(session, roster_id)`: the roster as a problem document;
- `load_problem(session, doc, actor=...)`: a problem document stored as a new roster;
- `store_solution(session, roster_id, solution, actor=...)`: a new draft version;
- `version_solution(session, version_id)`: a version as a solution document.

None of them commits: they work in the caller's transaction (`scheduler.db.session_scope`)
and write their audit rows into it, so a failure leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from scheduler import audit
from scheduler.models import (
    PARTY_SKILL,
    Assignment,
    Demand,
    Post,
    Preference,
    Roster,
    RosterVersion,
    Rule,
    RuleSet,
    ShiftTemplate,
    Site,
    Unavailability,
    Volunteer,
)
from solver import Problem, ProblemError, check, parse_assignments, parse_problem
from solver.problem import PROBLEM_FORMAT, SOLUTION_FORMAT

#: Keys of a rule entry that are not its type's parameters.
_RULE_KEYS = ("type", "weight", "applies_to")

_Dated = TypeVar("_Dated", Unavailability, Preference)
_Coded = TypeVar("_Coded", ShiftTemplate, Site, Post, Volunteer)


class SolutionError(ValueError):
    """A solution document that cannot be stored as a roster version."""


def _hhmm(value: dt.time) -> str:
    return value.strftime("%H:%M")


def _time(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


def _get_roster(session: Session, roster_id: int, *, lock: bool = False) -> Roster:
    query = select(Roster).where(Roster.id == roster_id)
    if lock:
        query = query.with_for_update()
    roster = session.scalars(query).one_or_none()
    if roster is None:
        raise LookupError(f"no roster {roster_id}")
    return roster


# -- database -> problem ------------------------------------------------------------------

def roster_problem(session: Session, roster_id: int, *,
                   include: Iterable[str] = ()) -> dict[str, Any]:
    """The roster as a valid `roster-problem/1` document.

    District data goes in as it stands now: the active shifts, sites and posts (plus any
    that the roster's demand or rules still name), and the active volunteers with their
    unavailability and preferences inside the period. `include`: volunteer codes to list
    whatever their status (a repair must still name the absent volunteer of the published
    roster). Raises `LookupError` for an unknown roster and `solver.ProblemError` if the
    stored data does not make a valid problem.
    """
    roster = _get_roster(session, roster_id)
    demand = session.scalars(
        select(Demand).where(Demand.roster_id == roster.id).order_by(Demand.position)
        .options(selectinload(Demand.post), selectinload(Demand.shift))).all()
    rules = [] if roster.rule_set is None else list(roster.rule_set.rules)

    shift_codes = {r.params.get("shift") for r in rules if isinstance(r.params.get("shift"), str)}
    shifts = session.scalars(
        select(ShiftTemplate)
        .where(ShiftTemplate.active | ShiftTemplate.id.in_({d.shift_id for d in demand})
               | ShiftTemplate.code.in_(shift_codes))
        .order_by(ShiftTemplate.position, ShiftTemplate.id)).all()
    shift_ids = {s.id for s in shifts}

    needed_posts = {d.post_id for d in demand}
    sites = session.scalars(
        select(Site).where(Site.active | Site.id.in_({d.post.site_id for d in demand}))
        .order_by(Site.id).options(selectinload(Site.posts))).all()
    site_docs: list[dict[str, Any]] = []
    post_ids: set[int] = set()
    for site in sites:
        posts = [p for p in site.posts if (p.active and site.active) or p.id in needed_posts]
        post_ids.update(p.id for p in posts)
        site_docs.append({"id": site.code, "name": site.name, "kind": site.kind,
                          "posts": [{"id": p.code, "name": p.name} for p in posts]})
    site_ids = {s.id for s in sites}

    first, last = roster.start, roster.end
    listed = Volunteer.status == "active"
    if include := sorted(set(include)):
        listed = listed | Volunteer.code.in_(include)
    volunteers = session.scalars(
        select(Volunteer).where(listed).order_by(Volunteer.id)
        .options(selectinload(Volunteer.allowed_sites))).all()
    unavailable = _by_volunteer(session.scalars(
        select(Unavailability)
        .where(Unavailability.date.between(first, last))
        .order_by(Unavailability.date, Unavailability.id)
        .options(selectinload(Unavailability.shift))).all())
    preferences = _by_volunteer(session.scalars(
        select(Preference)
        .where(Preference.date.between(first, last))
        .order_by(Preference.id)
        .options(selectinload(Preference.shift), selectinload(Preference.post))).all())

    volunteer_docs = []
    for v in volunteers:
        doc: dict[str, Any] = {"id": v.code, "name": v.name, "unit": v.unit, "skills": v.tags}
        if v.max_shifts is not None:
            doc["max_shifts"] = v.max_shifts
        if v.min_shifts is not None:
            doc["min_shifts"] = v.min_shifts
        doc["sites"] = ([s.code for s in v.allowed_sites if s.id in site_ids]
                        if v.sites_restricted else None)
        doc["unavailable"] = [
            {"date": u.date.isoformat()} if u.shift is None
            else {"date": u.date.isoformat(), "shift": u.shift.code}
            for u in unavailable.get(v.id, []) if u.shift_id is None or u.shift_id in shift_ids]
        prefs = []
        for p in preferences.get(v.id, []):
            if (p.shift_id is not None and p.shift_id not in shift_ids) or (
                    p.post_id is not None and p.post_id not in post_ids):
                continue  # about a shift or post that is no longer in use
            entry: dict[str, Any] = {"date": p.date.isoformat()}
            if p.shift is not None:
                entry["shift"] = p.shift.code
            if p.post is not None:
                entry["post"] = p.post.code
            entry.update(want=p.want, weight=p.weight)
            prefs.append(entry)
        doc["preferences"] = prefs
        volunteer_docs.append(doc)

    problem = {
        "format": PROBLEM_FORMAT,
        "name": roster.name,
        "timezone": roster.timezone,
        "start": roster.start.isoformat(),
        "days": roster.days,
        "coverage_weight": roster.coverage_weight,
        "shifts": [{"id": s.code, "name": s.name, "start": _hhmm(s.start), "end": _hhmm(s.end)}
                   for s in shifts],
        "sites": site_docs,
        "demand": [_demand_doc(d) for d in demand],
        "volunteers": volunteer_docs,
        "rules": [_rule_doc(r) for r in rules],
    }
    parse_problem(problem)  # the stored data must make a valid problem; raise if not
    return problem


def _by_volunteer(rows: Iterable[_Dated]) -> dict[int, list[_Dated]]:
    out: dict[int, list[_Dated]] = {}
    for row in rows:
        out.setdefault(row.volunteer_id, []).append(row)
    return out


def _demand_doc(d: Demand) -> dict[str, Any]:
    doc: dict[str, Any] = {"post": d.post.code, "shift": d.shift.code, "min": d.min,
                           "max": d.max, "requires": dict(d.requires or {}),
                           "dates": None if d.dates is None else list(d.dates)}
    return doc


def _rule_doc(r: Rule) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": r.type, **(r.params or {})}
    if r.weight is not None:
        doc["weight"] = r.weight
    if r.applies_to is not None:
        doc["applies_to"] = r.applies_to
    return doc


# -- problem -> database ------------------------------------------------------------------

def load_problem(session: Session, doc: dict[str, Any], *, actor: str,
                 name: str | None = None, reason: str | None = None) -> Roster:
    """Store a `roster-problem/1` document as a new roster; return it.

    The document is validated first (`solver.ProblemError` names the bad place) and
    nothing is written if it is invalid. District data is matched by id (`code`):
    shifts, sites, posts and volunteers that exist are updated, the others created; each
    listed volunteer becomes active and their unavailability and preferences inside the
    period are replaced by the document's. The roster gets its own demand and rule set.
    One audit event records the load.
    """
    problem = parse_problem(doc)
    # New rows are filled in after they are added; flush only when they are complete.
    with session.no_autoflush:
        return _load(session, doc, problem, actor=actor, name=name, reason=reason)


def _load(session: Session, doc: dict[str, Any], problem: Problem, *, actor: str,
          name: str | None, reason: str | None) -> Roster:
    start, days = problem.start, problem.days
    first, last = start, start + dt.timedelta(days=days - 1)
    counts = {"created": dict.fromkeys(("shifts", "sites", "posts", "volunteers"), 0),
              "updated": dict.fromkeys(("shifts", "sites", "posts", "volunteers"), 0)}

    def upsert(model: type[_Coded], kind: str, codes: list[str]) -> dict[str, _Coded]:
        found = {row.code: row for row in session.scalars(
            select(model).where(model.code.in_(codes)))} if codes else {}
        for code in codes:
            if code in found:
                counts["updated"][kind] += 1
            else:
                found[code] = model(code=code)
                session.add(found[code])
                counts["created"][kind] += 1
        return found

    shifts = upsert(ShiftTemplate, "shifts", [s["id"] for s in doc["shifts"]])
    for i, s in enumerate(doc["shifts"]):
        shift_row = shifts[s["id"]]
        shift_row.name, shift_row.start = s.get("name", s["id"]), _time(s["start"])
        shift_row.end, shift_row.position, shift_row.active = _time(s["end"]), i, True

    sites = upsert(Site, "sites", [s["id"] for s in doc.get("sites") or []])
    posts = upsert(Post, "posts", [q["id"] for s in doc.get("sites") or []
                                   for q in s.get("posts") or []])
    for s in doc.get("sites") or []:
        site = sites[s["id"]]
        site.name, site.kind, site.active = s.get("name", s["id"]), s.get("kind", "other"), True
        for j, q in enumerate(s.get("posts") or []):
            post = posts[q["id"]]
            post.site, post.name, post.position, post.active = site, q.get("name", q["id"]), j, True
    session.flush()

    vdocs = doc.get("volunteers") or []
    volunteers = upsert(Volunteer, "volunteers", [v["id"] for v in vdocs])
    for v in vdocs:
        row = volunteers[v["id"]]
        tags = list(dict.fromkeys(v.get("skills") or []))
        row.name, row.unit = v.get("name", v["id"]), v.get("unit", "")
        row.party_member = PARTY_SKILL in tags
        row.skills = [t for t in tags if t != PARTY_SKILL]
        row.max_shifts, row.min_shifts = v.get("max_shifts"), v.get("min_shifts")
        row.sites_restricted = v.get("sites") is not None
        row.allowed_sites = [sites[c] for c in dict.fromkeys(v.get("sites") or [])]
        row.status = "active"
        if v.get("phone"):  # not in the format, but a document may carry it
            row.phone = v["phone"]
    session.flush()

    ids = [volunteers[v["id"]].id for v in vdocs]
    for model in (Unavailability, Preference):
        for chunk in _chunks(ids, 500):
            session.execute(delete(model).where(
                model.volunteer_id.in_(chunk), model.date.between(first, last)))
    existing = {(u.volunteer_id, u.date, u.shift_id) for chunk in _chunks(ids, 500)
                for u in session.scalars(select(Unavailability).where(
                    Unavailability.volunteer_id.in_(chunk)))}
    for v in vdocs:
        row = volunteers[v["id"]]
        for u in v.get("unavailable") or []:
            shift = shifts[u["shift"]] if u.get("shift") is not None else None
            key = (row.id, dt.date.fromisoformat(u["date"]), None if shift is None else shift.id)
            if key in existing:
                continue  # outside the period and already known, or listed twice
            existing.add(key)
            session.add(Unavailability(volunteer_id=row.id, date=key[1], shift=shift))
        for p in v.get("preferences") or []:
            session.add(Preference(
                volunteer_id=row.id, date=dt.date.fromisoformat(p["date"]),
                shift=shifts[p["shift"]] if p.get("shift") is not None else None,
                post=posts[p["post"]] if p.get("post") is not None else None,
                want=bool(p["want"]), weight=p.get("weight", 1)))

    roster_name = name or problem.name
    rule_set = RuleSet(name=roster_name, rules=[
        Rule(position=i, type=r["type"],
             params={k: v for k, v in r.items() if k not in _RULE_KEYS},
             weight=r.get("weight"), applies_to=r.get("applies_to"))
        for i, r in enumerate(doc.get("rules") or [])])
    roster = Roster(name=roster_name, start=start, days=days, timezone=problem.timezone,
                    coverage_weight=problem.coverage_weight, rule_set=rule_set)
    roster.demand = [
        Demand(position=i, post=posts[e["post"]], shift=shifts[e["shift"]],
               min=e["min"], max=e["max"] if e.get("max") is not None else e["min"],
               requires={k: n for k, n in (e.get("requires") or {}).items() if n},
               dates=None if e.get("dates") is None
               else sorted({dt.date.fromisoformat(x).isoformat() for x in e["dates"]}))
        for i, e in enumerate(doc.get("demand") or [])]
    session.add(roster)
    session.flush()
    audit.record(session, actor, "roster.load_problem", "roster", roster.id, after={
        "name": roster.name, "start": roster.start, "days": roster.days,
        "demand": len(roster.demand), "rules": len(rule_set.rules), **counts}, reason=reason)
    return roster


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# -- solution -> database -----------------------------------------------------------------

def store_solution(session: Session, roster_id: int, solution: dict[str, Any], *, actor: str,
                   solve_run_id: int | None = None, note: str | None = None,
                   allow_hard_violations: bool = False,
                   include_volunteers: Iterable[str] = ()) -> RosterVersion:
    """Store a `roster-solution/1` document as the roster's next draft version.

    The assignments are checked against the roster as it stands (`roster_problem`): an
    unknown volunteer, post, shift or date, or — unless `allow_hard_violations` — a broken
    hard rule raises `SolutionError` and nothing is written. Assignments keep the `uid` of
    the same volunteer, date and shift in the published version (or, before the first
    publication, the latest version); a move to another post bumps the `revision`. The
    version and an audit event are written in the caller's transaction.
    `include_volunteers`: codes of volunteers the solution may name whatever their status
    (see `roster_problem`'s `include`).
    """
    include_volunteers = sorted(set(include_volunteers))
    if not isinstance(solution, dict) or solution.get("format", SOLUTION_FORMAT) != SOLUTION_FORMAT:
        raise SolutionError(f"not a {SOLUTION_FORMAT} document")
    if solution.get("status") == "INFEASIBLE":
        raise SolutionError("the solver found no roster (INFEASIBLE); nothing to store")
    roster = _get_roster(session, roster_id, lock=True)  # serialises version numbers
    problem = parse_problem(roster_problem(session, roster_id, include=include_volunteers))
    try:
        pairs = parse_assignments(problem, solution)
    except ProblemError as exc:
        raise SolutionError(str(exc)) from exc
    if not allow_hard_violations:
        hard = check(problem, pairs).hard
        if hard:
            shown = "; ".join(v.message.zh for v in hard[:5])
            raise SolutionError(f"{len(hard)} hard rule violation(s): {shown}")

    volunteers = {v.code: v.id for v in session.scalars(
        select(Volunteer).where((Volunteer.status == "active")
                                | Volunteer.code.in_(include_volunteers)))}
    posts = {p.code: p.id for p in session.scalars(select(Post))}
    shifts = {s.code: s.id for s in session.scalars(select(ShiftTemplate))}

    base = session.scalars(
        select(RosterVersion).where(RosterVersion.roster_id == roster.id)
        .order_by((RosterVersion.state == "published").desc(), RosterVersion.number.desc())
        .limit(1)).one_or_none()
    previous: dict[tuple[int, dt.date, int], Assignment] = {}
    if base is not None:
        previous = {(a.volunteer_id, a.date, a.shift_id): a for a in session.scalars(
            select(Assignment).where(Assignment.version_id == base.id))}

    number = (session.scalar(select(func.max(RosterVersion.number))
                             .where(RosterVersion.roster_id == roster.id)) or 0) + 1
    version = RosterVersion(
        roster_id=roster.id, number=number, state="draft", created_by=actor,
        solve_run_id=solve_run_id, solver_status=solution.get("status"),
        objective=solution.get("objective"), bound=solution.get("bound"),
        unmet=list(solution.get("unmet") or []), penalties=list(solution.get("penalties") or []),
        note=note)
    session.add(version)
    session.flush()

    rows = []
    for a in solution["assignments"]:
        key = (volunteers[a["volunteer"]], dt.date.fromisoformat(a["date"]), shifts[a["shift"]])
        post_id = posts[a["post"]]
        before = previous.get(key)
        if before is None:
            uid, revision = None, 1
        else:
            uid = before.uid
            revision = before.revision + (before.post_id != post_id)
        row = Assignment(version_id=version.id, volunteer_id=key[0], date=key[1],
                         shift_id=key[2], post_id=post_id, revision=revision)
        if uid is not None:
            row.uid = uid
        rows.append(row)
    session.add_all(rows)
    session.flush()
    audit.record(session, actor, "roster_version.create", "roster_version", version.id,
                 after={"roster": roster.id, "number": number, "state": "draft",
                        "assignments": len(rows), "status": version.solver_status,
                        "objective": version.objective, "bound": version.bound,
                        "based_on": None if base is None else base.number,
                        "solve_run": solve_run_id},
                 reason=note)
    return version


def version_assignments(session: Session, version_id: int) -> list[dict[str, str]]:
    """A version's assignments in the solution's shape, sorted by date, shift, post, id."""
    rows = session.execute(
        select(Volunteer.code, Assignment.date, ShiftTemplate.code, Post.code)
        .join(Assignment, Assignment.volunteer_id == Volunteer.id)
        .join(ShiftTemplate, Assignment.shift_id == ShiftTemplate.id)
        .join(Post, Assignment.post_id == Post.id)
        .where(Assignment.version_id == version_id)).all()
    out = [{"volunteer": v, "date": d.isoformat(), "shift": s, "post": p}
           for v, d, s, p in rows]
    out.sort(key=lambda a: (a["date"], a["shift"], a["post"], a["volunteer"]))
    return out


def version_solution(session: Session, version_id: int) -> dict[str, Any]:
    """A stored version as a `roster-solution/1` document (for `python -m solver check`)."""
    version = session.get(RosterVersion, version_id)
    if version is None:
        raise LookupError(f"no roster version {version_id}")
    return {"format": SOLUTION_FORMAT, "status": version.solver_status or "FEASIBLE",
            "objective": version.objective, "bound": version.bound,
            "assignments": version_assignments(session, version_id),
            "unmet": list(version.unmet or []), "penalties": list(version.penalties or [])}
