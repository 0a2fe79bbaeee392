"""A volunteer's own availability and preferences for coming dates.

Every function takes the volunteer id the caller is allowed to act for (a volunteer's own,
from `scheduler.accounts.services.own_volunteer_id`) and only ever reads or changes rows
of that volunteer: an id of another volunteer's row is "not found". Past dates are
refused (the roster of a past date is history). Changes carry audit rows; the caller
commits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.models import Preference, ShiftTemplate, Unavailability

#: How far ahead a volunteer may enter availability.
MAX_DAYS_AHEAD = 120


class AvailabilityError(ValueError):
    """Bad input: says which field and why; nothing was changed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass
class Availability:
    unavailable: list[Unavailability]
    preferences: list[Preference]
    shifts: list[ShiftTemplate]


def coming(session: Session, volunteer_id: int, today: dt.date) -> Availability:
    """The volunteer's unavailability and preferences from `today` on (three queries)."""
    unavailable = list(session.scalars(select(Unavailability).where(
        Unavailability.volunteer_id == volunteer_id, Unavailability.date >= today)
        .order_by(Unavailability.date, Unavailability.id)))
    preferences = list(session.scalars(select(Preference).where(
        Preference.volunteer_id == volunteer_id, Preference.date >= today)
        .order_by(Preference.date, Preference.id)))
    shifts = list(session.scalars(select(ShiftTemplate).where(ShiftTemplate.active)
                                  .order_by(ShiftTemplate.position, ShiftTemplate.start)))
    return Availability(unavailable, preferences, shifts)


def _check_date(date: dt.date, today: dt.date) -> None:
    if date < today:
        raise AvailabilityError("date", "日期已过去 (the date is in the past)")
    if date > today + dt.timedelta(days=MAX_DAYS_AHEAD):
        raise AvailabilityError("date", f"最多可填写 {MAX_DAYS_AHEAD} 天以内 "
                                        f"(at most {MAX_DAYS_AHEAD} days ahead)")


def _shift(session: Session, shift_id: int | None) -> ShiftTemplate | None:
    if shift_id is None:
        return None
    shift = session.get(ShiftTemplate, shift_id)
    if shift is None or not shift.active:
        raise AvailabilityError("shift", "没有这个班次 (no such shift)")
    return shift


def add_unavailability(session: Session, volunteer_id: int, date: dt.date,
                       shift_id: int | None, reason: str, actor: str, *,
                       today: dt.date) -> Unavailability:
    """Mark a coming date (or one shift of it) as unavailable for the volunteer."""
    _check_date(date, today)
    shift = _shift(session, shift_id)
    duplicate = session.scalar(select(Unavailability.id).where(
        Unavailability.volunteer_id == volunteer_id, Unavailability.date == date,
        Unavailability.shift_id.is_(None) if shift is None
        else Unavailability.shift_id == shift.id))
    if duplicate is not None:
        raise AvailabilityError("date", "已登记过 (already entered)")
    row = Unavailability(volunteer_id=volunteer_id, date=date,
                         shift_id=None if shift is None else shift.id,
                         reason=reason.strip()[:200] or None)
    session.add(row)
    session.flush()
    audit.record(session, actor, "unavailability.create", "unavailability", row.id,
                 after={"volunteer": volunteer_id, "date": date,
                        "shift": None if shift is None else shift.code})
    return row


def add_preference(session: Session, volunteer_id: int, date: dt.date, shift_id: int | None,
                   want: bool, actor: str, *, today: dt.date) -> Preference:
    """Record a wish for (or against) a coming date, optionally one shift."""
    _check_date(date, today)
    shift = _shift(session, shift_id)
    row = Preference(volunteer_id=volunteer_id, date=date,
                     shift_id=None if shift is None else shift.id, want=want, weight=1)
    session.add(row)
    session.flush()
    audit.record(session, actor, "preference.create", "preference", row.id,
                 after={"volunteer": volunteer_id, "date": date, "want": want,
                        "shift": None if shift is None else shift.code})
    return row


def delete_unavailability(session: Session, volunteer_id: int, row_id: int,
                          actor: str) -> None:
    """Delete one of the volunteer's own unavailability rows (LookupError otherwise)."""
    row = session.get(Unavailability, row_id)
    if row is None or row.volunteer_id != volunteer_id:
        raise LookupError(f"no unavailability {row_id}")
    audit.record(session, actor, "unavailability.delete", "unavailability", row.id,
                 before={"volunteer": volunteer_id, "date": row.date, "shift": row.shift_id})
    session.delete(row)
    session.flush()


def delete_preference(session: Session, volunteer_id: int, row_id: int, actor: str) -> None:
    """Delete one of the volunteer's own preferences (LookupError otherwise)."""
    row = session.get(Preference, row_id)
    if row is None or row.volunteer_id != volunteer_id:
        raise LookupError(f"no preference {row_id}")
    audit.record(session, actor, "preference.delete", "preference", row.id,
                 before={"volunteer": volunteer_id, "date": row.date, "want": row.want})
    session.delete(row)
    session.flush()
