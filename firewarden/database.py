"""The SQL database: engine, sessions, and schema migrations applied at start-up.

SQLite (the default, a file in the data dir) and PostgreSQL (shared
deployments) are both reached through SQLAlchemy's async engine.  The schema
is owned by Alembic (``firewarden/migrations``); every process upgrades to the
newest revision when it starts, so an old database is never used as is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, MetaData, TypeDecorator, event, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from firewarden.sqlite_inline import inline_creator

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_TIMEOUT_S = 30.0

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_engine(url: str, *, inline_sqlite: bool = False) -> AsyncEngine:
    """``inline_sqlite``: run SQLite calls on the caller's thread (see
    :mod:`firewarden.sqlite_inline`); for a thread whose loop does nothing else."""
    if url.startswith("sqlite"):
        options: dict[str, Any] = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
        path = make_url(url).database
        if inline_sqlite and path and path != ":memory:":
            options = {"async_creator": inline_creator(path, SQLITE_TIMEOUT_S)}
        engine = create_async_engine(url, **options)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Several processes may start at once: one migrates, the others wait for it.
        connection.execute(text("SELECT pg_advisory_xact_lock(7406001)"))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent; safe on every start)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


@asynccontextmanager
async def open_database(
    url: str,
) -> AsyncIterator[tuple[AsyncEngine, async_sessionmaker[AsyncSession]]]:
    """Engine + session factory with migrations applied; disposed on exit."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    try:
        await migrate(engine)
        yield engine, session_factory(engine)
    finally:
        await engine.dispose()


async def upsert(session: AsyncSession, table: Any, rows: list[dict[str, Any]], *,
                 key: list[str], update: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE on SQLite and PostgreSQL.

    ``update`` maps a column to a value or to a function of the ``excluded`` row
    and the table (for ``count = count + excluded.count``).
    """
    if not rows:
        return
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    core_table = getattr(table, "__table__", table)
    statement = insert_(core_table)
    values = {column: (value(statement.excluded, core_table.c) if callable(value) else value)
              for column, value in update.items()}
    # One statement with the rows as parameters (executemany): compiled once and cached,
    # where a multi-row VALUES clause would be compiled anew for every batch size.
    await session.execute(statement.on_conflict_do_update(index_elements=key, set_=values), rows)
