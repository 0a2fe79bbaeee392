"""Read models of the absence pages: whose absences a secretary may record, recent ones.

A secretary's volunteers (the people she may record absent) are those *allowed at* one of
her sites (`volunteer_sites`) or *assigned* to one of them in a published roster version
on a date from `LOOKBACK` days ago on (so someone who worked there yesterday and calls in
sick is found). A coordinator's scope is every volunteer. Fixed query counts.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import ColumnElement, Select, or_, select, true
from sqlalchemy.orm import Session, joinedload

from scheduler.absences.models import Absence
from scheduler.accounts.services import SiteScope
from scheduler.models import Assignment, Post, RosterVersion, Volunteer, volunteer_sites

#: How far back an assignment at a site still makes the volunteer one of its people.
LOOKBACK = dt.timedelta(days=7)
#: Volunteers listed for a search.
SEARCH_LIMIT = 20


def _in_scope(scope: SiteScope, today: dt.date) -> ColumnElement[bool]:
    """A condition on `Volunteer.id`: one of the scope's volunteers (see the module)."""
    if scope.all:
        return true()
    allowed = select(volunteer_sites.c.volunteer_id).where(
        scope.clause(volunteer_sites.c.site_id))
    assigned = (select(Assignment.volunteer_id)
                .join(RosterVersion, Assignment.version_id == RosterVersion.id)
                .join(Post, Assignment.post_id == Post.id)
                .where(RosterVersion.state == "published", scope.clause(Post.site_id),
                       Assignment.date >= today - LOOKBACK))
    return or_(Volunteer.id.in_(allowed), Volunteer.id.in_(assigned))


#: The scope's volunteers, as a condition on `Volunteer.id` (notifications and the
#: dispatch board use it too).
in_scope = _in_scope


def may_record(session: Session, scope: SiteScope, volunteer_id: int, today: dt.date) -> bool:
    """Whether the reader may record an absence for this volunteer. One query."""
    return session.scalar(select(Volunteer.id).where(
        Volunteer.id == volunteer_id, _in_scope(scope, today))) is not None


def search(session: Session, scope: SiteScope, today: dt.date, q: str,
           limit: int = SEARCH_LIMIT) -> list[Volunteer]:
    """The scope's present volunteers whose name contains `q` or phone contains its digits."""
    q = q.strip()
    query: Select[Volunteer] = select(Volunteer).where(
        _in_scope(scope, today), Volunteer.status.in_(("active", "absent")))
    if q:
        digits = re.sub(r"\D", "", q)
        found = Volunteer.name.contains(q, autoescape=True)
        if len(digits) >= 3:
            found = found | Volunteer.phone.contains(digits, autoescape=True)
        query = query.where(found)
    return list(session.scalars(query.order_by(Volunteer.name, Volunteer.id).limit(limit)))


def recent(session: Session, scope: SiteScope, today: dt.date, limit: int = 20
           ) -> list[Absence]:
    """The latest absences of the scope's volunteers that have not ended by `today`."""
    return list(session.scalars(
        select(Absence).join(Volunteer, Absence.volunteer_id == Volunteer.id)
        .where(_in_scope(scope, today), Absence.to_date >= today)
        .options(joinedload(Absence.volunteer), joinedload(Absence.from_shift),
                 joinedload(Absence.to_shift))
        .order_by(Absence.created_at.desc(), Absence.id.desc()).limit(limit)))


__all__ = ["LOOKBACK", "in_scope", "may_record", "recent", "search"]
