"""solve run parts: child runs of a split solve (parent_id, part, problem, solution)

Revision ID: 5c1e7a9d3b20
Revises: 85aa4be96226
Created: 2026-11-23 16:12:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5c1e7a9d3b20'
down_revision: str | Sequence[str] | None = '85aa4be96226'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "status IN ('queued', 'running')"


def upgrade() -> None:
    with op.batch_alter_table('solve_runs') as batch:
        batch.add_column(sa.Column('parent_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('part', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('problem', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('solution', sa.JSON(), nullable=True))
        batch.create_foreign_key(batch.f('fk_solve_runs_parent_id_solve_runs'), 'solve_runs',
                                 ['parent_id'], ['id'], ondelete='CASCADE')
        batch.create_index(batch.f('ix_solve_runs_parent_id'), ['parent_id'], unique=False)
    # Child runs do not count as the roster's one active solve.
    op.drop_index('uq_solve_runs_active_roster', table_name='solve_runs')
    op.create_index('uq_solve_runs_active_roster', 'solve_runs', ['roster_id'], unique=True,
                    sqlite_where=sa.text(f"{ACTIVE} AND parent_id IS NULL"),
                    postgresql_where=sa.text(f"{ACTIVE} AND parent_id IS NULL"))


def downgrade() -> None:
    op.execute("DELETE FROM solve_runs WHERE parent_id IS NOT NULL")
    op.drop_index('uq_solve_runs_active_roster', table_name='solve_runs')
    op.create_index('uq_solve_runs_active_roster', 'solve_runs', ['roster_id'], unique=True,
                    sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))
    with op.batch_alter_table('solve_runs') as batch:
        batch.drop_index(batch.f('ix_solve_runs_parent_id'))
        batch.drop_constraint(batch.f('fk_solve_runs_parent_id_solve_runs'), type_='foreignkey')
        batch.drop_column('solution')
        batch.drop_column('problem')
        batch.drop_column('part')
        batch.drop_column('parent_id')
