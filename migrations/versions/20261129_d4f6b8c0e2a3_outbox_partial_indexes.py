"""Outbox: indexes over pending rows alone, and over done rows for the clean-up.

Revision ID: d4f6b8c0e2a3
Revises: c3e5a7b9d1f2
Create Date: 2026-11-29

The running system only ever looks for pending rows (or one row by id). Through an index of
(state, run_after) and one of store_id, what its queries scanned grew with the history of every
row done: a store's work in flight was counted over all of that store's rows, and while the
table had no statistics yet, a lease by id went through every pending row. Pending rows now
have their own indexes, by due time, by store and by subject; done rows one by the time they
finished, which the history clean-up deletes by. The index of every row's store goes: nothing
looks up a store's rows but its pending ones, and a store deleted with its work (rare) may
scan a table the clean-up keeps to weeks.
"""
import sqlalchemy as sa
from alembic import op

revision = 'd4f6b8c0e2a3'
down_revision = 'c3e5a7b9d1f2'
branch_labels = None
depends_on = None

PENDING = "state = 'pending'"
DONE = "state = 'done'"
PARTIAL = (
    ('ix_outbox_pending_due', ['run_after'], PENDING),
    ('ix_outbox_pending_store', ['store_id', 'kind'], PENDING),
    ('ix_outbox_pending_subject', ['subject_id', 'kind'], PENDING),
    ('ix_outbox_done', ['finished_at'], DONE),
)


def upgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_due')
        batch_op.drop_index('ix_outbox_store_id')
        for name, columns, where in PARTIAL:
            batch_op.create_index(name, columns, unique=False, sqlite_where=sa.text(where),
                                  postgresql_where=sa.text(where))


def downgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        for name, _columns, _where in PARTIAL:
            batch_op.drop_index(name)
        batch_op.create_index('ix_outbox_due', ['state', 'run_after'], unique=False)
        batch_op.create_index('ix_outbox_store_id', ['store_id'], unique=False)
