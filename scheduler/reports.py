"""Read models of the pages: dashboard figures, the roster grid, a volunteer's shifts, a branch's day.

Each function runs a fixed number of queries whatever the size of the district (no query
per row), and takes the scope of the reader (`scheduler.accounts.services.SiteScope`) or
the volunteer id they may read, never request state.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.accounts.services import SiteScope
from scheduler.models import (
    Assignment,
    Demand,
    Post,
    Roster,
    RosterVersion,
    ShiftTemplate,
    Site,
    SolveRun,
    Volunteer,
)


def _dates(start: dt.date, days: int) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(days)]


def _demand_dates(d: Demand, roster: Roster) -> list[dt.date]:
    if d.dates is None:
        return _dates(roster.start, roster.days)
    return [dt.date.fromisoformat(x) for x in d.dates]


# -- dashboard ----------------------------------------------------------------------------

@dataclass
class SkillLine:
    skill: str
    needed_per_day: int  # the busiest day's requirement of people with the skill
    available: int  # active volunteers with the skill


@dataclass
class Dashboard:
    sites: int
    posts: int
    volunteers: int
    roster: Roster | None
    heads_per_day: int = 0
    skills: list[SkillLine] = field(default_factory=list)
    last_run: SolveRun | None = None
    published: RosterVersion | None = None


def dashboard(session: Session) -> Dashboard:
    """Counts of the district and, for the latest roster, demand against supply per skill."""
    sites = session.scalar(select(func.count(Site.id)).where(Site.active)) or 0
    posts = session.scalar(select(func.count(Post.id)).where(Post.active)) or 0
    volunteers = session.execute(select(Volunteer.skills, Volunteer.party_member)
                                 .where(Volunteer.status == "active")).all()
    roster = session.scalars(select(Roster).order_by(Roster.start.desc(), Roster.id.desc())
                             .limit(1)).first()
    out = Dashboard(sites, posts, len(volunteers), roster)
    if roster is None:
        return out
    supply: Counter[str] = Counter()
    for skills, party in volunteers:
        supply.update(set(skills or []) | ({"party"} if party else set()))
    heads: Counter[dt.date] = Counter()
    need: dict[str, Counter[dt.date]] = defaultdict(Counter)
    for d in session.scalars(select(Demand).where(Demand.roster_id == roster.id)):
        for day in _demand_dates(d, roster):
            heads[day] += d.min
            for skill, n in (d.requires or {}).items():
                need[skill][day] += n
    out.heads_per_day = max(heads.values(), default=0)
    out.skills = [SkillLine(s, max(need[s].values(), default=0), supply.get(s, 0))
                  for s in sorted(set(need) | set(supply))]
    out.last_run = session.scalars(select(SolveRun).where(SolveRun.roster_id == roster.id)
                                   .order_by(SolveRun.id.desc()).limit(1)).first()
    out.published = session.scalars(select(RosterVersion).where(
        RosterVersion.roster_id == roster.id, RosterVersion.state == "published")).first()
    return out


# -- the roster grid ----------------------------------------------------------------------

@dataclass
class GridCell:
    names: list[str] = field(default_factory=list)
    needed: int = 0
    unmet: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class GridRow:
    site: Site
    post: Post


@dataclass
class Grid:
    dates: list[dt.date]
    shifts: list[ShiftTemplate]
    rows: list[GridRow]
    cells: dict[tuple[int, dt.date, int], GridCell]
    sites: list[Site]  # every site in scope, for the filter
    skills: list[str]
    streets: list[str]

    def cell(self, post_id: int, date: dt.date, shift_id: int) -> GridCell:
        return self.cells.get((post_id, date, shift_id)) or GridCell()


def _street(site: Site) -> str | None:
    # `Site.street` arrives with the feeds branch; until then there is no street filter.
    value = getattr(site, "street", None)
    return str(value) if value else None


def grid(session: Session, version: RosterVersion, scope: SiteScope, *,
         start: dt.date | None = None, days: int = 7, site_code: str | None = None,
         skill: str | None = None, street: str | None = None) -> Grid:
    """Sites × dates × shifts of a version, filtered; unmet slots carry their reasons.

    Rows are the posts of the sites in `scope` (optionally one site, one street, or the
    posts whose demand needs `skill`); columns are `days` dates from `start` (default: the
    roster's first date), each with every shift.
    """
    roster = version.roster
    first = max(roster.start, min(start or roster.start, roster.end))
    dates = [d for d in _dates(first, days) if d <= roster.end]
    shifts = list(session.scalars(select(ShiftTemplate).where(ShiftTemplate.active)
                                  .order_by(ShiftTemplate.position, ShiftTemplate.start)))
    all_sites = list(session.scalars(select(Site).where(scope.clause(Site.id))
                                     .order_by(Site.code)))
    sites = [s for s in all_sites if (not site_code or s.code == site_code)
             and (not street or _street(s) == street)]
    site_by_id = {s.id: s for s in sites}
    posts = list(session.scalars(select(Post).where(Post.site_id.in_(list(site_by_id)))
                                 .order_by(Post.site_id, Post.position, Post.id)))
    # Plain rows, not entities: the grid reads four columns of a few hundred demand rows.
    demand = session.execute(select(Demand.post_id, Demand.shift_id, Demand.min,
                                    Demand.dates, Demand.requires)
                             .where(Demand.roster_id == roster.id)).all()
    skills = sorted({k for d in demand for k in (d.requires or {})})
    if skill:
        wanted = {d.post_id for d in demand if (d.requires or {}).get(skill)}
        posts = [p for p in posts if p.id in wanted]
    post_ids = {p.id for p in posts}
    cells: dict[tuple[int, dt.date, int], GridCell] = defaultdict(GridCell)
    window = set(dates)
    for post_id, shift_id, minimum, on_dates, _requires in demand:
        if post_id in post_ids:
            days_of = dates if on_dates is None else [
                day for x in on_dates if (day := dt.date.fromisoformat(x)) in window]
            for day in days_of:
                cells[(post_id, day, shift_id)].needed += minimum
    if post_ids and dates:
        rows = session.execute(
            select(Assignment.post_id, Assignment.date, Assignment.shift_id, Volunteer.name)
            .join(Volunteer, Volunteer.id == Assignment.volunteer_id)
            .where(Assignment.version_id == version.id, Assignment.post_id.in_(post_ids),
                   Assignment.date >= dates[0], Assignment.date <= dates[-1])
            .order_by(Volunteer.name))
        for post_id, day, shift_id, name in rows:
            cells[(post_id, day, shift_id)].names.append(name)
    post_by_code = {p.code: p.id for p in posts}
    shift_by_code = {s.code: s.id for s in shifts}
    for item in version.unmet or []:
        unmet_post = post_by_code.get(item.get("post") or "")
        unmet_shift = shift_by_code.get(item.get("shift") or "")
        when = dt.date.fromisoformat(item["date"]) if item.get("date") else None
        if unmet_post is not None and unmet_shift is not None and when in window:
            cells[(unmet_post, when, unmet_shift)].unmet.append(item)
    streets = sorted({st for s in all_sites if (st := _street(s))})
    return Grid(dates, shifts, [GridRow(site_by_id[p.site_id], p) for p in posts],
                dict(cells), all_sites, skills, streets)


# -- a volunteer's shifts -----------------------------------------------------------------

@dataclass
class Shift:
    date: dt.date
    shift: ShiftTemplate
    post: Post
    site: Site
    roster: Roster


def upcoming_shifts(session: Session, volunteer_id: int, since: dt.date,
                    limit: int = 50) -> list[Shift]:
    """The volunteer's shifts from `since` on, in published versions only."""
    rows = session.execute(
        select(Assignment.date, ShiftTemplate, Post, Site, Roster)
        .join(RosterVersion, RosterVersion.id == Assignment.version_id)
        .join(Roster, Roster.id == RosterVersion.roster_id)
        .join(ShiftTemplate, ShiftTemplate.id == Assignment.shift_id)
        .join(Post, Post.id == Assignment.post_id)
        .join(Site, Site.id == Post.site_id)
        .where(Assignment.volunteer_id == volunteer_id, RosterVersion.state == "published",
               Assignment.date >= since)
        .order_by(Assignment.date, ShiftTemplate.start).limit(limit)).all()
    return [Shift(*row) for row in rows]


# -- a branch's day -----------------------------------------------------------------------

@dataclass
class BranchShift:
    date: dt.date
    shift: ShiftTemplate
    post: Post
    site: Site
    people: list[Volunteer] = field(default_factory=list)


def branch_days(session: Session, scope: SiteScope, dates: list[dt.date]
                ) -> tuple[list[Site], list[BranchShift]]:
    """The sites of the scope and who works there on `dates` (published versions)."""
    sites = list(session.scalars(select(Site).where(scope.clause(Site.id))
                                 .order_by(Site.code)))
    rows = session.execute(
        select(Assignment.date, ShiftTemplate, Post, Site, Volunteer)
        .join(RosterVersion, RosterVersion.id == Assignment.version_id)
        .join(ShiftTemplate, ShiftTemplate.id == Assignment.shift_id)
        .join(Post, Post.id == Assignment.post_id)
        .join(Site, Site.id == Post.site_id)
        .join(Volunteer, Volunteer.id == Assignment.volunteer_id)
        .where(RosterVersion.state == "published", Assignment.date.in_(dates),
               scope.clause(Site.id))
        .order_by(Assignment.date, ShiftTemplate.start, Site.code, Post.position,
                  Volunteer.name)).all()
    shifts: dict[tuple[dt.date, int, int], BranchShift] = {}
    for day, shift, post, site, volunteer in rows:
        key = (day, shift.id, post.id)
        if key not in shifts:
            shifts[key] = BranchShift(day, shift, post, site)
        shifts[key].people.append(volunteer)
    return sites, list(shifts.values())
