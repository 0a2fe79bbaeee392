"""Task types, tasks and the offers that put volunteers on them.

A task's `status` is its lifecycle (open → offered → accepted → in_progress → done /
failed / cancelled); its `version` grows with every change and is the compare-and-set
token a secretary's screen sends back, so two secretaries acting on the same task at once
cannot both win. Who works on a task is the set of its *accepted* offers: a two-person
hospital escort has two. The history of every transition is the audit trail
(`scheduler.audit`, entity ``task``), written in the same transaction as the change.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from scheduler.db import Base, UTCDateTime, utcnow
from scheduler.models import Site, Timestamps, Volunteer, normalize_phone

URGENCIES = ("urgent", "today", "normal")
TASK_STATUSES = ("open", "offered", "accepted", "in_progress", "done", "failed", "cancelled")
#: Statuses in which a task still waits for people (the dispatch queue).
QUEUED_STATUSES = ("open", "offered")
#: Statuses from which nothing moves any more.
FINAL_STATUSES = ("done", "failed", "cancelled")
OFFER_STATES = ("pending", "accepted", "declined", "expired", "withdrawn")
#: Offers that hold a place on the task.
LIVE_OFFER_STATES = ("pending", "accepted")


def _one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


class TaskType(Timestamps, Base):
    """A kind of task (任务类型) with its defaults; data, seeded by `ensure_task_types`."""

    __tablename__ = "task_types"
    __table_args__ = (
        _one_of("default_urgency", URGENCIES, "default_urgency"),
        CheckConstraint("people >= 1", name="people"),
        CheckConstraint("default_minutes >= 1", name="default_minutes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    people: Mapped[int] = mapped_column(default=1)
    # skill tag -> how many of the people must have it (as Demand.requires)
    requires: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    default_minutes: Mapped[int] = mapped_column(default=60)
    default_urgency: Mapped[str] = mapped_column(String(8), default="normal")
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)


class Task(Timestamps, Base):
    """One ad-hoc task (临时任务) at a place, for a resident, due at a time.

    `people` and `requires` are copied from the type when the task is created, so
    editing a type never changes a task already in the queue.
    """

    __tablename__ = "tasks"
    __table_args__ = (
        _one_of("status", TASK_STATUSES, "status"),
        _one_of("urgency", URGENCIES, "urgency"),
        CheckConstraint("people >= 1", name="people"),
        CheckConstraint("duration_minutes >= 1", name="duration_minutes"),
        Index("ix_tasks_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("task_types.id", ondelete="RESTRICT"),
                                         index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"),
                                         index=True)
    building: Mapped[str] = mapped_column(String(100), default="")
    room: Mapped[str] = mapped_column(String(100), default="")
    requester_name: Mapped[str] = mapped_column(String(100))
    requester_phone: Mapped[str] = mapped_column(String(16))  # E.164
    urgency: Mapped[str] = mapped_column(String(8))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    duration_minutes: Mapped[int]
    notes: Mapped[str] = mapped_column(Text, default="")
    people: Mapped[int] = mapped_column(default=1)
    requires: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default="open")
    # Compare-and-set token: every UPDATE is `... WHERE version = <read>` (version_id_col).
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(Text)

    type: Mapped[TaskType] = relationship()
    site: Mapped[Site] = relationship()
    offers: Mapped[list[TaskOffer]] = relationship(
        back_populates="task", order_by="TaskOffer.id", cascade="all, delete-orphan",
        passive_deletes=True)

    __mapper_args__: dict[str, Any] = {"version_id_col": version}

    @validates("requester_phone")
    def _normalize_phone(self, _key: str, value: str) -> str:
        return normalize_phone(value)

    @property
    def duration(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.duration_minutes)

    @property
    def assignee_ids(self) -> list[int]:
        """Volunteers who accepted the task (its assignees), in the order they accepted."""
        return [o.volunteer_id for o in self.offers if o.state == "accepted"]

    @property
    def pending_ids(self) -> list[int]:
        return [o.volunteer_id for o in self.offers if o.state == "pending"]


class TaskOffer(Base):
    """A task offered to one volunteer (派单): pending until answered, expired or withdrawn.

    `accepted_at` stays set when an accepted offer is later withdrawn (the volunteer fell
    absent), so a calendar feed can cancel the event it had shown.
    """

    __tablename__ = "task_offers"
    __table_args__ = (
        _one_of("state", OFFER_STATES, "state"),
        # One live offer per volunteer and task: offering twice is refused by the database.
        Index("uq_task_offers_live_task_volunteer", "task_id", "volunteer_id", unique=True,
              sqlite_where=Column("state").in_(LIVE_OFFER_STATES),
              postgresql_where=Column("state").in_(LIVE_OFFER_STATES)),
        Index("ix_task_offers_state_expires_at", "state", "expires_at"),
        Index("ix_task_offers_volunteer_id_state", "volunteer_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"),
                                         index=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(10), default="pending")
    offered_by: Mapped[str] = mapped_column(String(200))
    offered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Why it was declined, expired or withdrawn, as the volunteer or system said it.
    note: Mapped[str | None] = mapped_column(Text)

    task: Mapped[Task] = relationship(back_populates="offers")
    volunteer: Mapped[Volunteer] = relationship()
