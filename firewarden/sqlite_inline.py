"""An aiosqlite connection that runs each call on the calling thread.

aiosqlite hands every call to a thread of its own and the result back to the
event loop; through SQLAlchemy one statement makes about four such round trips
(cursor, execute, fetch, close), and under telemetry load each waits for the
interpreter lock.  Storing a fire alarm took 10 ms at the median and 75 ms at
p99 for three statements that way (bench/event_latency.py at 6,500 msg/s).

The alert recorder has a thread and an event loop that do nothing but store
alerts, so it may block on SQLite directly: this connection keeps aiosqlite's
interface, which SQLAlchemy's ``sqlite+aiosqlite`` dialect expects, and skips
the hand-offs.  It overrides aiosqlite's private ``_execute`` and connection
start, hence the version bound in pyproject.toml; tests/firewarden/
test_sqlite_inline.py runs it through SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator
from typing import Any

import aiosqlite


class InlineConnection(aiosqlite.Connection):
    """Use only from the one thread that created it (sqlite3 checks this)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)

    def __await__(self) -> Generator[Any, None, InlineConnection]:
        return self._open().__await__()

    async def _open(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def stop(self) -> asyncio.Future[Any] | None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        return None


def inline_creator(path: str, timeout_s: float) -> Callable[[], Any]:
    """For ``create_async_engine(..., async_creator=...)``."""

    async def connect() -> InlineConnection:
        return await InlineConnection(lambda: sqlite3.connect(path, timeout=timeout_s))

    return connect
