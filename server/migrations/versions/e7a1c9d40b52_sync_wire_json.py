"""sync wire json: each synced record's pull change stored as JSON text

Revision ID: e7a1c9d40b52
Revises: c41d7e2a9b10
Create Date: 2026-11-21 04:00:00

Nullable and empty at first: a record without a current text (wire_seq != seq) is serialized from its columns
at pull time, so existing databases need no backfill to stay correct.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e7a1c9d40b52'
down_revision = 'c41d7e2a9b10'
branch_labels = None
depends_on = None

SYNCED = ('sites', 'actions', 'households', 'residents', 'engagements', 'visits', 'events', 'attendances',
          'head_counts')


def upgrade():
    for table in SYNCED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('wire', sa.Text(), nullable=True))
            batch_op.add_column(sa.Column('wire_seq', sa.BigInteger(), nullable=True))
            if table == 'residents':
                batch_op.add_column(sa.Column('wire_restricted', sa.Text(), nullable=True))


def downgrade():
    for table in SYNCED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table == 'residents':
                batch_op.drop_column('wire_restricted')
            batch_op.drop_column('wire_seq')
            batch_op.drop_column('wire')
