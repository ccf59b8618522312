"""sync: push receipts, so that a push sent again byte for byte is answered without being decided again

A phone that lost the answer to a push sends the same request again. Its receipt (the sha256 of the request's
bytes, the device, the numbers it carried) lets the server answer it from the mutation log without parsing,
hashing and checking 500 mutations again. Purged with the mutation log (RETENTION_MUTATION_LOG_DAYS).

Revision ID: a1d4c6e8f209
Revises: f3b8d2a61c07
Create Date: 2026-11-21 09:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a1d4c6e8f209'
down_revision = 'f3b8d2a61c07'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'push_receipts',
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('client_id', sa.Uuid(), nullable=False),
        sa.Column('first_n', sa.BigInteger(), nullable=False),
        sa.Column('last_n', sa.BigInteger(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['devices.client_id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('digest'),
    )
    with op.batch_alter_table('push_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_push_receipts_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_push_receipts_received_at'), ['received_at'], unique=False)


def downgrade():
    with op.batch_alter_table('push_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_push_receipts_received_at'))
        batch_op.drop_index(batch_op.f('ix_push_receipts_client_id'))
    op.drop_table('push_receipts')
