"""dashboard: covering indexes for the engaged and weekly-visits aggregates

The dashboard reads every active engagement's resident (who it counts as) and every visit of the period by week:
with these two indexes both are read from the index alone. The visits index replaces ix_visits_visited_at (same
leading column), so a push still maintains as many visit indexes as before.

Revision ID: f3b8d2a61c07
Revises: e7a1c9d40b52
Create Date: 2026-11-21 04:15:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'f3b8d2a61c07'
down_revision = 'e7a1c9d40b52'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.create_index('ix_residents_person', ['id', 'deleted', 'duplicate_of'], unique=False)
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.create_index('ix_visits_week', ['visited_at', 'deleted', 'outcome', 'site_id'], unique=False)
        batch_op.drop_index('ix_visits_visited_at')


def downgrade():
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.create_index('ix_visits_visited_at', ['visited_at'], unique=False)
        batch_op.drop_index('ix_visits_week')
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.drop_index('ix_residents_person')
