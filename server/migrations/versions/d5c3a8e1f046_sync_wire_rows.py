"""sync wire rows: the stored pull texts become compact rows (docs/PROTOCOL.md, "Page format 2")

Revision ID: d5c3a8e1f046
Revises: b7e2f0c4d913
Create Date: 2026-11-21 14:00:00

The texts stored beside each synced record were format 1 change objects; pages are now built from rows
[entity, id, seq, values]. A text is only used while wire_seq = seq, so clearing wire_seq (and the texts) is the
whole migration, both ways: each record is serialized from its columns at its next pull, and its text stored again
in the format of the code that pulls. Old workers must be stopped before the upgrade (docker-compose.yml's web service runs it before gunicorn starts):
one still running would store object texts that the new code would splice in as rows.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd5c3a8e1f046'
down_revision = 'b7e2f0c4d913'
branch_labels = None
depends_on = None

SYNCED = ('sites', 'actions', 'households', 'residents', 'engagements', 'visits', 'events', 'attendances',
          'head_counts')


def _clear_texts():
    for table in SYNCED:
        t = sa.table(table, sa.column('wire'), sa.column('wire_seq'),
                     *([sa.column('wire_restricted')] if table == 'residents' else []))
        values = {'wire': None, 'wire_seq': None}
        if table == 'residents':
            values['wire_restricted'] = None
        op.execute(t.update().where(t.c.wire_seq.isnot(None)).values(values))


def upgrade():
    _clear_texts()


def downgrade():
    _clear_texts()
