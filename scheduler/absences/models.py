"""An absence: volunteer, from (date, shift) to (date, shift), and why.

The window is stored as the coordinator said it (dates and shift templates) and, once,
as UTC instants (`starts_at`, `ends_at`): every reader (dispatch eligibility, the repair,
the status refresh) compares instants and never re-derives night-shift arithmetic.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from scheduler.db import Base, UTCDateTime, utcnow
from scheduler.models import ShiftTemplate, Volunteer
from solver.i18n import Text as Phrase

ABSENCE_REASONS = ("sick", "quarantined", "personal")
REASON_NAMES: dict[str, Phrase] = {
    "sick": Phrase("病假", "sick"),
    "quarantined": Phrase("隔离", "quarantined"),
    "personal": Phrase("事假", "personal"),
}


class Absence(Base):
    """A volunteer's absence (缺勤登记); `from_shift`/`to_shift` NULL: the whole date."""

    __tablename__ = "absences"
    __table_args__ = (
        CheckConstraint("reason IN ('sick', 'quarantined', 'personal')", name="reason"),
        CheckConstraint("ends_at > starts_at", name="window"),
        CheckConstraint("to_date >= from_date", name="dates"),
        Index("ix_absences_volunteer_id_starts_at", "volunteer_id", "starts_at"),
        Index("ix_absences_starts_at_ends_at", "starts_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    from_date: Mapped[dt.date] = mapped_column(Date())
    from_shift_id: Mapped[int | None] = mapped_column(
        ForeignKey("shift_templates.id", ondelete="RESTRICT"))
    to_date: Mapped[dt.date] = mapped_column(Date())
    to_shift_id: Mapped[int | None] = mapped_column(
        ForeignKey("shift_templates.id", ondelete="RESTRICT"))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(12))
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    volunteer: Mapped[Volunteer] = relationship()
    from_shift: Mapped[ShiftTemplate | None] = relationship(foreign_keys=[from_shift_id])
    to_shift: Mapped[ShiftTemplate | None] = relationship(foreign_keys=[to_shift_id])

    def covers(self, instant: dt.datetime) -> bool:
        """Whether the volunteer is absent at `instant`."""
        return self.starts_at <= instant < self.ends_at
