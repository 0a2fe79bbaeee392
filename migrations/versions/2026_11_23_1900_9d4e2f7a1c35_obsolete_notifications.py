"""obsolete notifications: a task offer notice not sent because the offer is over

Revision ID: 9d4e2f7a1c35
Revises: 3f8b2c6d1e47
Created: 2026-11-23 19:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '9d4e2f7a1c35'
down_revision: str | Sequence[str] | None = '3f8b2c6d1e47'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "status IN ('pending', 'sending', 'sent', 'failed')"
_NEW = "status IN ('pending', 'sending', 'sent', 'failed', 'obsolete')"


def _status_check(condition: str) -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_notifications_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_notifications_status'), condition)


def upgrade() -> None:
    _status_check(_NEW)


def downgrade() -> None:
    # Obsolete notices were never sent: failed is the nearest old status that keeps them.
    op.execute("UPDATE notifications SET status = 'failed' WHERE status = 'obsolete'")
    _status_check(_OLD)
