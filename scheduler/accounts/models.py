"""Users (coordinators, secretaries, volunteers), one-time codes and login attempts.

A coordinator or secretary logs in with a username and a password (argon2id hash); a
volunteer logs in with the phone number of their `Volunteer` row and a one-time code, and
their `User` row is created on first login. `session_generation` is copied into the
session cookie at login: bumping it (logout, disable, password change) ends every session
of that user at the next request. A secretary sees only the sites in `user_sites`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from scheduler.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from scheduler.models import Site, Volunteer

ROLES = ("coordinator", "secretary", "volunteer")
#: Roles that log in with a username and a password.
STAFF_ROLES = ("coordinator", "secretary")
LOGIN_KINDS = ("password", "otp_request", "otp_verify")

user_sites = Table(
    "user_sites",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_user_sites_site_id", "site_id"),
)


class User(Base):
    """Someone who logs in: a coordinator, a secretary (scoped to sites) or a volunteer."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('coordinator', 'secretary', 'volunteer')", name="role"),
        # A volunteer account is its Volunteer; a staff account has a username.
        CheckConstraint("(role = 'volunteer') = (volunteer_id IS NOT NULL)",
                        name="volunteer_link"),
        CheckConstraint("role = 'volunteer' OR username IS NOT NULL", name="username"),
        CheckConstraint("session_generation >= 0", name="session_generation"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str | None] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(12))
    volunteer_id: Mapped[int | None] = mapped_column(
        ForeignKey("volunteers.id", ondelete="CASCADE"), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    # The branch (支部) a secretary serves; free text shown on their pages.
    branch: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    session_generation: Mapped[int] = mapped_column(default=0)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow,
                                                    onupdate=utcnow)

    volunteer: Mapped[Volunteer | None] = relationship("Volunteer")
    sites: Mapped[list[Site]] = relationship("Site", secondary=user_sites, order_by="Site.id")

    @property
    def name(self) -> str:
        """What the audit trail and the page header call this user."""
        if self.username:
            return self.username
        return f"volunteer:{self.volunteer_id}"


class OneTimeCode(Base):
    """A login code sent to a phone: stored hashed, short-lived, few attempts."""

    __tablename__ = "one_time_codes"
    __table_args__ = (Index("ix_one_time_codes_phone_created_at", "phone", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class LoginAttempt(Base):
    """One login or code request, kept to throttle guessing across all web workers."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        CheckConstraint("kind IN ('password', 'otp_request', 'otp_verify')", name="kind"),
        Index("ix_login_attempts_account_at", "account", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(12))
    # A username or an E.164 phone number, as typed (normalised).
    account: Mapped[str] = mapped_column(String(100))
    ip: Mapped[str] = mapped_column(String(64))
    success: Mapped[bool] = mapped_column(default=False)
