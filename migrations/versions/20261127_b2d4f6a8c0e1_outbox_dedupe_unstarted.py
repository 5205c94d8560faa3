"""Outbox: de-duplicate only work no worker has started.

Revision ID: b2d4f6a8c0e1
Revises: a1c3e5f7b9d2
Create Date: 2026-11-27

A request for work that arrives while the same work is running (a second webhook while the
first re-read of the order is in flight) may carry news the running one missed: it must become
work of its own instead of being folded into the running item.
"""
import sqlalchemy as sa
from alembic import op

revision = 'b2d4f6a8c0e1'
down_revision = 'a1c3e5f7b9d2'
branch_labels = None
depends_on = None

NOT_STARTED = "state = 'pending' AND leased_until IS NULL"
PENDING = "state = 'pending'"


def _recreate(predicate: str) -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('uq_outbox_pending_dedupe_key')
        batch_op.create_index('uq_outbox_pending_dedupe_key', ['dedupe_key'], unique=True,
                              sqlite_where=sa.text(predicate), postgresql_where=sa.text(predicate))


def upgrade():
    _recreate(NOT_STARTED)


def downgrade():
    _recreate(PENDING)
