"""Absence services: record an absence, list what it touches, keep the status flag true.

`record_absence` is what a secretary does when a volunteer calls in sick: it stores the
absence, answers at once with the volunteer's published assignments in the window (what
the repair, `solver.repair`, will have to re-cover), returns their unstarted tasks to the
dispatch queue, and audits it all in the caller's transaction (the caller commits).

The volunteer's `status` becomes ``absent`` only while an absence covers *now*, and
`refresh_statuses` turns it back when none does. The flag is a convenience for lists
and for `scheduler.problems` (which leaves non-active volunteers out of a solve); every
time-aware decision (dispatch eligibility, the repair) reads the absences themselves, so
an absence next week never hides the volunteer from this week's roster.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.absences.models import ABSENCE_REASONS, Absence
from scheduler.db import utcnow
from scheduler.dispatch.models import Task
from scheduler.dispatch.services import SYSTEM, return_tasks_of_absent
from scheduler.localtime import day_interval, overlaps, shift_interval
from scheduler.models import (
    Assignment,
    Post,
    Roster,
    RosterVersion,
    ShiftTemplate,
    Site,
    Volunteer,
)
from solver.i18n import Text

#: Volunteer statuses an absence may be recorded for (a second absence extends a first).
RECORDABLE_STATUSES = ("active", "absent")


class AbsenceError(ValueError):
    """Bad absence input; `field` names the field, `message` says what is wrong in zh/en."""

    def __init__(self, field: str, message: Text) -> None:
        super().__init__(f"{field}：{message.zh}（{message.en}）")
        self.field, self.message = field, message


@dataclass(frozen=True)
class AffectedAssignment:
    """A published assignment inside an absence: the gap the repair must fill."""

    uid: str
    assignment_id: int
    roster_id: int
    version: int
    date: dt.date
    shift: str
    post: str
    site: str
    begins: dt.datetime
    ends: dt.datetime


@dataclass
class AbsenceResult:
    absence: Absence
    affected: list[AffectedAssignment] = field(default_factory=list)
    returned_tasks: list[Task] = field(default_factory=list)
    status_before: str = "active"
    status_after: str = "active"


def _shift(session: Session, code: str | None, name: str) -> ShiftTemplate | None:
    if code is None:
        return None
    found = session.scalars(select(ShiftTemplate).where(ShiftTemplate.code == code)).one_or_none()
    if found is None:
        raise AbsenceError(name, Text(f"未知班次 {code!r}", f"unknown shift {code!r}"))
    return found


def absence_window(from_date: dt.date, from_shift: ShiftTemplate | None, to_date: dt.date,
                   to_shift: ShiftTemplate | None) -> tuple[dt.datetime, dt.datetime]:
    """[start of from_shift (or from_date), end of to_shift (or to_date)) in UTC."""
    start = (shift_interval(from_date, from_shift.start, from_shift.end)[0] if from_shift
             else day_interval(from_date)[0])
    end = (shift_interval(to_date, to_shift.start, to_shift.end)[1] if to_shift
           else day_interval(to_date)[1])
    return start, end


def affected_assignments(session: Session, volunteer_id: int,
                         window: tuple[dt.datetime, dt.datetime],
                         now: dt.datetime | None = None) -> list[AffectedAssignment]:
    """The volunteer's assignments in published versions that meet `window` and have not
    ended by `now` (None: all of them), in time order. One query."""
    first = window[0].date() - dt.timedelta(days=1)
    last = window[1].date() + dt.timedelta(days=1)
    rows = session.execute(
        select(Assignment.id, Assignment.uid, RosterVersion.roster_id, RosterVersion.number,
               Assignment.date, ShiftTemplate.code, ShiftTemplate.start, ShiftTemplate.end,
               Post.code, Site.name)
        .join(RosterVersion, Assignment.version_id == RosterVersion.id)
        .join(Roster, RosterVersion.roster_id == Roster.id)
        .join(ShiftTemplate, Assignment.shift_id == ShiftTemplate.id)
        .join(Post, Assignment.post_id == Post.id)
        .join(Site, Post.site_id == Site.id)
        .where(Assignment.volunteer_id == volunteer_id, RosterVersion.state == "published",
               Assignment.date.between(first, last))).all()
    out = []
    for aid, uid, roster, number, date, shift, s, e, post, site in rows:
        begins, ends = shift_interval(date, s, e)
        if overlaps((begins, ends), window) and (now is None or ends > now):
            out.append(AffectedAssignment(uid, aid, roster, number, date, shift, post, site,
                                          begins, ends))
    out.sort(key=lambda a: (a.begins, a.roster_id, a.post))
    return out


def record_absence(session: Session, volunteer_id: int, from_date: dt.date,
                   from_shift: str | None, to_date: dt.date, to_shift: str | None,
                   reason: str, actor: str, *, note: str | None = None,
                   now: dt.datetime | None = None) -> AbsenceResult:
    """Record that a volunteer is absent from (date, shift) to (date, shift).

    Shifts are shift-template codes (``M``, ``N``); None means from the start of
    `from_date` / to the end of `to_date`. Refused with an `AbsenceError` naming the
    field, nothing written: unknown reason, unknown or departed volunteer, unknown shift,
    a window that ends before it starts. Returns the absence, the future assignments
    of published versions in it, the tasks returned to the queue, and the status change.
    """
    now = now or utcnow()
    if reason not in ABSENCE_REASONS:
        raise AbsenceError("reason", Text(f"原因须为 {'/'.join(ABSENCE_REASONS)}",
                                          f"reason must be one of {', '.join(ABSENCE_REASONS)}"))
    volunteer = session.get(Volunteer, volunteer_id)
    if volunteer is None:
        raise AbsenceError("volunteer", Text(f"没有志愿者 {volunteer_id}",
                                             f"no volunteer {volunteer_id}"))
    if volunteer.status not in RECORDABLE_STATUSES:
        raise AbsenceError("volunteer", Text(f"志愿者 {volunteer.name} 状态为 {volunteer.status}",
                                             f"volunteer {volunteer.code} is {volunteer.status}"))
    start_shift = _shift(session, from_shift, "from_shift")
    end_shift = _shift(session, to_shift, "to_shift")
    window = absence_window(from_date, start_shift, to_date, end_shift)
    if to_date < from_date or window[1] <= window[0]:
        raise AbsenceError("to", Text("结束时间早于开始时间", "the absence ends before it starts"))
    with session.begin_nested():
        absence = Absence(volunteer_id=volunteer.id, from_date=from_date, from_shift=start_shift,
                          to_date=to_date, to_shift=end_shift, starts_at=window[0],
                          ends_at=window[1], reason=reason, note=note, created_by=actor,
                          created_at=now)
        session.add(absence)
        session.flush()
        affected = affected_assignments(session, volunteer.id, window, now)
        audit.record(session, actor, "absence.create", "absence", absence.id, after={
            "volunteer": volunteer.code, "from": from_date, "from_shift": from_shift,
            "to": to_date, "to_shift": to_shift, "reason": reason,
            "starts_at": window[0], "ends_at": window[1],
            "affected": [a.uid for a in affected]}, reason=note)
        result = AbsenceResult(absence, affected, status_before=volunteer.status)
        result.returned_tasks = return_tasks_of_absent(session, volunteer.id, actor,
                                                       window=window, now=now)
        if absence.covers(now):
            _set_status(session, volunteer, "absent", actor, f"absence {absence.id}")
        result.status_after = volunteer.status
    return result


def _set_status(session: Session, volunteer: Volunteer, status: str, actor: str,
                reason: str) -> bool:
    if volunteer.status == status:
        return False
    audit.record(session, actor, "volunteer.update", "volunteer", volunteer.id,
                 before={"status": volunteer.status}, after={"status": status}, reason=reason)
    volunteer.status = status
    session.flush()
    return True


def refresh_statuses(session: Session, now: dt.datetime | None = None,
                     actor: str = SYSTEM) -> dict[int, str]:
    """Make ``absent`` mean "an absence covers now"; return volunteer id → new status.

    Active volunteers inside an absence become absent; absent volunteers with recorded
    absences, none of them covering now, become active again. An absent volunteer
    without any absence row was set so by hand and is left alone. Run it periodically.
    """
    now = now or utcnow()
    covered = set(session.scalars(select(Absence.volunteer_id).where(
        Absence.starts_at <= now, Absence.ends_at > now)))
    rows = session.execute(
        select(Volunteer, Absence.id.is_not(None))
        .outerjoin(Absence, Absence.volunteer_id == Volunteer.id)
        .where((Volunteer.status == "absent") | Volunteer.id.in_(covered))).all()
    seen: dict[int, tuple[Volunteer, bool]] = {}
    for volunteer, has_absence in rows:
        prior = seen.get(volunteer.id, (volunteer, False))[1]
        seen[volunteer.id] = (volunteer, prior or bool(has_absence))
    changed: dict[int, str] = {}
    with session.begin_nested():
        for vid, (volunteer, has_absence) in sorted(seen.items()):
            if vid in covered and volunteer.status == "active":
                _set_status(session, volunteer, "absent", actor, "absence began")
                changed[vid] = "absent"
            elif vid not in covered and volunteer.status == "absent" and has_absence:
                _set_status(session, volunteer, "active", actor, "absence ended")
                changed[vid] = "active"
    return changed


def absences_of(session: Session, volunteer_id: int) -> list[Absence]:
    """The volunteer's absences, latest first."""
    return list(session.scalars(select(Absence).where(Absence.volunteer_id == volunteer_id)
                                .order_by(Absence.starts_at.desc())))


def as_dict(a: AffectedAssignment) -> dict[str, Any]:
    return {"uid": a.uid, "roster": a.roster_id, "version": a.version,
            "date": a.date.isoformat(), "shift": a.shift, "post": a.post, "site": a.site}


__all__ = ["ABSENCE_REASONS", "AbsenceError", "AbsenceResult", "AffectedAssignment",
           "absence_window", "absences_of", "affected_assignments", "as_dict",
           "record_absence", "refresh_statuses"]
