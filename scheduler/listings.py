"""Read models for lists: assignments and volunteers within a user's scope, one page at a time.

Each list is two statements whatever the page holds: the count, and the rows with what
they show joined in (no per-row queries). Scope is passed in (`SiteScope`, a volunteer
id), never read from a request; the web API and any other reader share these rules:

- assignments: a site scope limits them to posts at those sites; `volunteer_id` to one
  person; `published_only` to published versions;
- volunteers: a secretary's volunteers are those allowed at one of their sites
  (``volunteer_sites``) or assigned to one of their sites in a published version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from scheduler.accounts.services import SiteScope
from scheduler.models import (
    Assignment,
    Post,
    Roster,
    RosterVersion,
    ShiftTemplate,
    Site,
    SolveRun,
    Volunteer,
    volunteer_sites,
)

T = TypeVar("T")

#: The largest page any list returns.
MAX_PAGE_SIZE = 500


@dataclass
class Page(Generic[T]):
    """One page of a list: its items, where it is, and how many there are in all."""

    items: list[T]
    page: int
    per_page: int
    total: int


def _page(session: Session, query: Select[*tuple[Any, ...]], page: int, per_page: int,
          order: Sequence[Any]) -> tuple[list[Any], int]:
    if page < 1 or not 1 <= per_page <= MAX_PAGE_SIZE:
        raise ValueError(f"page {page}, per_page {per_page}: page ≥ 1, "
                         f"1 ≤ per_page ≤ {MAX_PAGE_SIZE}")
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.execute(query.order_by(*order).offset((page - 1) * per_page)
                           .limit(per_page)).all()
    return list(rows), int(total or 0)


# -- assignments --------------------------------------------------------------------------

@dataclass
class AssignmentRow:
    """An assignment with the volunteer, post, site and shift it names."""

    id: int
    uid: str
    revision: int
    date: dt.date
    volunteer: Volunteer
    post: Post
    site: Site
    shift: ShiftTemplate
    roster_id: int
    version: int


def assignments(session: Session, *, scope: SiteScope, version_id: int | None = None,
                volunteer_id: int | None = None, published_only: bool = False,
                date: dt.date | None = None, date_from: dt.date | None = None,
                date_to: dt.date | None = None, site_id: int | None = None,
                page: int = 1, per_page: int = 100) -> Page[AssignmentRow]:
    """Assignments visible in `scope`, filtered, ordered by date, shift, site, post, name."""
    query = (
        select(Assignment.id, Assignment.uid, Assignment.revision, Assignment.date,
               Volunteer, Post, Site, ShiftTemplate, RosterVersion.roster_id,
               RosterVersion.number)
        .join(RosterVersion, RosterVersion.id == Assignment.version_id)
        .join(Volunteer, Volunteer.id == Assignment.volunteer_id)
        .join(Post, Post.id == Assignment.post_id)
        .join(Site, Site.id == Post.site_id)
        .join(ShiftTemplate, ShiftTemplate.id == Assignment.shift_id)
        .where(scope.clause(Site.id)))
    if version_id is not None:
        query = query.where(Assignment.version_id == version_id)
    if volunteer_id is not None:
        query = query.where(Assignment.volunteer_id == volunteer_id)
    if published_only:
        query = query.where(RosterVersion.state == "published")
    if date is not None:
        query = query.where(Assignment.date == date)
    if date_from is not None:
        query = query.where(Assignment.date >= date_from)
    if date_to is not None:
        query = query.where(Assignment.date <= date_to)
    if site_id is not None:
        query = query.where(Site.id == site_id)
    rows, total = _page(session, query, page, per_page,
                        (Assignment.date, ShiftTemplate.start, Site.code, Post.position,
                         Post.code, Volunteer.name, Assignment.id))
    return Page([AssignmentRow(*row) for row in rows], page, per_page, total)


# -- volunteers ---------------------------------------------------------------------------

def _volunteers_in_scope(scope: SiteScope) -> Any:
    """Volunteers allowed at, or published at, a site of `scope` (all for a coordinator)."""
    if scope.all:
        return None
    allowed = select(volunteer_sites.c.volunteer_id).where(scope.clause(volunteer_sites.c.site_id))
    assigned = (select(Assignment.volunteer_id)
                .join(RosterVersion, RosterVersion.id == Assignment.version_id)
                .join(Post, Post.id == Assignment.post_id)
                .where(RosterVersion.state == "published", scope.clause(Post.site_id)))
    return or_(Volunteer.id.in_(allowed), Volunteer.id.in_(assigned))


def volunteers(session: Session, *, scope: SiteScope, status: str | None = None,
               query_text: str | None = None, page: int = 1,
               per_page: int = 100) -> Page[Volunteer]:
    """Volunteers visible in `scope` (see the module docstring), by code."""
    query = select(Volunteer).options(selectinload(Volunteer.allowed_sites))
    visible = _volunteers_in_scope(scope)
    if visible is not None:
        query = query.where(visible)
    if status is not None:
        query = query.where(Volunteer.status == status)
    if query_text:
        escaped = query_text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        query = query.where(or_(Volunteer.name.like(like, escape="\\"),
                                Volunteer.code.like(like, escape="\\")))
    rows, total = _page(session, query, page, per_page, (Volunteer.code, Volunteer.id))
    return Page([row[0] for row in rows], page, per_page, total)


def volunteer(session: Session, volunteer_id: int, *, scope: SiteScope) -> Volunteer | None:
    """Volunteer `volunteer_id` if `scope` may see them, else None."""
    query = select(Volunteer).options(selectinload(Volunteer.allowed_sites)).where(
        Volunteer.id == volunteer_id)
    visible = _volunteers_in_scope(scope)
    if visible is not None:
        query = query.where(visible)
    return session.scalars(query).one_or_none()


# -- versions -----------------------------------------------------------------------------

def assignment_counts(session: Session, version_ids: Sequence[int], *,
                      scope: SiteScope) -> dict[int, int]:
    """The number of assignments of each version in `scope` (one grouped query)."""
    if not version_ids:
        return {}
    query = select(Assignment.version_id, func.count()).where(
        Assignment.version_id.in_(list(version_ids)))
    if not scope.all:
        query = query.join(Post, Post.id == Assignment.post_id).where(
            scope.clause(Post.site_id))
    rows = session.execute(query.group_by(Assignment.version_id)).all()
    return {version_id: int(n) for version_id, n in rows}


def post_sites(session: Session, codes: Sequence[str]) -> dict[str, int]:
    """Post code → site id, for the posts named (e.g. in a version's unmet demand)."""
    if not codes:
        return {}
    return dict(session.execute(select(Post.code, Post.site_id)
                                .where(Post.code.in_(sorted(set(codes))))).all())


def published_numbers(session: Session, roster_ids: Sequence[int]) -> dict[int, int]:
    """Roster id → number of its published version, for the rosters that have one."""
    if not roster_ids:
        return {}
    return dict(session.execute(select(RosterVersion.roster_id, RosterVersion.number).where(
        RosterVersion.roster_id.in_(list(roster_ids)),
        RosterVersion.state == "published")).all())


def solve_runs(session: Session, roster_id: int, *, page: int = 1,
               per_page: int = 100) -> Page[SolveRun]:
    """The roster's solve runs, newest first."""
    rows, total = _page(session, select(SolveRun).where(SolveRun.roster_id == roster_id),
                        page, per_page, (SolveRun.id.desc(),))
    return Page([row[0] for row in rows], page, per_page, total)


def rosters(session: Session, *, page: int = 1, per_page: int = 100) -> Page[Roster]:
    """Rosters, newest start first."""
    rows, total = _page(session, select(Roster), page, per_page,
                        (Roster.start.desc(), Roster.id.desc()))
    return Page([row[0] for row in rows], page, per_page, total)


__all__ = ["MAX_PAGE_SIZE", "AssignmentRow", "Page", "assignment_counts", "assignments",
           "post_sites", "published_numbers", "rosters", "solve_runs", "volunteer",
           "volunteers"]
