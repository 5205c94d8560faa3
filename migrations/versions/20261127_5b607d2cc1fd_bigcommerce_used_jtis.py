"""BigCommerce plugin: signed_payload_jwt ids already used (replay protection)

Revision ID: 5b607d2cc1fd
Revises: 5e354e2aa39d
Create Date: 2026-11-27 06:04:29.054925
"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '5b607d2cc1fd'
down_revision = '5e354e2aa39d'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bigcommerce_used_jtis',
    sa.Column('jti', sa.String(length=200), nullable=False),
    sa.Column('store_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('jti', name=op.f('pk_bigcommerce_used_jtis'))
    )
    with op.batch_alter_table('bigcommerce_used_jtis', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bigcommerce_used_jtis_expires_at'), ['expires_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('bigcommerce_used_jtis', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bigcommerce_used_jtis_expires_at'))

    op.drop_table('bigcommerce_used_jtis')
