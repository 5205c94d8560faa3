"""Row-level security on every tenant table (PostgreSQL only).

Revision ID: a1c3e5f7b9d2
Revises: 5b607d2cc1fd
Create Date: 2026-11-27

The policy function and the table list live in dropstream.tenants.rls; a later migration that
adds a tenant table calls ``rls.enable(op, table)`` for it (tests/test_rls.py checks that every
table with a provider_id has forced row-level security).
"""
from alembic import op

from dropstream.tenants import rls

# revision identifiers, used by Alembic.
revision = 'a1c3e5f7b9d2'
down_revision = '5b607d2cc1fd'
branch_labels = None
depends_on = None

#: The console's tables, added before this revision.
CONSOLE_TABLES = ("console_invitations", "console_alert_digests", "console_setup_results")


def _tables():
    yield from rls.TENANT_COLUMNS.items()
    for table in (*rls.MERCHANT_TABLES, *CONSOLE_TABLES):
        yield table, ("provider_id", "merchant_id")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(rls.CREATE_FUNCTION)
    for table, (provider, merchant) in _tables():
        rls.enable(op, table, provider, merchant)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, _columns in _tables():
        rls.disable(op, table)
    op.execute(f"DROP FUNCTION IF EXISTS {rls.FUNCTION}(integer, integer)")
