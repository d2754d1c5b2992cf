"""The inline SQLite connection through SQLAlchemy: same results, no driver thread."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from firewarden.database import create_engine, session_factory


async def _exercise(url: str) -> list[tuple[int, str]]:
    threads = threading.active_count()
    engine = create_engine(url, inline_sqlite=True)
    sessions = session_factory(engine)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        async with sessions() as session:
            await session.execute(text("INSERT INTO t VALUES (1, 'kept'), (2, '火警')"))
            await session.commit()
        async with sessions() as session:  # a failed transaction leaves nothing behind
            await session.execute(text("INSERT INTO t VALUES (3, 'rolled back')"))
            with pytest.raises(IntegrityError):
                await session.execute(text("INSERT INTO t VALUES (1, 'duplicate')"))
            await session.rollback()
        async with sessions() as session:
            mode = await session.scalar(text("PRAGMA journal_mode"))
            rows = [(r[0], r[1]) for r in await session.execute(text("SELECT id, v FROM t"))]
        assert threading.active_count() == threads  # aiosqlite would start one per connection
        assert mode == "wal"
        return rows
    finally:
        await engine.dispose()


def test_statements_run_on_the_calling_thread(tmp_path: Path) -> None:
    rows = asyncio.run(_exercise(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}"))
    assert rows == [(1, "kept"), (2, "火警")]
