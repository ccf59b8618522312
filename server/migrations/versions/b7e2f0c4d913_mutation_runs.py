"""sync: the mutation log as one row per push (a run of consecutive numbers) instead of one row per mutation

A push of 500 mutations wrote 500 log rows, each checked against its device and its user by PostgreSQL's
foreign-key triggers (~7 ms of a ~50 ms push). A run row holds, for first_n..last_n, [op, status, body hash] as
JSON; the log's user was the device's owner, already on the device row, and goes. Existing entries become runs of
one; the downgrade spreads runs back into one row per mutation.

Revision ID: b7e2f0c4d913
Revises: a1d4c6e8f209
Create Date: 2026-11-21 11:40:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7e2f0c4d913'
down_revision = 'a1d4c6e8f209'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'mutation_runs',
        sa.Column('client_id', sa.Uuid(), nullable=False),
        sa.Column('last_n', sa.BigInteger(), nullable=False),
        sa.Column('first_n', sa.BigInteger(), nullable=False),
        sa.Column('entries', sa.JSON(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['devices.client_id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('client_id', 'last_n'),
    )
    with op.batch_alter_table('mutation_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mutation_runs_received_at'), ['received_at'], unique=False)
    array = "json_build_array" if op.get_bind().dialect.name == "postgresql" else "json_array"
    op.execute(f"INSERT INTO mutation_runs (client_id, last_n, first_n, entries, received_at) "
               f"SELECT client_id, n, n, {array}({array}(op, status, body_hash)), received_at FROM mutation_log")
    op.drop_table('mutation_log')


def downgrade():
    op.create_table(
        'mutation_log',
        sa.Column('client_id', sa.Uuid(), nullable=False),
        sa.Column('n', sa.BigInteger(), nullable=False),
        sa.Column('body_hash', sa.String(length=64), nullable=False),
        sa.Column('op', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['devices.client_id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('client_id', 'n'),
    )
    columns = "INSERT INTO mutation_log (client_id, n, op, status, body_hash, user_id, received_at) "
    if op.get_bind().dialect.name == "postgresql":
        op.execute(columns + "SELECT r.client_id, r.first_n + e.i - 1, e.v->>0, e.v->>1, e.v->>2, d.user_id, "
                   "r.received_at FROM mutation_runs r JOIN devices d ON d.client_id = r.client_id "
                   "CROSS JOIN LATERAL json_array_elements(r.entries) WITH ORDINALITY AS e(v, i)")
    else:
        op.execute(columns + "SELECT r.client_id, r.first_n + e.key, json_extract(e.value, '$[0]'), "
                   "json_extract(e.value, '$[1]'), json_extract(e.value, '$[2]'), d.user_id, r.received_at "
                   "FROM mutation_runs r JOIN devices d ON d.client_id = r.client_id, json_each(r.entries) e")
    with op.batch_alter_table('mutation_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mutation_runs_received_at'))
    op.drop_table('mutation_runs')
