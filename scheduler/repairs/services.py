"""Repair services: an absence → a proposal (background job) → accept or reject; manual edits.

- `request_repair(session, roster_id, absence_id, actor)`: a `RepairProposal` against the
  roster's published version, committed, and the job `scheduler.repairs.jobs.repair_roster`
  enqueued (it commits, like `scheduler.rosters.generate`);
- `accept(session, proposal_id, actor, expected_published_number)`: the repaired roster
  stored (`store_solution`: uids and revisions carry over) and published with the
  compare-and-set, the proposal accepted, one audit row per change (who replaced whom) —
  in a savepoint of the caller's transaction; `StaleProposal` when the published version
  moved on since the proposal was made;
- `reject`;
- `preview_change` / `apply_change`: one manual edit (add, remove, move) checked by the
  rule catalogue (`solver.check_change`): hard breaches refuse it, soft ones need
  `confirm_soft`; applied as a new published version.

Granularity: absences are instants (`starts_at`, `ends_at`); rosters are dates × shifts.
Every recorded absence becomes `unavailable` entries of the shifts (date, shift) whose
interval meets its window, so an absence from the night shift leaves the same day's
morning shift with its volunteer. The past is frozen by date (`solver.repair`'s
`frozen_before`): the later of the absence's first local date and today; shifts of
earlier dates never change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import solver
from scheduler import audit, queues
from scheduler.absences.models import Absence
from scheduler.db import utcnow
from scheduler.localtime import day_interval, local_date, overlaps, shift_interval
from scheduler.models import Assignment, Roster, RosterVersion, ShiftTemplate, Volunteer
from scheduler.problems import roster_problem, store_solution, version_solution
from scheduler.repairs.models import ACTIVE_PROPOSAL_STATUSES, RepairProposal
from scheduler.rosters import PublishConflict, publish, published_version
from solver.i18n import Text
from solver.rules import instantiate
from solver.solve import solution_document

#: Solver time limit of a repair (seconds): small neighbourhoods close in well under it.
DEFAULT_TIME_LIMIT = 10.0
SOLUTION_FORMAT = "roster-solution/1"


class RepairError(ValueError):
    """Bad input or a state that forbids the action; `field` names what, `message` zh/en."""

    def __init__(self, field: str, message: Text) -> None:
        super().__init__(f"{field}：{message.zh}（{message.en}）")
        self.field, self.message = field, message


class StaleProposal(RuntimeError):
    """The roster moved on since the proposal was made; the proposal is marked stale."""

    def __init__(self, proposal_id: int, base: int, current: int | None, why: str = "") -> None:
        now = "none" if current is None else f"version {current}"
        super().__init__(why or f"repair proposal {proposal_id} was made for published version "
                         f"{base}, but {now} is published now; request a new proposal")
        self.proposal_id, self.base, self.current = proposal_id, base, current


@dataclass
class ChangePreview:
    """What a manual edit newly breaks: `hard` blocks it, `soft` needs a confirmation."""

    change: dict[str, Any]
    base_number: int
    violations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def hard(self) -> list[dict[str, Any]]:
        return [v for v in self.violations if v["hard"]]

    @property
    def soft(self) -> list[dict[str, Any]]:
        return [v for v in self.violations if not v["hard"]]


class ChangeRefused(ValueError):
    """A manual edit that breaks a hard rule (`preview.hard` says which and why)."""

    def __init__(self, preview: ChangePreview) -> None:
        super().__init__("; ".join(f"[{v['rule']}] {v['message']}" for v in preview.hard))
        self.preview = preview


class NeedsConfirmation(ValueError):
    """A manual edit with soft breaches, not confirmed (`preview.soft` lists them)."""

    def __init__(self, preview: ChangePreview) -> None:
        super().__init__("; ".join(f"[{v['rule']}] {v['message']}" for v in preview.soft))
        self.preview = preview


# -- the problem a repair works on --------------------------------------------------------

def repair_problem(session: Session, roster_id: int,
                   version: RosterVersion) -> tuple[dict[str, Any], dict[str, Any]]:
    """The roster's problem with every recorded absence as unavailable shifts, and
    `version` as a solution document (its volunteers listed whatever their status)."""
    solution = version_solution(session, version.id)
    names = {a["volunteer"] for a in solution["assignments"]}
    problem = roster_problem(session, roster_id, include=names)
    _mark_absences(session, problem)
    return problem, solution


def _mark_absences(session: Session, problem: dict[str, Any]) -> None:
    first = dt.date.fromisoformat(problem["start"])
    days = [first + dt.timedelta(days=i) for i in range(problem["days"])]
    period = (day_interval(days[0])[0], day_interval(days[-1])[1])
    rows = session.execute(
        select(Volunteer.code, Absence.starts_at, Absence.ends_at)
        .join(Absence, Absence.volunteer_id == Volunteer.id)
        .where(Absence.starts_at < period[1], Absence.ends_at > period[0])).all()
    if not rows:
        return
    shifts = [(s["id"], dt.time.fromisoformat(s["start"]), dt.time.fromisoformat(s["end"]))
              for s in problem["shifts"]]
    by_code = {v["id"]: v for v in problem["volunteers"]}
    for code, starts, ends in rows:
        vol = by_code.get(code)
        if vol is None:
            continue
        have = {(u["date"], u.get("shift")) for u in vol.get("unavailable") or []}
        extra = vol.setdefault("unavailable", [])
        for day in days:
            for shift, start, end in shifts:
                key = (day.isoformat(), shift)
                if key not in have and (day.isoformat(), None) not in have and overlaps(
                        shift_interval(day, start, end), (starts, ends)):
                    have.add(key)
                    extra.append({"date": key[0], "shift": shift})


def _today() -> dt.date:
    return local_date(utcnow())


# -- request ------------------------------------------------------------------------------

def request_repair(session: Session, roster_id: int, absence_id: int, actor: str, *,
                   time_limit: float = DEFAULT_TIME_LIMIT) -> RepairProposal:
    """Create a repair proposal for the absence on the roster's published version and
    enqueue its job; return it. Commits (the worker must see the row).

    An identical proposal still queued or running (same roster, absence and published
    version) is returned instead of a second one. `RepairError` (nothing written): unknown
    roster or absence, no published version, an absence outside the roster's period.
    `queues.QueueError` if the job cannot be enqueued (the proposal is then failed).
    """
    roster = session.get(Roster, roster_id)
    if roster is None:
        raise RepairError("roster", Text(f"没有排班 {roster_id}", f"no roster {roster_id}"))
    absence = session.get(Absence, absence_id)
    if absence is None:
        raise RepairError("absence", Text(f"没有缺勤登记 {absence_id}", f"no absence {absence_id}"))
    current = published_version(session, roster_id)
    if current is None:
        raise RepairError("roster", Text(f"排班“{roster.name}”还没有发布的版本",
                                         f"roster {roster_id} has no published version"))
    period = (day_interval(roster.start)[0], day_interval(roster.end)[1])
    if not overlaps(period, (absence.starts_at, absence.ends_at)):
        raise RepairError("absence", Text("缺勤时段不在该排班周期内",
                                          "the absence is outside the roster's period"))
    existing = session.scalars(select(RepairProposal).where(
        RepairProposal.roster_id == roster_id, RepairProposal.absence_id == absence_id,
        RepairProposal.base_number == current.number,
        RepairProposal.status.in_(ACTIVE_PROPOSAL_STATUSES))).first()
    if existing is not None:
        return existing
    proposal = RepairProposal(
        roster_id=roster_id, base_number=current.number, absence_id=absence.id,
        volunteer_id=absence.volunteer_id, starts_at=absence.starts_at,
        ends_at=absence.ends_at, status="queued", time_limit=float(time_limit),
        job_id=queues.new_job_id(), created_by=actor, created_at=utcnow())
    session.add(proposal)
    session.flush()
    audit.record(session, actor, "repair_proposal.create", "repair_proposal", proposal.id,
                 after={"roster": roster_id, "base": current.number, "absence": absence.id,
                        "volunteer": absence.volunteer_id, "status": "queued"})
    session.commit()
    try:
        queues.enqueue("scheduler.repairs.jobs.repair_roster", proposal.id,
                       queue=queues.SOLVE, time_limit=proposal.time_limit,
                       job_id=proposal.job_id, meta={"proposal": proposal.id,
                                                     "roster": roster_id},
                       description=f"repair roster {roster_id} (proposal {proposal.id})")
    except queues.QueueError as exc:
        proposal.status, proposal.error, proposal.finished_at = "failed", str(exc), utcnow()
        audit.record(session, "system", "repair_proposal.fail", "repair_proposal",
                     proposal.id, before={"status": "queued"},
                     after={"status": "failed", "error": str(exc)})
        session.commit()
        raise
    return proposal


def compute_repair(session: Session, proposal: RepairProposal) -> dict[str, Any]:
    """The repaired roster of a proposal (reads only): `solver.repair` on the published
    version, every recorded absence applied, the past (before the later of the absence's
    first date and today) frozen. `StaleProposal` if the published version moved on."""
    current = published_version(session, proposal.roster_id)
    number = None if current is None else current.number
    if current is None or number != proposal.base_number:
        raise StaleProposal(proposal.id, proposal.base_number, number)
    roster = proposal.roster
    frozen = max(local_date(proposal.starts_at), _today(), roster.start)
    if frozen > roster.end:
        raise RepairError("absence", Text("缺勤时段已过去或不在排班周期内，无需调整",
                                          "the absence is past or outside the roster's period"))
    problem, solution = repair_problem(session, proposal.roster_id, current)
    result = solver.repair(problem, solution, [], frozen_before=frozen.isoformat(),
                           time_limit=proposal.time_limit, workers=1)
    vol = proposal.volunteer
    result["repair"]["absences"] = [{
        "volunteer": vol.code, "name": vol.name,
        "starts_at": proposal.starts_at.isoformat(), "ends_at": proposal.ends_at.isoformat()}]
    result["base"] = proposal.base_number
    return result


# -- accept / reject ----------------------------------------------------------------------

def _lock(session: Session, proposal_id: int) -> RepairProposal:
    proposal = session.scalars(select(RepairProposal).where(RepairProposal.id == proposal_id)
                               .with_for_update()).one_or_none()
    if proposal is None:
        raise LookupError(f"no repair proposal {proposal_id}")
    return proposal


def _mark_stale(session: Session, proposal: RepairProposal, actor: str,
                exc: StaleProposal) -> None:
    audit.record(session, actor, "repair_proposal.stale", "repair_proposal", proposal.id,
                 before={"status": proposal.status},
                 after={"status": "stale", "current": exc.current}, reason=str(exc))
    proposal.status, proposal.error = "stale", str(exc)
    session.flush()


def accept(session: Session, proposal_id: int, actor: str,
           expected_published_number: int | None) -> RosterVersion:
    """Publish the proposal's repaired roster as the roster's next version; return it.

    Checks first, writing nothing to the roster: the proposal must be ready; if the
    published version is no longer the one it was made from, or the district changed so
    that the repair now breaks a hard rule, it is marked stale (in the caller's
    transaction: commit to keep the mark) and `StaleProposal` raised; if
    `expected_published_number` (what the secretary saw) differs, `PublishConflict`.
    Then, in a savepoint: `store_solution` (uids and revisions carry over), `publish`
    with the compare-and-set, the proposal accepted, one audit row per change. The caller
    commits.
    """
    proposal = _lock(session, proposal_id)
    if proposal.status != "ready":
        raise RepairError("status", Text(f"调整方案状态为 {proposal.status}，不能采纳",
                                         f"the proposal is {proposal.status}; only a ready "
                                         "one can be accepted"))
    current = published_version(session, proposal.roster_id, lock=True)
    number = None if current is None else current.number
    if current is None or number != proposal.base_number:
        exc = StaleProposal(proposal.id, proposal.base_number, number)
        _mark_stale(session, proposal, actor, exc)
        raise exc
    if expected_published_number != number:
        raise PublishConflict(proposal.roster_id, expected_published_number, number)
    result = dict(proposal.result or {})
    changes = list(result.get("changes") or [])
    if not changes:
        raise RepairError("changes", Text("调整方案没有任何改动，无需采纳",
                                          "the proposal changes nothing"))
    problem, old = repair_problem(session, proposal.roster_id, current)
    parsed = solver.parse_problem(problem)
    losers = {c["volunteer"] for c in changes if c["action"] == "removed"}
    try:
        pairs = solver.parse_assignments(parsed, result)
    except solver.ProblemError as err:
        exc = StaleProposal(proposal.id, proposal.base_number, number,
                            f"the district changed since the proposal was made: {err}")
        _mark_stale(session, proposal, actor, exc)
        raise exc from err
    # The absence excuses a minimum number of shifts of those who lost theirs (as in
    # solver.repair); anything else hard means the district changed since the proposal.
    broken = [v for v in solver.check(parsed, pairs).hard
              if not (v.rule == "min_shifts" and v.volunteer in losers)]
    if broken:
        exc = StaleProposal(proposal.id, proposal.base_number, number,
                            "the repaired roster now breaks a hard rule: "
                            + broken[0].message.en)
        _mark_stale(session, proposal, actor, exc)
        raise exc
    names = {a["volunteer"] for a in old["assignments"]}
    with session.begin_nested():
        version = store_solution(session, proposal.roster_id, result, actor=actor,
                                 note=f"调整方案 #{proposal.id}", allow_hard_violations=True,
                                 include_volunteers=names)
        publish(session, proposal.roster_id, version.number, number, actor,
                reason=f"repair proposal {proposal.id}")
        _audit_changes(session, actor, proposal, current, version, changes)
        now = utcnow()
        audit.record(session, actor, "repair_proposal.accept", "repair_proposal", proposal.id,
                     before={"status": "ready"},
                     after={"status": "accepted", "version": version.number,
                            "changes": len(changes),
                            "uncovered": len(proposal.uncovered)})
        proposal.status, proposal.accepted_number = "accepted", version.number
        proposal.decided_by, proposal.decided_at = actor, now
        session.flush()
    return version


def _uids(session: Session, version_id: int) -> dict[tuple[str, str, str], tuple[str, int]]:
    rows = session.execute(
        select(Volunteer.code, Assignment.date, ShiftTemplate.code, Assignment.uid,
               Assignment.revision)
        .join(Assignment, Assignment.volunteer_id == Volunteer.id)
        .join(ShiftTemplate, Assignment.shift_id == ShiftTemplate.id)
        .where(Assignment.version_id == version_id)).all()
    return {(v, d.isoformat(), s): (uid, rev) for v, d, s, uid, rev in rows}


def _audit_changes(session: Session, actor: str, proposal: RepairProposal,
                   old: RosterVersion, new: RosterVersion,
                   changes: list[dict[str, Any]]) -> None:
    """One audit row per change: the assignment (by uid) and whom it replaces."""
    before, after = _uids(session, old.id), _uids(session, new.id)
    for c in changes:
        key = (c["volunteer"], c["date"], c["shift"])
        found = before.get(key) if c["action"] == "removed" else after.get(key)
        uid = None if found is None else found[0]
        place = {"volunteer": c["volunteer"], "date": c["date"], "shift": c["shift"],
                 "post": c["post"]}
        audit.record(session, actor, f"assignment.repair_{c['action']}", "assignment", uid,
                     before=c.get("from") if c["action"] == "moved" else (
                         place if c["action"] == "removed" else None),
                     after=None if c["action"] == "removed" else {
                         **place, "replaces": c.get("replaces"),
                         "covers_for": c.get("covers_for"), "version": new.number,
                         "proposal": proposal.id},
                     reason=c.get("reason"))


def reject(session: Session, proposal_id: int, actor: str,
           reason: str | None = None) -> RepairProposal:
    """Reject a proposal that is not accepted (nothing else changes); the caller commits."""
    proposal = _lock(session, proposal_id)
    if proposal.status in ("accepted", "rejected"):
        raise RepairError("status", Text(f"调整方案已{'采纳' if proposal.status == 'accepted' else '拒绝'}",
                                         f"the proposal is already {proposal.status}"))
    audit.record(session, actor, "repair_proposal.reject", "repair_proposal", proposal.id,
                 before={"status": proposal.status}, after={"status": "rejected"},
                 reason=reason)
    proposal.status, proposal.decided_by, proposal.decided_at = "rejected", actor, utcnow()
    session.flush()
    return proposal


# -- manual edits -------------------------------------------------------------------------

def _check_dates(change: dict[str, Any]) -> None:
    today = _today()
    for where, part in (("change", change), ("change.from", change.get("from"))):
        if not isinstance(part, dict) or not isinstance(part.get("date"), str):
            continue
        try:
            day = dt.date.fromisoformat(part["date"])
        except ValueError:
            raise RepairError(f"{where}.date", Text(f"日期无效：{part['date']!r}",
                                                    f"invalid date {part['date']!r}")) from None
        if day < today:
            raise RepairError(f"{where}.date", Text(f"{day} 已过去，不能修改",
                                                    f"{day} is past and cannot change"))


def preview_change(session: Session, roster_id: int, change: dict[str, Any]) -> ChangePreview:
    """Every rule the manual edit newly breaks on the published version (recorded absences
    count as unavailability). `RepairError` names a malformed change (`change.post`:
    unknown post …), a past date, or a roster without a published version."""
    current = published_version(session, roster_id)
    if current is None:
        raise RepairError("roster", Text("该排班还没有发布的版本",
                                         f"roster {roster_id} has no published version"))
    _check_dates(change)
    problem, solution = repair_problem(session, roster_id, current)
    try:
        violations = solver.check_change(problem, solution, change)
    except solver.ProblemError as exc:
        text = str(exc).split(": ", 1)[-1]
        raise RepairError(exc.path or "change", Text(text, text)) from exc
    return ChangePreview(dict(change), current.number, violations)


def _changed(solution: dict[str, Any], change: dict[str, Any]) -> list[dict[str, str]]:
    def place(d: dict[str, Any], volunteer: str) -> dict[str, str]:
        return {"volunteer": volunteer, "date": d["date"], "shift": d["shift"],
                "post": d["post"]}

    out = [dict(a) for a in solution["assignments"]]
    gone = None
    if change["action"] == "removed":
        gone = place(change, change["volunteer"])
    elif change["action"] == "moved":
        gone = place(change["from"], change["volunteer"])
    if gone is not None:
        out.remove(gone)
    if change["action"] != "removed":
        out.append(place(change, change["volunteer"]))
    return out


def apply_change(session: Session, roster_id: int, change: dict[str, Any], actor: str,
                 expected_published_number: int | None, *,
                 confirm_soft: bool = False) -> RosterVersion:
    """Apply one manual edit as a new published version; return it.

    Refused with nothing written: `PublishConflict` if the published version is not
    `expected_published_number`; `RepairError` for a malformed change; `ChangeRefused`
    if it breaks a hard rule; `NeedsConfirmation` if it breaks soft rules and
    `confirm_soft` is false. Otherwise, in a savepoint: a new version (uids carry over),
    published with the compare-and-set, and an audit row with the change and the soft
    breaches accepted. The caller commits.
    """
    with session.begin_nested():
        current = published_version(session, roster_id, lock=True)
        number = None if current is None else current.number
        if number != expected_published_number:
            raise PublishConflict(roster_id, expected_published_number, number)
        preview = preview_change(session, roster_id, change)
        if preview.hard:
            raise ChangeRefused(preview)
        if preview.soft and not confirm_soft:
            raise NeedsConfirmation(preview)
        assert current is not None
        problem, solution = repair_problem(session, roster_id, current)
        assignments = _changed(solution, change)
        doc = _document(problem, assignments, solution)
        names = {a["volunteer"] for a in assignments} | {
            a["volunteer"] for a in solution["assignments"]}
        version = store_solution(session, roster_id, doc, actor=actor,
                                 note=f"手工调整 {change['action']} {change['volunteer']}",
                                 allow_hard_violations=True, include_volunteers=names)
        publish(session, roster_id, version.number, number, actor, reason="manual change")
        key = (change["volunteer"], change["date"], change["shift"])
        found = _uids(session, version.id).get(key) if change["action"] != "removed" else \
            _uids(session, current.id).get(key)
        audit.record(session, actor, f"assignment.manual_{change['action']}", "assignment",
                     None if found is None else found[0],
                     before={"version": number, "from": change.get("from")},
                     after={"version": version.number, **{k: change.get(k) for k in (
                         "action", "volunteer", "date", "shift", "post")},
                            "soft_breaches": [
                                {"rule": v["rule"], "cost_change": v["cost_change"],
                                 "message": v["message"]} for v in preview.soft]})
    return version


def _document(problem: dict[str, Any], assignments: list[dict[str, str]],
              old: dict[str, Any]) -> dict[str, Any]:
    """The edited roster as a solution document, its costs and unmet reasons recomputed."""
    parsed = solver.parse_problem(problem)
    pairs = solver.parse_assignments(parsed, {"assignments": assignments})
    rules = instantiate(parsed)
    report = solver.check(parsed, pairs, rules)
    bound = old_bound if isinstance(old_bound := old.get("bound"), int) else 0
    if report.ok:
        return solution_document(parsed, rules, pairs, "FEASIBLE",
                                 min(bound, report.objective), 0.0, report)
    # A hard breach the edit did not make (someone absent still on the roster, waiting
    # for a repair): keep the old unmet list, recompute the costs.
    return {"format": SOLUTION_FORMAT, "status": "FEASIBLE", "objective": report.objective,
            "bound": min(bound, report.objective), "assignments": assignments,
            "unmet": list(old.get("unmet") or []), "penalties": report.penalties()}


__all__ = ["DEFAULT_TIME_LIMIT", "ChangePreview", "ChangeRefused", "NeedsConfirmation",
           "RepairError", "StaleProposal", "accept", "apply_change", "compute_repair",
           "preview_change", "reject", "repair_problem", "request_repair"]
