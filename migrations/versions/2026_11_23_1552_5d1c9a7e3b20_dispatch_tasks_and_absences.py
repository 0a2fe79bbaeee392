"""dispatch: task types, tasks, task offers; absences

Revision ID: 5d1c9a7e3b20
Revises: 2747f05453b4
Created: 2026-11-23 15:52:33.096263+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5d1c9a7e3b20'
down_revision: str | Sequence[str] | None = '2747f05453b4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('task_types',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('people', sa.Integer(), nullable=False),
    sa.Column('requires', sa.JSON(), nullable=False),
    sa.Column('default_minutes', sa.Integer(), nullable=False),
    sa.Column('default_urgency', sa.String(length=8), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("default_urgency IN ('urgent', 'today', 'normal')", name=op.f('ck_task_types_default_urgency')),
    sa.CheckConstraint('default_minutes >= 1', name=op.f('ck_task_types_default_minutes')),
    sa.CheckConstraint('people >= 1', name=op.f('ck_task_types_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_types')),
    sa.UniqueConstraint('code', name=op.f('uq_task_types_code'))
    )
    op.create_table('absences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('from_date', sa.Date(), nullable=False),
    sa.Column('from_shift_id', sa.Integer(), nullable=True),
    sa.Column('to_date', sa.Date(), nullable=False),
    sa.Column('to_shift_id', sa.Integer(), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=12), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("reason IN ('sick', 'quarantined', 'personal')", name=op.f('ck_absences_reason')),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_absences_window')),
    sa.CheckConstraint('to_date >= from_date', name=op.f('ck_absences_dates')),
    sa.ForeignKeyConstraint(['from_shift_id'], ['shift_templates.id'], name=op.f('fk_absences_from_shift_id_shift_templates'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['to_shift_id'], ['shift_templates.id'], name=op.f('fk_absences_to_shift_id_shift_templates'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_absences_volunteer_id_volunteers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_absences'))
    )
    with op.batch_alter_table('absences', schema=None) as batch_op:
        batch_op.create_index('ix_absences_starts_at_ends_at', ['starts_at', 'ends_at'], unique=False)
        batch_op.create_index('ix_absences_volunteer_id_starts_at', ['volunteer_id', 'starts_at'], unique=False)

    op.create_table('tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('type_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('building', sa.String(length=100), nullable=False),
    sa.Column('room', sa.String(length=100), nullable=False),
    sa.Column('requester_name', sa.String(length=100), nullable=False),
    sa.Column('requester_phone', sa.String(length=16), nullable=False),
    sa.Column('urgency', sa.String(length=8), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('people', sa.Integer(), nullable=False),
    sa.Column('requires', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('open', 'offered', 'accepted', 'in_progress', 'done', 'failed', 'cancelled')", name=op.f('ck_tasks_status')),
    sa.CheckConstraint("urgency IN ('urgent', 'today', 'normal')", name=op.f('ck_tasks_urgency')),
    sa.CheckConstraint('duration_minutes >= 1', name=op.f('ck_tasks_duration_minutes')),
    sa.CheckConstraint('people >= 1', name=op.f('ck_tasks_people')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_tasks_site_id_sites'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['type_id'], ['task_types.id'], name=op.f('fk_tasks_type_id_task_types'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks'))
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tasks_site_id'), ['site_id'], unique=False)
        batch_op.create_index('ix_tasks_status_due_at', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_type_id'), ['type_id'], unique=False)

    op.create_table('task_offers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('offered_by', sa.String(length=200), nullable=False),
    sa.Column('offered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'accepted', 'declined', 'expired', 'withdrawn')", name=op.f('ck_task_offers_state')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_task_offers_task_id_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_task_offers_volunteer_id_volunteers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_offers'))
    )
    with op.batch_alter_table('task_offers', schema=None) as batch_op:
        batch_op.create_index('ix_task_offers_state_expires_at', ['state', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_task_offers_task_id'), ['task_id'], unique=False)
        batch_op.create_index('ix_task_offers_volunteer_id_state', ['volunteer_id', 'state'], unique=False)
        batch_op.create_index('uq_task_offers_live_task_volunteer', ['task_id', 'volunteer_id'], unique=True, sqlite_where=sa.text("state IN ('pending', 'accepted')"), postgresql_where=sa.text("state IN ('pending', 'accepted')"))



def downgrade() -> None:
    with op.batch_alter_table('task_offers', schema=None) as batch_op:
        batch_op.drop_index('uq_task_offers_live_task_volunteer', sqlite_where=sa.text("state IN ('pending', 'accepted')"), postgresql_where=sa.text("state IN ('pending', 'accepted')"))
        batch_op.drop_index('ix_task_offers_volunteer_id_state')
        batch_op.drop_index(batch_op.f('ix_task_offers_task_id'))
        batch_op.drop_index('ix_task_offers_state_expires_at')

    op.drop_table('task_offers')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tasks_type_id'))
        batch_op.drop_index('ix_tasks_status_due_at')
        batch_op.drop_index(batch_op.f('ix_tasks_site_id'))

    op.drop_table('tasks')
    with op.batch_alter_table('absences', schema=None) as batch_op:
        batch_op.drop_index('ix_absences_volunteer_id_starts_at')
        batch_op.drop_index('ix_absences_starts_at_ends_at')

    op.drop_table('absences')
    op.drop_table('task_types')
