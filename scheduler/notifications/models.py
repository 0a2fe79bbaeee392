"""The notification outbox: one row per message to one volunteer, sent at most once.

`dedup_key` is unique, so a producer that runs twice (a reminder pass, a retried publish)
cannot create the same notice twice; it is also handed to the gateway, which may use it to
drop a duplicate delivery (see `scheduler.notifications.services` on at-least-once).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from scheduler.db import Base, UTCDateTime, utcnow
from scheduler.models import Volunteer

NOTIFICATION_KINDS = ("task_offer", "shift_change", "shift_reminder")
#: pending: waiting for `send_after`; sending: claimed by a worker (since `claimed_at`);
#: sent; failed: gave up after `MAX_ATTEMPTS` (a secretary may retry it); obsolete: not
#: sent because what it announced is over (a task offer expired, withdrawn or answered
#: before its turn came; the reason is in `last_error`).
NOTIFICATION_STATUSES = ("pending", "sending", "sent", "failed", "obsolete")


class Notification(Base):
    """A message to a volunteer's phone (任务派单、排班变动、上岗提醒)."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("kind IN ('task_offer', 'shift_change', 'shift_reminder')",
                        name="kind"),
        CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed', 'obsolete')",
                        name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index("ix_notifications_status_send_after", "status", "send_after"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(
        ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    #: ``offer:<offer id>``, ``change:<version id>:<volunteer id>``,
    #: ``remind:<assignment uid>:<revision>:<lead minutes>``.
    dedup_key: Mapped[str] = mapped_column(String(120), unique=True)
    text_zh: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    send_after: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    volunteer: Mapped[Volunteer] = relationship()
