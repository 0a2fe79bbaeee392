"""The coordinator's data: volunteers, sites and posts, shifts, rosters and their versions.

District data (volunteers, sites, posts, shift templates, unavailability, preferences) is
shared by every roster; a roster owns its period, its demand, its rule set, its versions
and its solve runs. Everything that the exchange format names by an id has a `code`
column holding that id (`v00001`, `wjln-check`, `M`), unique across the database.

Timestamps are aware UTC datetimes (`UTCDateTime`); dates are local calendar dates of the
roster's time zone (Asia/Shanghai in practice), as in the exchange format.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from scheduler.db import Base, UTCDateTime, utcnow

SITE_KINDS = ("checkpoint", "building", "hotel", "testing", "other")
VOLUNTEER_STATUSES = ("active", "absent", "left")
ROSTER_STATUSES = ("planning", "published", "archived")
VERSION_STATES = ("draft", "published", "superseded")
RUN_STATUSES = ("queued", "running", "finished", "failed")
ACTIVE_RUN_STATUSES = ("queued", "running")
#: The skill tag of the exchange format that marks a Party member (党员).
PARTY_SKILL = "party"


def _one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


class PhoneError(ValueError):
    """A phone number that cannot be read as a mainland-China or international number."""


_PHONE_JUNK = re.compile(r"[\s\-()（）.·]")
_MOBILE = re.compile(r"1[3-9]\d{9}")


def normalize_phone(raw: str | int | float) -> str:
    """A phone number in E.164 (`+8613800138000`).

    Accepts what spreadsheets and people write: full-width digits and spaces, `+86`,
    `0086` or `86` prefixes, separators, a trailing `.0` (Excel's float). A mainland
    mobile number has 11 digits starting with 1[3-9]; a landline starts with its 0-prefixed
    area code. Other `+`/`00` numbers are kept as they are when 8-15 digits long.
    """
    if isinstance(raw, float):
        if not raw.is_integer():
            raise PhoneError(f"not a phone number: {raw!r}")
        raw = int(raw)
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    if text.endswith(".0"):
        text = text[:-2]
    text = _PHONE_JUNK.sub("", text)
    international = text.startswith(("+", "00"))
    digits = text[1:] if text.startswith("+") else text[2:] if international else text
    if not digits.isdigit():
        raise PhoneError(f"not a phone number: {raw!r}")
    if international and not digits.startswith("86"):
        if 8 <= len(digits) <= 15:
            return "+" + digits
        raise PhoneError(f"not a phone number: {raw!r}")
    national = digits
    if international or (len(digits) == 13 and digits.startswith("86")):
        national = digits[2:]
    if _MOBILE.fullmatch(national):
        return "+86" + national
    if national.startswith("0") and 10 <= len(national) <= 12:
        return "+86" + national[1:]  # landline with its area code
    if international and 9 <= len(national) <= 11:
        return "+86" + national  # +86 731 8456 7890: area code without its 0
    raise PhoneError(f"not a phone number: {raw!r}")


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow,
                                                    onupdate=utcnow)


volunteer_sites = Table(
    "volunteer_sites",
    Base.metadata,
    Column("volunteer_id", ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_volunteer_sites_site_id", "site_id"),
)


class Site(Timestamps, Base):
    """A place (点位): a checkpoint, residential building, quarantine hotel or testing site."""

    __tablename__ = "sites"
    __table_args__ = (_one_of("kind", SITE_KINDS, "kind"),
                      Index("ix_sites_updated_at", "updated_at"))  # max() on each feed poll

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="other")
    active: Mapped[bool] = mapped_column(default=True)
    address: Mapped[str | None] = mapped_column(String(300))
    # 街道 (sub-district), for filtering sites by the street office responsible for them.
    street: Mapped[str | None] = mapped_column(String(100), index=True)
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_phone: Mapped[str | None] = mapped_column(String(32))

    posts: Mapped[list[Post]] = relationship(
        back_populates="site", order_by="Post.position, Post.id", cascade="all, delete-orphan")


class Post(Timestamps, Base):
    """A position at a site (岗位) that people are assigned to."""

    __tablename__ = "posts"
    __table_args__ = (Index("ix_posts_updated_at", "updated_at"),)  # max() on each feed poll

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)

    site: Mapped[Site] = relationship(back_populates="posts")


class ShiftTemplate(Timestamps, Base):
    """A shift of every day (三班: 早/中/夜). `end` not after `start` ends the next day."""

    __tablename__ = "shift_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    start: Mapped[dt.time] = mapped_column(Time())
    end: Mapped[dt.time] = mapped_column(Time())
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start


class Volunteer(Timestamps, Base):
    """Someone who can be rostered (志愿者)."""

    __tablename__ = "volunteers"
    __table_args__ = (
        _one_of("status", VOLUNTEER_STATUSES, "status"),
        CheckConstraint("max_shifts IS NULL OR max_shifts >= 0", name="max_shifts"),
        CheckConstraint("min_shifts IS NULL OR min_shifts >= 0", name="min_shifts"),
        Index("ix_volunteers_updated_at", "updated_at"),  # max() on each feed poll
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True,
                                      default=lambda: "v-" + uuid.uuid4().hex[:12])
    name: Mapped[str] = mapped_column(String(100))
    # E.164; unique when present (volunteers from problem files may have none).
    phone: Mapped[str | None] = mapped_column(String(16), unique=True)
    unit: Mapped[str] = mapped_column(String(200), default="")
    # Free tags other than `party` (which is `party_member`), sorted.
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    party_member: Mapped[bool] = mapped_column(default=False)
    # False: may work at any site; True: only at `allowed_sites` (possibly none).
    sites_restricted: Mapped[bool] = mapped_column(default=False)
    max_shifts: Mapped[int | None]
    min_shifts: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(8), default="active", index=True)

    allowed_sites: Mapped[list[Site]] = relationship(secondary=volunteer_sites,
                                                     order_by="Site.id")
    unavailability: Mapped[list[Unavailability]] = relationship(
        back_populates="volunteer", cascade="all, delete-orphan", passive_deletes=True)
    preferences: Mapped[list[Preference]] = relationship(
        back_populates="volunteer", cascade="all, delete-orphan", passive_deletes=True)

    @validates("phone")
    def _normalize_phone(self, _key: str, value: str | None) -> str | None:
        return None if value is None or str(value).strip() == "" else normalize_phone(value)

    @property
    def tags(self) -> list[str]:
        """Skills as the exchange format writes them, `party` included."""
        return ([PARTY_SKILL] if self.party_member else []) + list(self.skills or [])


class Unavailability(Base):
    """A date, or one shift of a date, when a volunteer cannot work (不可用)."""

    __tablename__ = "unavailability"
    __table_args__ = (
        UniqueConstraint("volunteer_id", "date", "shift_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    date: Mapped[dt.date] = mapped_column(Date(), index=True)
    # NULL: the whole date.
    shift_id: Mapped[int | None] = mapped_column(
        ForeignKey("shift_templates.id", ondelete="CASCADE"))
    reason: Mapped[str | None] = mapped_column(String(200))

    volunteer: Mapped[Volunteer] = relationship(back_populates="unavailability")
    shift: Mapped[ShiftTemplate | None] = relationship()


class Preference(Base):
    """A wish (意愿) for or against a date, optionally a shift and a post."""

    __tablename__ = "preferences"
    __table_args__ = (CheckConstraint("weight >= 0", name="weight"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(
        ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    date: Mapped[dt.date] = mapped_column(Date())
    shift_id: Mapped[int | None] = mapped_column(
        ForeignKey("shift_templates.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    want: Mapped[bool]
    weight: Mapped[int] = mapped_column(default=1)

    volunteer: Mapped[Volunteer] = relationship(back_populates="preferences")
    shift: Mapped[ShiftTemplate | None] = relationship()
    post: Mapped[Post | None] = relationship()


class RuleSet(Timestamps, Base):
    """The rules of one roster period (规则集)."""

    __tablename__ = "rule_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))

    rules: Mapped[list[Rule]] = relationship(
        back_populates="rule_set", order_by="Rule.position", cascade="all, delete-orphan",
        passive_deletes=True)


class Rule(Base):
    """One rule of the exchange format: its type, parameters, weight (soft) and scope."""

    __tablename__ = "rules"
    __table_args__ = (
        UniqueConstraint("rule_set_id", "position"),
        CheckConstraint("weight IS NULL OR weight >= 0", name="weight"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_set_id: Mapped[int] = mapped_column(ForeignKey("rule_sets.id", ondelete="CASCADE"))
    position: Mapped[int]
    type: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # NULL: a hard rule.
    weight: Mapped[int | None]
    # A skill tag: the rule binds only volunteers who have it; NULL: everyone.
    applies_to: Mapped[str | None] = mapped_column(String(100))

    rule_set: Mapped[RuleSet] = relationship(back_populates="rules")


class Roster(Timestamps, Base):
    """A roster period (排班周期): its dates, demand, rules, versions and solve runs."""

    __tablename__ = "rosters"
    __table_args__ = (
        _one_of("status", ROSTER_STATUSES, "status"),
        CheckConstraint("days >= 1", name="days"),
        CheckConstraint("coverage_weight >= 0", name="coverage_weight"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    start: Mapped[dt.date] = mapped_column(Date())
    days: Mapped[int]
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    coverage_weight: Mapped[int] = mapped_column(default=1000)
    status: Mapped[str] = mapped_column(String(12), default="planning")
    rule_set_id: Mapped[int | None] = mapped_column(
        ForeignKey("rule_sets.id", ondelete="RESTRICT"), index=True)

    rule_set: Mapped[RuleSet | None] = relationship()
    demand: Mapped[list[Demand]] = relationship(
        back_populates="roster", order_by="Demand.position", cascade="all, delete-orphan",
        passive_deletes=True)
    versions: Mapped[list[RosterVersion]] = relationship(
        back_populates="roster", order_by="RosterVersion.number", cascade="all, delete-orphan",
        passive_deletes=True)

    @property
    def end(self) -> dt.date:
        """The last date of the period."""
        return self.start + dt.timedelta(days=self.days - 1)


class Demand(Base):
    """People needed at a post on a shift (用人需求), on some dates or every date."""

    __tablename__ = "demand"
    __table_args__ = (
        UniqueConstraint("roster_id", "position"),
        CheckConstraint("min >= 0", name="min"),
        CheckConstraint("max >= min", name="max"),
        Index("ix_demand_roster_id_post_id_shift_id", "roster_id", "post_id", "shift_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    roster_id: Mapped[int] = mapped_column(ForeignKey("rosters.id", ondelete="CASCADE"))
    position: Mapped[int]
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="RESTRICT"))
    shift_id: Mapped[int] = mapped_column(ForeignKey("shift_templates.id", ondelete="RESTRICT"))
    min: Mapped[int]
    max: Mapped[int]
    # skill -> how many of the people must have it
    requires: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    # ISO dates, or NULL for every date of the period
    dates: Mapped[list[str] | None] = mapped_column(JSON)

    roster: Mapped[Roster] = relationship(back_populates="demand")
    post: Mapped[Post] = relationship()
    shift: Mapped[ShiftTemplate] = relationship()


class SolveRun(Base):
    """One background solve of a roster; the database row outlives the job in Redis."""

    __tablename__ = "solve_runs"
    __table_args__ = (
        _one_of("status", RUN_STATUSES, "status"),
        # At most one queued or running solve per roster: a second request gets that one.
        # The parts of a split solve (child runs) are not requests and do not count.
        Index("uq_solve_runs_active_roster", "roster_id", unique=True,
              sqlite_where=Column("status").in_(ACTIVE_RUN_STATUSES)
              & Column("parent_id").is_(None),
              postgresql_where=Column("status").in_(ACTIVE_RUN_STATUSES)
              & Column("parent_id").is_(None)),
        Index("ix_solve_runs_roster_id_created_at", "roster_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    roster_id: Mapped[int] = mapped_column(ForeignKey("rosters.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10), default="queued", index=True)
    job_id: Mapped[str | None] = mapped_column(String(64), index=True)
    requested_by: Mapped[str] = mapped_column(String(200))
    time_limit: Mapped[float] = mapped_column(Float, default=60.0)
    seed: Mapped[int] = mapped_column(default=0)
    solver_status: Mapped[str | None] = mapped_column(String(16))
    objective: Mapped[float | None] = mapped_column(Float)
    bound: Mapped[float | None] = mapped_column(Float)
    elapsed: Mapped[float | None] = mapped_column(Float)
    coverage: Mapped[float | None] = mapped_column(Float)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Last sign of life from the worker; the reconciler fails runs whose heartbeat is stale.
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # City scale: a run whose problem splits into several sub-problems has one child run
    # per sub-problem (`part`), solved by a job of its own; the child keeps its sub-problem
    # and, once solved, its solution until the parent merges them (Redis results expire).
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("solve_runs.id", ondelete="CASCADE"), index=True)
    part: Mapped[int | None]
    problem: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    solution: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    roster: Mapped[Roster] = relationship()


class RosterVersion(Base):
    """A numbered roster of a period: a draft, the published one, or a superseded one."""

    __tablename__ = "roster_versions"
    __table_args__ = (
        UniqueConstraint("roster_id", "number"),
        _one_of("state", VERSION_STATES, "state"),
        # At most one published version per roster.
        Index("uq_roster_versions_published_roster", "roster_id", unique=True,
              sqlite_where=Column("state") == "published",
              postgresql_where=Column("state") == "published"),
        Index("ix_roster_versions_published_at", "published_at"),  # max() on each feed poll
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    roster_id: Mapped[int] = mapped_column(ForeignKey("rosters.id", ondelete="CASCADE"))
    number: Mapped[int]
    state: Mapped[str] = mapped_column(String(12), default="draft")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    published_by: Mapped[str | None] = mapped_column(String(200))
    solve_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("solve_runs.id", ondelete="SET NULL"), index=True)
    # From the solution document: solver status, objective, bound, unmet demand, penalties.
    solver_status: Mapped[str | None] = mapped_column(String(16))
    objective: Mapped[float | None] = mapped_column(Float)
    bound: Mapped[float | None] = mapped_column(Float)
    unmet: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    penalties: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text)

    roster: Mapped[Roster] = relationship(back_populates="versions")
    solve_run: Mapped[SolveRun | None] = relationship()
    assignments: Mapped[list[Assignment]] = relationship(
        back_populates="version", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Assignment.date, Assignment.shift_id, Assignment.post_id, "
                 "Assignment.volunteer_id")


def new_uid() -> str:
    return uuid.uuid4().hex


class Assignment(Base):
    """A volunteer on a shift of a date at a post, in one version.

    `uid` names the same (volunteer, date, shift) across versions, so calendar feeds can
    update an event instead of replacing it; `revision` grows when it moves to another post.
    """

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("version_id", "uid"),
        UniqueConstraint("version_id", "volunteer_id", "date", "shift_id"),
        Index("ix_assignments_version_id_date", "version_id", "date"),
        CheckConstraint("revision >= 1", name="revision"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("roster_versions.id", ondelete="CASCADE"))
    uid: Mapped[str] = mapped_column(String(32), default=new_uid, index=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    volunteer_id: Mapped[int] = mapped_column(
        ForeignKey("volunteers.id", ondelete="RESTRICT"), index=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="RESTRICT"), index=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("shift_templates.id", ondelete="RESTRICT"))
    date: Mapped[dt.date] = mapped_column(Date())

    version: Mapped[RosterVersion] = relationship(back_populates="assignments")
    volunteer: Mapped[Volunteer] = relationship()
    post: Mapped[Post] = relationship()
    shift: Mapped[ShiftTemplate] = relationship()


class AuditEvent(Base):
    """Who did what to which entity, when (UTC), with the before/after state and why."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_entity_entity_id", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[Any | None] = mapped_column(JSON)
    after: Mapped[Any | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)


# Feature folders' tables, registered on the metadata with the core ones (migrations and
# the schema test compare the whole metadata). At the bottom: they import from here.
import scheduler.absences.models  # noqa: E402, F401
import scheduler.accounts.models  # noqa: E402, F401
import scheduler.calendars.models  # noqa: E402, F401
import scheduler.dispatch.models  # noqa: E402, F401
import scheduler.notifications.models  # noqa: E402, F401
import scheduler.repairs.models  # noqa: E402, F401
