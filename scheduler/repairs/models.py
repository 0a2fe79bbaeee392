"""A repair proposal: a re-planned roster around an absence, waiting for a secretary.

The proposal records what it was computed from (the roster's published version number,
the absence and its window, copied) so that accepting it can tell when the roster has
moved on since (`stale`), and the whole repaired `roster-solution/1` document with its
`changes`, which is what the secretary reads and what becomes the next version.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from scheduler.absences.models import Absence
from scheduler.db import Base, UTCDateTime, utcnow
from scheduler.models import Roster, Volunteer

PROPOSAL_STATUSES = ("queued", "running", "ready", "failed", "accepted", "rejected", "stale")
#: Statuses in which the job still has work to do.
ACTIVE_PROPOSAL_STATUSES = ("queued", "running")


class RepairProposal(Base):
    """A repair of a roster's published version around one absence (调整方案)."""

    __tablename__ = "repair_proposals"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'ready', 'failed', 'accepted', "
                        "'rejected', 'stale')", name="status"),
        CheckConstraint("ends_at > starts_at", name="window"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    roster_id: Mapped[int] = mapped_column(ForeignKey("rosters.id", ondelete="CASCADE"),
                                           index=True)
    #: The published version number the repair starts from.
    base_number: Mapped[int] = mapped_column(Integer)
    absence_id: Mapped[int | None] = mapped_column(
        ForeignKey("absences.id", ondelete="SET NULL"), index=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    #: The absence window as it was when the proposal was requested (UTC).
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(12), default="queued")
    time_limit: Mapped[float] = mapped_column(Float, default=10.0)
    job_id: Mapped[str | None] = mapped_column(String(64))
    #: The repaired roster-solution/1 document, with `changes` and `repair`.
    result: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    #: The version number the accepted repair was published as.
    accepted_number: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    roster: Mapped[Roster] = relationship()
    absence: Mapped[Absence | None] = relationship()
    volunteer: Mapped[Volunteer] = relationship()

    @property
    def changes(self) -> list[dict[str, Any]]:
        return list((self.result or {}).get("changes") or [])

    @property
    def uncovered(self) -> list[dict[str, Any]]:
        return list(((self.result or {}).get("repair") or {}).get("uncovered") or [])
