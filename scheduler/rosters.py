"""Roster services: create a period, generate (background solve), publish, diff.

Services take the acting user as an argument and never look at request state. `publish`
works in the caller's transaction inside a savepoint (the caller commits); `generate`
commits, because the worker must see the run before its job is enqueued.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, UOWTransaction

from scheduler import audit, queues
from scheduler.db import utcnow
from scheduler.jobs import enqueue_run, reconcile_stale_runs
from scheduler.models import (
    ACTIVE_RUN_STATUSES,
    Assignment,
    Post,
    Roster,
    RosterVersion,
    Rule,
    RuleSet,
    ShiftTemplate,
    SolveRun,
    Volunteer,
)
from scheduler.notifications import services as notifications
from solver import scenario
from solver.i18n import Text

#: Default solver time limit of "generate roster" (seconds).
DEFAULT_TIME_LIMIT = 60.0
#: Attempts at creating a run when SQLite reports a concurrent writer.
_BUSY_ATTEMPTS = 5


class PublishConflict(RuntimeError):
    """The published version is not the one the coordinator saw: reload and try again."""

    def __init__(self, roster_id: int, expected: int | None, current: int | None) -> None:
        def name(n: int | None) -> str:
            return "none" if n is None else f"version {n}"

        super().__init__(
            f"roster {roster_id}: expected {name(expected)} to be published, but "
            f"{name(current)} is; reload the roster and publish again")
        self.roster_id, self.expected, self.current = roster_id, expected, current


class VersionStateError(ValueError):
    """Only a draft can be published; published versions are never changed."""


# -- create -------------------------------------------------------------------------------

#: Longest roster period a coordinator can create from the web (days).
MAX_DAYS = 62
#: The rule set of a new period: the standard rules (those of the demo district).
STANDARD_RULES = "standard"


class RosterInputError(ValueError):
    """Bad fields for a new roster; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, Text]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v.en}" for k, v in errors.items()))


def standard_rules() -> list[dict[str, Any]]:
    """A copy of the standard rules (`solver.scenario.RULES`, as in the demo district)."""
    return [dict(rule) for rule in scenario.RULES]


def _rule_docs(session: Session, rules: str | int) -> list[dict[str, Any]] | None:
    if rules == STANDARD_RULES:
        return standard_rules()
    source = session.get(Roster, rules) if isinstance(rules, int) else None
    if source is None:
        return None
    return [{"type": r.type, **(r.params or {}),
             **({} if r.weight is None else {"weight": r.weight}),
             **({} if r.applies_to is None else {"applies_to": r.applies_to})}
            for r in (source.rule_set.rules if source.rule_set else [])]


def _standard_shifts(session: Session, docs: list[dict[str, Any]]) -> list[ShiftTemplate]:
    """Create the standard shifts the rules name and the district lacks (all three on an
    empty database), so the new period makes a valid problem from the start."""
    codes = set(session.scalars(select(ShiftTemplate.code)))
    named = {d["shift"] for d in docs if isinstance(d.get("shift"), str)}
    wanted = [s for s in scenario.SHIFTS
              if s["id"] not in codes and (not codes or s["id"] in named)]
    position = len(codes)
    created = []
    for i, s in enumerate(wanted):
        start, end = (dt.time.fromisoformat(s[k]) for k in ("start", "end"))
        created.append(ShiftTemplate(code=s["id"], name=s["name"], start=start, end=end,
                                     position=position + i, active=True))
    session.add_all(created)
    return created


def create_roster(session: Session, actor: str, *, name: str, start: dt.date | None,
                  days: int | None, rules: str | int = STANDARD_RULES) -> Roster:
    """Create a roster period (排班周期) with its own rule set; return it.

    `rules` is `STANDARD_RULES` (a copy of the standard rules) or the id of a roster
    whose rules are copied. Every bad field is reported at once by `RosterInputError`
    (name: 1–200 characters; start: a date; days: 1–`MAX_DAYS`) and nothing is written.
    Standard shifts named by the rules (all three on an empty database) are created if
    missing. One audit event records the roster; the caller commits.
    """
    errors: dict[str, Text] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = Text("请填写名称", "enter a name")
    elif len(name) > 200:
        errors["name"] = Text("名称最多 200 个字", "a name has at most 200 characters")
    if start is None:
        errors["start"] = Text("请填写开始日期", "enter the first date")
    if days is None or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        errors["days"] = Text(f"天数须为 1 到 {MAX_DAYS} 之间的整数",
                              f"days must be a whole number from 1 to {MAX_DAYS}")
    docs = _rule_docs(session, rules)
    if docs is None:
        errors["rules"] = Text(f"没有可复制规则的排班 {rules!r}", f"no roster {rules!r} to copy")
    if errors:
        raise RosterInputError(errors)
    assert start is not None and days is not None and docs is not None
    with session.begin_nested():
        shifts = _standard_shifts(session, docs)
        rule_set = RuleSet(name=name, rules=[
            Rule(position=i, type=d["type"],
                 params={k: v for k, v in d.items() if k not in ("type", "weight", "applies_to")},
                 weight=d.get("weight"), applies_to=d.get("applies_to"))
            for i, d in enumerate(docs)])
        roster = Roster(name=name, start=start, days=days, rule_set=rule_set,
                        coverage_weight=scenario.COVERAGE_WEIGHT)
        session.add(roster)
        session.flush()
        audit.record(session, actor, "roster.create", "roster", roster.id, after={
            "name": name, "start": start, "days": days, "rules": len(docs),
            "rules_from": rules, "shifts_created": [s.code for s in shifts]})
    return roster


# -- generate -----------------------------------------------------------------------------

def active_run(session: Session, roster_id: int) -> SolveRun | None:
    """The queued or running solve of the roster, if any (not counting its parts)."""
    return session.scalars(select(SolveRun).where(
        SolveRun.roster_id == roster_id, SolveRun.status.in_(ACTIVE_RUN_STATUSES),
        SolveRun.parent_id.is_(None))
        .order_by(SolveRun.id.desc()).limit(1)).one_or_none()


def generate(session: Session, roster_id: int, actor: str,
             time_limit: float = DEFAULT_TIME_LIMIT, *, seed: int = 0,
             queue: str = queues.SOLVE) -> SolveRun:
    """Start a background solve of the roster ("generate roster") and return its run.

    If a solve of the roster is already queued or running, that run is returned and
    nothing new is enqueued (a run whose worker is gone is failed first, see
    `scheduler.jobs.reconcile_stale_runs`) (the database allows one active run per roster, so two
    simultaneous requests get the same run). Otherwise a `SolveRun` is created with an
    audit row, committed, and `scheduler.jobs.solve_roster(run_id)` enqueued. Commits the
    session. Raises `LookupError` for an unknown roster and `queues.QueueError` (with the
    run marked failed) if the queue cannot take the job. Pass a plain session (not one
    inside ``session.begin()``, e.g. not `scheduler.db.session_scope`): it commits.
    """
    if time_limit <= 0:
        raise ValueError("time_limit must be positive")
    for attempt in range(_BUSY_ATTEMPTS):
        try:
            run, created = _create_run(session, roster_id, actor, time_limit, seed)
            session.commit()
            break
        except OperationalError as exc:  # SQLite: another writer got in first
            session.rollback()
            if "locked" not in str(exc) or attempt == _BUSY_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    if created:
        enqueue_run(session, run, queue=queue)
    return run


def _create_run(session: Session, roster_id: int, actor: str, time_limit: float,
                seed: int) -> tuple[SolveRun, bool]:
    if session.get(Roster, roster_id) is None:
        raise LookupError(f"no roster {roster_id}")
    # A run whose worker died must not block the roster until the next periodic pass.
    reconcile_stale_runs(session, roster_id=roster_id)
    existing = active_run(session, roster_id)
    if existing is not None:
        return existing, False
    run = SolveRun(roster_id=roster_id, status="queued", requested_by=actor,
                   time_limit=float(time_limit), seed=seed, created_at=utcnow())
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
            audit.record(session, actor, "solve_run.create", "solve_run", run.id,
                         after={"roster": roster_id, "status": "queued",
                                "time_limit": run.time_limit, "seed": seed})
    except IntegrityError:
        # Another request created the active run between our look and our insert.
        existing = active_run(session, roster_id)
        if existing is None:
            raise
        return existing, False
    return run, True


# -- publish ------------------------------------------------------------------------------

def published_version(session: Session, roster_id: int, *,
                      lock: bool = False) -> RosterVersion | None:
    query = select(RosterVersion).where(RosterVersion.roster_id == roster_id,
                                        RosterVersion.state == "published")
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def publish(session: Session, roster_id: int, version_number: int,
            expected_current: int | None, actor: str, *,
            reason: str | None = None) -> RosterVersion:
    """Publish draft `version_number` of the roster; return it.

    Compare-and-set: `expected_current` is the number of the version the coordinator saw
    published (None: none yet); if another is published now, `PublishConflict` is raised
    and nothing changes. The previously published version becomes superseded; no
    version's assignments are touched. Audit rows record each state change. Everything
    happens in a savepoint of the caller's transaction: an error anywhere leaves the
    previous state as it was; the caller commits.
    """
    with session.begin_nested():
        roster = session.scalars(select(Roster).where(Roster.id == roster_id)
                                 .with_for_update()).one_or_none()  # serialises publishing
        if roster is None:
            raise LookupError(f"no roster {roster_id}")
        current = published_version(session, roster_id, lock=True)
        current_number = None if current is None else current.number
        if current_number != expected_current:
            raise PublishConflict(roster_id, expected_current, current_number)
        target = session.scalars(select(RosterVersion).where(
            RosterVersion.roster_id == roster_id, RosterVersion.number == version_number)
            .with_for_update()).one_or_none()
        if target is None:
            raise LookupError(f"roster {roster_id} has no version {version_number}")
        if target.state != "draft":
            raise VersionStateError(
                f"version {version_number} is {target.state}; only a draft can be published")

        now = utcnow()
        if current is not None:
            current.state = "superseded"
            session.flush()  # at most one published version per roster, at every moment
            audit.record(session, actor, "roster_version.supersede", "roster_version",
                         current.id, before={"roster": roster_id, "number": current.number,
                                             "state": "published"},
                         after={"state": "superseded", "by": version_number}, reason=reason)
        target.state, target.published_at, target.published_by = "published", now, actor
        session.flush()
        audit.record(session, actor, "roster_version.publish", "roster_version", target.id,
                     before={"roster": roster_id, "number": version_number, "state": "draft"},
                     after={"state": "published", "published_at": now,
                            "previous": current_number}, reason=reason)
        if roster.status != "published":
            audit.record(session, actor, "roster.update", "roster", roster.id,
                         before={"status": roster.status}, after={"status": "published"},
                         reason=reason)
            roster.status = "published"
        session.flush()
        if current is not None:  # the first publication is no change to anyone's shifts
            notifications.notify_changes(session, diff(session, current.id, target.id),
                                         target, actor)
    return target


@event.listens_for(Session, "before_flush")
def _published_assignments_are_frozen(session: Session, _ctx: UOWTransaction,
                                      _instances: Any) -> None:
    """Refuse any change to an assignment of a published or superseded version."""
    for obj in session.dirty:
        if isinstance(obj, Assignment) and session.is_modified(obj):
            version = obj.version
            if version is not None and version.state != "draft":
                raise VersionStateError(
                    f"assignment {obj.uid} belongs to {version.state} version "
                    f"{version.number}; published versions are never changed")


# -- diff ---------------------------------------------------------------------------------

@dataclass
class VersionDiff:
    """What changes from version `a` to version `b`, by assignment identity (`uid`)."""

    a: int
    b: int
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    moved: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.moved)


def _rows(session: Session, version_id: int) -> dict[str, dict[str, Any]]:
    rows = session.execute(
        select(Assignment.uid, Assignment.revision, Volunteer.code, Volunteer.name,
               Assignment.date, ShiftTemplate.code, Post.code)
        .join(Volunteer, Assignment.volunteer_id == Volunteer.id)
        .join(ShiftTemplate, Assignment.shift_id == ShiftTemplate.id)
        .join(Post, Assignment.post_id == Post.id)
        .where(Assignment.version_id == version_id)).all()
    return {uid: {"uid": uid, "revision": rev, "volunteer": v, "name": name,
                  "date": d.isoformat(), "shift": s, "post": p}
            for uid, rev, v, name, d, s, p in rows}


def _key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    return (row["date"], row["shift"], row.get("post") or row.get("to_post", ""),
            row["volunteer"])


def diff(session: Session, version_a: int, version_b: int) -> VersionDiff:
    """Compare two versions (by id): assignments added, removed and moved between them.

    Assignments are matched by `uid`: one in `b` only is added, one in `a` only removed,
    one in both at another post (or date or shift) moved. Any two versions can be
    compared, of the same roster or not.
    """
    for version_id in (version_a, version_b):
        if session.get(RosterVersion, version_id) is None:
            raise LookupError(f"no roster version {version_id}")
    old, new = _rows(session, version_a), _rows(session, version_b)
    out = VersionDiff(version_a, version_b)
    out.added = sorted((new[u] for u in new.keys() - old.keys()), key=_key)
    out.removed = sorted((old[u] for u in old.keys() - new.keys()), key=_key)
    for uid in old.keys() & new.keys():
        before, after = old[uid], new[uid]
        if (before["post"], before["date"], before["shift"]) != (
                after["post"], after["date"], after["shift"]):
            out.moved.append({
                "uid": uid, "volunteer": after["volunteer"], "name": after["name"],
                "date": after["date"], "shift": after["shift"],
                "from_post": before["post"], "to_post": after["post"],
                "from_date": before["date"], "from_shift": before["shift"],
                "from_revision": before["revision"], "to_revision": after["revision"]})
    out.moved.sort(key=_key)
    return out


__all__ = ["DEFAULT_TIME_LIMIT", "MAX_DAYS", "STANDARD_RULES", "PublishConflict",
           "RosterInputError", "VersionDiff", "VersionStateError", "active_run",
           "create_roster", "diff", "generate", "publish", "published_version",
           "standard_rules"]
