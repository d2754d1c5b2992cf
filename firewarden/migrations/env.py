"""Alembic environment: migrations run on the connection firewarden.database hands over."""

from __future__ import annotations

from alembic import context

import alerts.tables
import devices.registry.tables
import firewarden.auth_tables  # noqa: F401  (register the tables on Base.metadata)
import ingest.tables
from firewarden.database import Base

_ = (alerts.tables, devices.registry.tables, ingest.tables)
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through firewarden.database.migrate()")
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
