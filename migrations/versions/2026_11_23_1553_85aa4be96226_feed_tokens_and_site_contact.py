"""feed tokens and site contact

Calendar feed tokens (hash and salt only) and the address, street (街道) and contact of
a site, shown in calendar events.

Revision ID: 85aa4be96226
Revises: 8edcb6a6f14e
Created: 2026-11-23 15:53:27.607345+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '85aa4be96226'
down_revision: str | Sequence[str] | None = '8edcb6a6f14e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('feed_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('salt', sa.String(length=32), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=True),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('(volunteer_id IS NULL) <> (site_id IS NULL)', name=op.f('ck_feed_tokens_one_owner')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_feed_tokens_site_id_sites'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_feed_tokens_volunteer_id_volunteers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_feed_tokens_token_hash'))
    )
    with op.batch_alter_table('feed_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feed_tokens_site_id'), ['site_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feed_tokens_volunteer_id'), ['volunteer_id'], unique=False)
        batch_op.create_index('uq_feed_tokens_live_site', ['site_id'], unique=True, sqlite_where=sa.text('revoked_at IS NULL'), postgresql_where=sa.text('revoked_at IS NULL'))
        batch_op.create_index('uq_feed_tokens_live_volunteer', ['volunteer_id'], unique=True, sqlite_where=sa.text('revoked_at IS NULL'), postgresql_where=sa.text('revoked_at IS NULL'))

    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('street', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('contact_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('contact_phone', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_sites_street'), ['street'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sites_street'))
        batch_op.drop_column('contact_phone')
        batch_op.drop_column('contact_name')
        batch_op.drop_column('street')
        batch_op.drop_column('address')

    with op.batch_alter_table('feed_tokens', schema=None) as batch_op:
        batch_op.drop_index('uq_feed_tokens_live_volunteer', sqlite_where=sa.text('revoked_at IS NULL'), postgresql_where=sa.text('revoked_at IS NULL'))
        batch_op.drop_index('uq_feed_tokens_live_site', sqlite_where=sa.text('revoked_at IS NULL'), postgresql_where=sa.text('revoked_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_feed_tokens_volunteer_id'))
        batch_op.drop_index(batch_op.f('ix_feed_tokens_site_id'))

    op.drop_table('feed_tokens')
