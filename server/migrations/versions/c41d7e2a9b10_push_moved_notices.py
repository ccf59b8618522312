"""push: 'moved' notices (an event's time changed after a reminder went out)

Revision ID: c41d7e2a9b10
Revises: ab23ff9fca39
Create Date: 2026-11-21 04:05:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c41d7e2a9b10'
down_revision = 'ab23ff9fca39'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('push_deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_push_deliveries_kind'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_push_deliveries_kind'),
                                         "kind in ('reminder','cancelled','moved')")


def downgrade():
    # The notices of moves have no place in the older schema: they go with it.
    op.execute("DELETE FROM push_deliveries WHERE kind = 'moved'")
    with op.batch_alter_table('push_deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_push_deliveries_kind'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_push_deliveries_kind'), "kind in ('reminder','cancelled')")
