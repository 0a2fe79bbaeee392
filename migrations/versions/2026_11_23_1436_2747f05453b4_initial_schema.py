"""initial schema

Revision ID: 2747f05453b4
Revises: (none)
Created: 2026-11-23 14:36:17.918553+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '2747f05453b4'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=True),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    op.create_index(op.f('ix_audit_events_actor'), 'audit_events', ['actor'], unique=False)
    op.create_index(op.f('ix_audit_events_at'), 'audit_events', ['at'], unique=False)
    op.create_index('ix_audit_events_entity_entity_id', 'audit_events', ['entity', 'entity_id'], unique=False)

    op.create_table('rule_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rule_sets'))
    )
    op.create_table('shift_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('start', sa.Time(), nullable=False),
    sa.Column('end', sa.Time(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shift_templates')),
    sa.UniqueConstraint('code', name=op.f('uq_shift_templates_code'))
    )
    op.create_table('sites',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('checkpoint', 'building', 'hotel', 'testing', 'other')", name=op.f('ck_sites_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites')),
    sa.UniqueConstraint('code', name=op.f('uq_sites_code'))
    )
    op.create_table('volunteers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('phone', sa.String(length=16), nullable=True),
    sa.Column('unit', sa.String(length=200), nullable=False),
    sa.Column('skills', sa.JSON(), nullable=False),
    sa.Column('party_member', sa.Boolean(), nullable=False),
    sa.Column('sites_restricted', sa.Boolean(), nullable=False),
    sa.Column('max_shifts', sa.Integer(), nullable=True),
    sa.Column('min_shifts', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'absent', 'left')", name=op.f('ck_volunteers_status')),
    sa.CheckConstraint('max_shifts IS NULL OR max_shifts >= 0', name=op.f('ck_volunteers_max_shifts')),
    sa.CheckConstraint('min_shifts IS NULL OR min_shifts >= 0', name=op.f('ck_volunteers_min_shifts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volunteers')),
    sa.UniqueConstraint('code', name=op.f('uq_volunteers_code')),
    sa.UniqueConstraint('phone', name=op.f('uq_volunteers_phone'))
    )
    op.create_index(op.f('ix_volunteers_status'), 'volunteers', ['status'], unique=False)

    op.create_table('posts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_posts_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posts')),
    sa.UniqueConstraint('code', name=op.f('uq_posts_code'))
    )
    op.create_index(op.f('ix_posts_site_id'), 'posts', ['site_id'], unique=False)

    op.create_table('rosters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('start', sa.Date(), nullable=False),
    sa.Column('days', sa.Integer(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('coverage_weight', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('rule_set_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('planning', 'published', 'archived')", name=op.f('ck_rosters_status')),
    sa.CheckConstraint('coverage_weight >= 0', name=op.f('ck_rosters_coverage_weight')),
    sa.CheckConstraint('days >= 1', name=op.f('ck_rosters_days')),
    sa.ForeignKeyConstraint(['rule_set_id'], ['rule_sets.id'], name=op.f('fk_rosters_rule_set_id_rule_sets'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rosters'))
    )
    op.create_index(op.f('ix_rosters_rule_set_id'), 'rosters', ['rule_set_id'], unique=False)

    op.create_table('rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule_set_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=True),
    sa.Column('applies_to', sa.String(length=100), nullable=True),
    sa.CheckConstraint('weight IS NULL OR weight >= 0', name=op.f('ck_rules_weight')),
    sa.ForeignKeyConstraint(['rule_set_id'], ['rule_sets.id'], name=op.f('fk_rules_rule_set_id_rule_sets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rules')),
    sa.UniqueConstraint('rule_set_id', 'position', name=op.f('uq_rules_rule_set_id_position'))
    )
    op.create_table('unavailability',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('shift_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['shift_id'], ['shift_templates.id'], name=op.f('fk_unavailability_shift_id_shift_templates'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_unavailability_volunteer_id_volunteers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unavailability')),
    sa.UniqueConstraint('volunteer_id', 'date', 'shift_id', name=op.f('uq_unavailability_volunteer_id_date_shift_id'))
    )
    op.create_index(op.f('ix_unavailability_date'), 'unavailability', ['date'], unique=False)

    op.create_table('volunteer_sites',
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_volunteer_sites_site_id_sites'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_volunteer_sites_volunteer_id_volunteers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('volunteer_id', 'site_id', name=op.f('pk_volunteer_sites'))
    )
    op.create_index('ix_volunteer_sites_site_id', 'volunteer_sites', ['site_id'], unique=False)

    op.create_table('demand',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('roster_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('shift_id', sa.Integer(), nullable=False),
    sa.Column('min', sa.Integer(), nullable=False),
    sa.Column('max', sa.Integer(), nullable=False),
    sa.Column('requires', sa.JSON(), nullable=False),
    sa.Column('dates', sa.JSON(), nullable=True),
    sa.CheckConstraint('max >= min', name=op.f('ck_demand_max')),
    sa.CheckConstraint('min >= 0', name=op.f('ck_demand_min')),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], name=op.f('fk_demand_post_id_posts'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['roster_id'], ['rosters.id'], name=op.f('fk_demand_roster_id_rosters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shift_id'], ['shift_templates.id'], name=op.f('fk_demand_shift_id_shift_templates'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_demand')),
    sa.UniqueConstraint('roster_id', 'position', name=op.f('uq_demand_roster_id_position'))
    )
    op.create_index('ix_demand_roster_id_post_id_shift_id', 'demand', ['roster_id', 'post_id', 'shift_id'], unique=False)

    op.create_table('preferences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('shift_id', sa.Integer(), nullable=True),
    sa.Column('post_id', sa.Integer(), nullable=True),
    sa.Column('want', sa.Boolean(), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.CheckConstraint('weight >= 0', name=op.f('ck_preferences_weight')),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], name=op.f('fk_preferences_post_id_posts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shift_id'], ['shift_templates.id'], name=op.f('fk_preferences_shift_id_shift_templates'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_preferences_volunteer_id_volunteers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_preferences'))
    )
    op.create_index(op.f('ix_preferences_volunteer_id'), 'preferences', ['volunteer_id'], unique=False)

    op.create_table('solve_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('roster_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=True),
    sa.Column('requested_by', sa.String(length=200), nullable=False),
    sa.Column('time_limit', sa.Float(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('solver_status', sa.String(length=16), nullable=True),
    sa.Column('objective', sa.Float(), nullable=True),
    sa.Column('bound', sa.Float(), nullable=True),
    sa.Column('elapsed', sa.Float(), nullable=True),
    sa.Column('coverage', sa.Float(), nullable=True),
    sa.Column('progress', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'finished', 'failed')", name=op.f('ck_solve_runs_status')),
    sa.ForeignKeyConstraint(['roster_id'], ['rosters.id'], name=op.f('fk_solve_runs_roster_id_rosters'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_solve_runs'))
    )
    op.create_index(op.f('ix_solve_runs_job_id'), 'solve_runs', ['job_id'], unique=False)
    op.create_index('ix_solve_runs_roster_id_created_at', 'solve_runs', ['roster_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_solve_runs_status'), 'solve_runs', ['status'], unique=False)
    op.create_index('uq_solve_runs_active_roster', 'solve_runs', ['roster_id'], unique=True, sqlite_where=sa.text("status IN ('queued', 'running')"), postgresql_where=sa.text("status IN ('queued', 'running')"))

    op.create_table('roster_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('roster_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('published_by', sa.String(length=200), nullable=True),
    sa.Column('solve_run_id', sa.Integer(), nullable=True),
    sa.Column('solver_status', sa.String(length=16), nullable=True),
    sa.Column('objective', sa.Float(), nullable=True),
    sa.Column('bound', sa.Float(), nullable=True),
    sa.Column('unmet', sa.JSON(), nullable=False),
    sa.Column('penalties', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint("state IN ('draft', 'published', 'superseded')", name=op.f('ck_roster_versions_state')),
    sa.ForeignKeyConstraint(['roster_id'], ['rosters.id'], name=op.f('fk_roster_versions_roster_id_rosters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['solve_run_id'], ['solve_runs.id'], name=op.f('fk_roster_versions_solve_run_id_solve_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_versions')),
    sa.UniqueConstraint('roster_id', 'number', name=op.f('uq_roster_versions_roster_id_number'))
    )
    op.create_index(op.f('ix_roster_versions_solve_run_id'), 'roster_versions', ['solve_run_id'], unique=False)
    op.create_index('uq_roster_versions_published_roster', 'roster_versions', ['roster_id'], unique=True, sqlite_where=sa.text("state = 'published'"), postgresql_where=sa.text("state = 'published'"))

    op.create_table('assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=32), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('shift_id', sa.Integer(), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.CheckConstraint('revision >= 1', name=op.f('ck_assignments_revision')),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], name=op.f('fk_assignments_post_id_posts'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['shift_id'], ['shift_templates.id'], name=op.f('fk_assignments_shift_id_shift_templates'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['version_id'], ['roster_versions.id'], name=op.f('fk_assignments_version_id_roster_versions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_assignments_volunteer_id_volunteers'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignments')),
    sa.UniqueConstraint('version_id', 'uid', name=op.f('uq_assignments_version_id_uid')),
    sa.UniqueConstraint('version_id', 'volunteer_id', 'date', 'shift_id', name=op.f('uq_assignments_version_id_volunteer_id_date_shift_id'))
    )
    op.create_index(op.f('ix_assignments_post_id'), 'assignments', ['post_id'], unique=False)
    op.create_index(op.f('ix_assignments_uid'), 'assignments', ['uid'], unique=False)
    op.create_index('ix_assignments_version_id_date', 'assignments', ['version_id', 'date'], unique=False)
    op.create_index(op.f('ix_assignments_volunteer_id'), 'assignments', ['volunteer_id'], unique=False)



def downgrade() -> None:
    op.drop_index(op.f('ix_assignments_volunteer_id'), table_name='assignments')
    op.drop_index('ix_assignments_version_id_date', table_name='assignments')
    op.drop_index(op.f('ix_assignments_uid'), table_name='assignments')
    op.drop_index(op.f('ix_assignments_post_id'), table_name='assignments')

    op.drop_table('assignments')
    op.drop_index('uq_roster_versions_published_roster', table_name='roster_versions')
    op.drop_index(op.f('ix_roster_versions_solve_run_id'), table_name='roster_versions')

    op.drop_table('roster_versions')
    op.drop_index('uq_solve_runs_active_roster', table_name='solve_runs')
    op.drop_index(op.f('ix_solve_runs_status'), table_name='solve_runs')
    op.drop_index('ix_solve_runs_roster_id_created_at', table_name='solve_runs')
    op.drop_index(op.f('ix_solve_runs_job_id'), table_name='solve_runs')

    op.drop_table('solve_runs')
    op.drop_index(op.f('ix_preferences_volunteer_id'), table_name='preferences')

    op.drop_table('preferences')
    op.drop_index('ix_demand_roster_id_post_id_shift_id', table_name='demand')

    op.drop_table('demand')
    op.drop_index('ix_volunteer_sites_site_id', table_name='volunteer_sites')

    op.drop_table('volunteer_sites')
    op.drop_index(op.f('ix_unavailability_date'), table_name='unavailability')

    op.drop_table('unavailability')
    op.drop_table('rules')
    op.drop_index(op.f('ix_rosters_rule_set_id'), table_name='rosters')

    op.drop_table('rosters')
    op.drop_index(op.f('ix_posts_site_id'), table_name='posts')

    op.drop_table('posts')
    op.drop_index(op.f('ix_volunteers_status'), table_name='volunteers')

    op.drop_table('volunteers')
    op.drop_table('sites')
    op.drop_table('shift_templates')
    op.drop_table('rule_sets')
    op.drop_index('ix_audit_events_entity_entity_id', table_name='audit_events')
    op.drop_index(op.f('ix_audit_events_at'), table_name='audit_events')
    op.drop_index(op.f('ix_audit_events_actor'), table_name='audit_events')

    op.drop_table('audit_events')
