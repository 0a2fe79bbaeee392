"""Feed tokens: the secret in a calendar subscription URL, stored only as its hash.

A token belongs to a volunteer (their own shifts) or to a site (every shift there, for
site leaders). Issuing a new token revokes the previous one at once; a revoked token
never resolves again. The token itself is never stored: the row keeps its SHA-256 (for
lookup) and a random salt from which the server, holding the secret key, can derive the
same token again to show the link (see `scheduler.calendars.services.derive_token`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from scheduler.db import Base, UTCDateTime, utcnow

OWNER_KINDS = ("volunteer", "site")


class FeedToken(Base):
    """One issued feed token: its owner, hash, salt and life (created, last used, revoked)."""

    __tablename__ = "feed_tokens"
    __table_args__ = (
        CheckConstraint("(volunteer_id IS NULL) <> (site_id IS NULL)", name="one_owner"),
        # At most one live token per owner: issuing revokes the previous one first.
        Index("uq_feed_tokens_live_volunteer", "volunteer_id", unique=True,
              sqlite_where=Column("revoked_at").is_(None),
              postgresql_where=Column("revoked_at").is_(None)),
        Index("uq_feed_tokens_live_site", "site_id", unique=True,
              sqlite_where=Column("revoked_at").is_(None),
              postgresql_where=Column("revoked_at").is_(None)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Hex SHA-256 of the token: the only form in which the token reaches the database.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Hex of 16 random bytes; with the server's secret key it gives the token back.
    salt: Mapped[str] = mapped_column(String(32))
    volunteer_id: Mapped[int | None] = mapped_column(
        ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int | None] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    @property
    def owner_kind(self) -> str:
        return "volunteer" if self.volunteer_id is not None else "site"
