"""telemetry points and rejected messages

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import firewarden.database

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rejected_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('received_at', firewarden.database.UtcDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('topic', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=True),
    sa.Column('device_id', sa.String(length=300), nullable=True),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rejected_messages'))
    )
    with op.batch_alter_table('rejected_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rejected_messages_reason'), ['reason'], unique=False)
        batch_op.create_index(batch_op.f('ix_rejected_messages_received_at'), ['received_at'], unique=False)

    op.create_table('telemetry_points',
    sa.Column('measurement', sa.String(length=20), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('ts_ms', sa.BigInteger(), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('jurisdiction', sa.String(length=100), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('measurement', 'device_id', 'ts_ms', 'event', name=op.f('pk_telemetry_points'))
    )


def downgrade() -> None:
    op.drop_table('telemetry_points')
    with op.batch_alter_table('rejected_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rejected_messages_received_at'))
        batch_op.drop_index(batch_op.f('ix_rejected_messages_reason'))

    op.drop_table('rejected_messages')
