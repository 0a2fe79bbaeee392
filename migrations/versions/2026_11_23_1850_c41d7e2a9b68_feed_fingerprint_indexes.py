"""feed fingerprint indexes: every feed poll reads max(updated_at) of these tables

Each poll of a calendar feed computes the fingerprint of the data feeds are built from
(scheduler.calendars.services._FINGERPRINT) in its token lookup; with these indexes each
max() reads one index entry instead of the whole table (volunteers grow into thousands).

Revision ID: c41d7e2a9b68
Revises: 9d4e2f7a1c35
Created: 2026-11-23 18:50:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = 'c41d7e2a9b68'
down_revision: str | Sequence[str] | None = '9d4e2f7a1c35'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (("ix_sites_updated_at", "sites", "updated_at"),
           ("ix_posts_updated_at", "posts", "updated_at"),
           ("ix_volunteers_updated_at", "volunteers", "updated_at"),
           ("ix_roster_versions_published_at", "roster_versions", "published_at"))


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column], unique=False)


def downgrade() -> None:
    for name, table, _column in reversed(INDEXES):
        op.drop_index(name, table_name=table)
