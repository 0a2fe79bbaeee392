"""repair proposals: a re-planned roster around an absence, waiting for a decision

Revision ID: 8edcb6a6f14e
Revises: b7e1a9c4d2f0
Created: 2026-11-23 16:27:44.580428+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '8edcb6a6f14e'
down_revision: str | Sequence[str] | None = 'b7e1a9c4d2f0'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('repair_proposals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('roster_id', sa.Integer(), nullable=False),
    sa.Column('base_number', sa.Integer(), nullable=False),
    sa.Column('absence_id', sa.Integer(), nullable=True),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('time_limit', sa.Float(), nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('accepted_number', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'ready', 'failed', 'accepted', 'rejected', 'stale')", name=op.f('ck_repair_proposals_status')),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_repair_proposals_window')),
    sa.ForeignKeyConstraint(['absence_id'], ['absences.id'], name=op.f('fk_repair_proposals_absence_id_absences'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['roster_id'], ['rosters.id'], name=op.f('fk_repair_proposals_roster_id_rosters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_repair_proposals_volunteer_id_volunteers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repair_proposals'))
    )
    with op.batch_alter_table('repair_proposals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repair_proposals_absence_id'), ['absence_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_repair_proposals_roster_id'), ['roster_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('repair_proposals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repair_proposals_roster_id'))
        batch_op.drop_index(batch_op.f('ix_repair_proposals_absence_id'))

    op.drop_table('repair_proposals')
