"""Webhook inbox: index received_at, for deleting the oldest deliveries.

Revision ID: c3e5a7b9d1f2
Revises: b2d4f6a8c0e1
Create Date: 2026-11-29

The scheduler deletes deliveries received more than DROPSTREAM_HISTORY_DAYS ago
(jobs/retention.py); without this index each of its batches would scan the whole table.
"""
from alembic import op

revision = 'c3e5a7b9d1f2'
down_revision = 'b2d4f6a8c0e1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook_inbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_inbox_received_at'), ['received_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('webhook_inbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_inbox_received_at'))
