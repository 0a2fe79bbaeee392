"""A site's "now / next" wall board (值班看板): who is on duty, who comes next, the gaps.

Read from the published rosters only. "Now" is every shift of the site whose interval
(Asia/Shanghai; a night shift ending after midnight belongs to the day it started)
covers the instant; "next" is the earliest shift of the site starting after it. For
each post of those shifts: the people assigned, the demand's minimum and what is
missing (people, and skills the demand requires that the people on it lack). Five
queries whatever the size of the site.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.localtime import local_date, shift_interval
from scheduler.models import (
    Assignment,
    Demand,
    Post,
    Roster,
    RosterVersion,
    ShiftTemplate,
    Site,
    Volunteer,
)


@dataclass(frozen=True)
class OnDuty:
    volunteer_id: int
    name: str
    phone: str | None
    skills: frozenset[str]


@dataclass
class PostSlot:
    """One post in one shift: who is there and what is missing."""

    post_id: int
    post_name: str
    people: list[OnDuty] = field(default_factory=list)
    minimum: int = 0
    requires: dict[str, int] = field(default_factory=dict)

    @property
    def missing(self) -> int:
        return max(0, self.minimum - len(self.people))

    @property
    def skills_missing(self) -> dict[str, int]:
        have = Counter(s for p in self.people for s in p.skills)
        return {s: n - have[s] for s, n in sorted(self.requires.items()) if n > have[s]}


@dataclass
class ShiftBlock:
    """One shift occurrence at the site (a date and a shift template)."""

    date: dt.date
    shift_id: int
    shift_name: str
    begins: dt.datetime
    ends: dt.datetime
    posts: list[PostSlot] = field(default_factory=list)

    @property
    def people(self) -> int:
        return sum(len(p.people) for p in self.posts)

    @property
    def gaps(self) -> list[PostSlot]:
        return [p for p in self.posts if p.missing or p.skills_missing]


@dataclass
class WallBoard:
    site: Site
    at: dt.datetime
    now: list[ShiftBlock]
    next: ShiftBlock | None


def _published(session: Session, dates: list[dt.date]) -> dict[int, tuple[int, dt.date, int]]:
    """Published versions whose roster covers any of `dates`: id -> (roster, start, days)."""
    rows = session.execute(
        select(RosterVersion.id, Roster.id, Roster.start, Roster.days)
        .join(Roster, RosterVersion.roster_id == Roster.id)
        .where(RosterVersion.state == "published", Roster.start <= max(dates))).all()
    return {vid: (rid, start, days) for vid, rid, start, days in rows
            if start + dt.timedelta(days=days - 1) >= min(dates)}


def wall_board(session: Session, site_id: int, at: dt.datetime) -> WallBoard | None:
    """The site's board at instant `at` (aware); None if there is no such site."""
    site = session.get(Site, site_id)
    if site is None:
        return None
    today = local_date(at)
    # Yesterday's night shift may still run; the next shift may be tomorrow's.
    dates = [today + dt.timedelta(days=d) for d in (-1, 0, 1, 2)]
    versions = _published(session, dates)
    blocks: dict[tuple[dt.date, int], ShiftBlock] = {}
    if versions:
        shifts = session.scalars(select(ShiftTemplate)).all()
        rows = session.execute(
            select(Assignment.version_id, Assignment.date, Assignment.shift_id, Post.id,
                   Post.name, Post.position, Volunteer.id, Volunteer.name, Volunteer.phone,
                   Volunteer.skills, Volunteer.party_member)
            .join(Post, Assignment.post_id == Post.id)
            .join(Volunteer, Assignment.volunteer_id == Volunteer.id)
            .where(Assignment.version_id.in_(list(versions)), Post.site_id == site_id,
                   Assignment.date.in_(dates))
            .order_by(Post.position, Post.id, Volunteer.name, Volunteer.id)).all()
        demand = session.execute(
            select(Demand.roster_id, Demand.post_id, Demand.shift_id, Demand.min,
                   Demand.requires, Demand.dates, Post.name, Post.position)
            .join(Post, Demand.post_id == Post.id)
            .where(Demand.roster_id.in_({r for r, _, _ in versions.values()}),
                   Post.site_id == site_id)
            .order_by(Post.position, Post.id)).all()
        by_id = {s.id: s for s in shifts}
        slots: dict[tuple[dt.date, int], dict[int, PostSlot]] = {}

        def block(date: dt.date, shift_id: int) -> dict[int, PostSlot]:
            if (date, shift_id) not in blocks:
                s = by_id[shift_id]
                begins, ends = shift_interval(date, s.start, s.end)
                blocks[(date, shift_id)] = ShiftBlock(date, shift_id, s.name, begins, ends)
                slots[(date, shift_id)] = {}
            return slots[(date, shift_id)]

        for roster_id, post_id, shift_id, minimum, requires, on, name, _pos in demand:
            for rid, start, days in set(versions.values()):
                if rid != roster_id:
                    continue
                for date in dates:
                    if not start <= date < start + dt.timedelta(days=days):
                        continue
                    if on is not None and date.isoformat() not in on:
                        continue
                    slot = block(date, shift_id).setdefault(post_id, PostSlot(post_id, name))
                    slot.minimum += minimum
                    for skill, n in (requires or {}).items():
                        slot.requires[skill] = slot.requires.get(skill, 0) + n
        for (_vid, date, shift_id, post_id, post_name, _pos, vol, name, phone, skills,
             party) in rows:
            slot = block(date, shift_id).setdefault(post_id, PostSlot(post_id, post_name))
            tags = frozenset((["party"] if party else []) + list(skills or []))
            slot.people.append(OnDuty(vol, name, phone, tags))
        for key, b in blocks.items():
            b.posts = list(slots[key].values())
    ordered = sorted(blocks.values(), key=lambda b: (b.begins, b.shift_id))
    now = [b for b in ordered if b.begins <= at < b.ends]
    upcoming = [b for b in ordered if b.begins > at]
    return WallBoard(site, at, now, upcoming[0] if upcoming else None)


__all__ = ["OnDuty", "PostSlot", "ShiftBlock", "WallBoard", "wall_board"]
