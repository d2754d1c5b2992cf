"""registry and api keys

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import firewarden.database

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('key_prefix', sa.String(length=12), nullable=False),
    sa.Column('created_at', firewarden.database.UtcDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', firewarden.database.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', firewarden.database.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    op.create_table('pending_devices',
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('first_seen_at', firewarden.database.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', firewarden.database.UtcDateTime(timezone=True), nullable=False),
    sa.Column('message_count', sa.BigInteger(), nullable=False),
    sa.Column('last_topic', sa.String(length=300), nullable=False),
    sa.Column('last_payload', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('device_id', name=op.f('pk_pending_devices'))
    )
    with op.batch_alter_table('pending_devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_devices_last_seen_at'), ['last_seen_at'], unique=False)

    op.create_table('registry_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=True),
    sa.Column('site_id', sa.String(length=64), nullable=True),
    sa.Column('changed_at', firewarden.database.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_changes'))
    )
    with op.batch_alter_table('registry_changes', schema=None) as batch_op:
        batch_op.create_index('ix_registry_changes_changed_at', ['changed_at'], unique=False)

    op.create_table('sites',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('jurisdiction', sa.String(length=100), nullable=False),
    sa.Column('contact_name', sa.String(length=100), nullable=False),
    sa.Column('contact_phone', sa.String(length=40), nullable=False),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('min_operators', sa.Integer(), nullable=False),
    sa.Column('profiles', sa.JSON(), nullable=False),
    sa.Column('created_at', firewarden.database.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', firewarden.database.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites'))
    )
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sites_category'), ['category'], unique=False)
        batch_op.create_index(batch_op.f('ix_sites_jurisdiction'), ['jurisdiction'], unique=False)

    op.create_table('devices',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('location', sa.String(length=200), nullable=False),
    sa.Column('vendor', sa.String(length=100), nullable=False),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('install_date', sa.Date(), nullable=True),
    sa.Column('installer', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('maintenance_until', firewarden.database.UtcDateTime(timezone=True), nullable=True),
    sa.Column('profile', sa.JSON(), nullable=False),
    sa.Column('offline_after_s', sa.Integer(), nullable=False),
    sa.Column('created_at', firewarden.database.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', firewarden.database.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_devices_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_devices'))
    )
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_devices_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_devices_site_id'), ['site_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_devices_state'), ['state'], unique=False)

    op.create_table('device_status',
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('last_seen_at', firewarden.database.UtcDateTime(timezone=True), nullable=False),
    sa.Column('offline_at', firewarden.database.UtcDateTime(timezone=True), nullable=False),
    sa.Column('battery_pct', sa.Float(), nullable=True),
    sa.Column('rsrp_dbm', sa.Float(), nullable=True),
    sa.Column('last_values', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_device_status_device_id_devices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('device_id', name=op.f('pk_device_status'))
    )
    with op.batch_alter_table('device_status', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_device_status_offline_at'), ['offline_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('device_status', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_status_offline_at'))

    op.drop_table('device_status')
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_devices_state'))
        batch_op.drop_index(batch_op.f('ix_devices_site_id'))
        batch_op.drop_index(batch_op.f('ix_devices_kind'))

    op.drop_table('devices')
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sites_jurisdiction'))
        batch_op.drop_index(batch_op.f('ix_sites_category'))

    op.drop_table('sites')
    with op.batch_alter_table('registry_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_registry_changes_changed_at')

    op.drop_table('registry_changes')
    with op.batch_alter_table('pending_devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_devices_last_seen_at'))

    op.drop_table('pending_devices')
    op.drop_table('api_keys')
