"""The dead-letter store: rejected messages (and points a store refused), kept for
inspection in the database, newest first, bounded in size.

``record`` is called from MQTT network threads and only appends to a buffer;
``run`` writes the buffer every interval and trims the table to ``keep`` rows.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices import KEPT_PAYLOAD_BYTES, Rejection
from firewarden.aio import every
from ingest.tables import RejectedMessageRow

_LOGGER = logging.getLogger(__name__)

MAX_BUFFERED = 10_000


class DeadLetterStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, keep: int = 10_000,
                 interval_s: float = 1.0) -> None:
        self._sessions = sessions
        self.keep = keep
        self.interval_s = interval_s
        self._buffer: list[dict[str, object]] = []
        self._lock = threading.Lock()
        self.overflowed = 0
        """Rejections not written because the buffer was full (counted, logged)."""

    def record(self, rejection: Rejection) -> None:
        row: dict[str, object] = {
               "received_at": datetime.fromtimestamp(rejection.received_ms / 1000, UTC),
               "reason": rejection.reason.value, "detail": rejection.detail[:2000],
               "topic": rejection.topic[:300], "kind": rejection.kind,
               "device_id": (rejection.device_id or "")[:300] or None,
               "payload": rejection.payload[:KEPT_PAYLOAD_BYTES]}
        with self._lock:
            if len(self._buffer) >= MAX_BUFFERED:  # the database is behind: count, do not grow
                self.overflowed += 1
                if self.overflowed in (1, 1000) or self.overflowed % 100_000 == 0:
                    _LOGGER.warning("dead-letter buffer full: %d rejections counted but not "
                                    "kept", self.overflowed)
                return
            self._buffer.append(row)

    def record_point_failure(self, topic: str, device_id: str, detail: str,
                             payload: bytes) -> None:
        """A point the telemetry store refused (4xx): kept with the server's message."""
        with self._lock:
            self._buffer.append({"received_at": datetime.now(UTC), "reason": "store_rejected",
                                 "detail": detail[:2000], "topic": topic[:300], "kind": None,
                                 "device_id": device_id[:300] or None,
                                 "payload": payload[:KEPT_PAYLOAD_BYTES]})

    async def flush(self) -> int:
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return 0
        try:
            async with self._sessions() as session:
                await session.execute(insert(RejectedMessageRow), batch)
                newest = await session.scalar(select(func.max(RejectedMessageRow.id)))
                if newest is not None and newest > self.keep:
                    await session.execute(delete(RejectedMessageRow).where(
                        RejectedMessageRow.id <= newest - self.keep))
                await session.commit()
        except Exception:
            with self._lock:
                self._buffer[:0] = batch[: max(0, MAX_BUFFERED - len(self._buffer))]
            raise
        return len(batch)

    async def run(self, stop: asyncio.Event) -> None:
        await every(self.interval_s, stop, self.flush, _LOGGER, "dead-letter flush")

    async def list(self, session: AsyncSession, *, reason: str | None = None, limit: int = 100,
                   offset: int = 0) -> tuple[list[RejectedMessageRow], int]:
        query = select(RejectedMessageRow)
        if reason:
            query = query.where(RejectedMessageRow.reason == reason)
        total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = (await session.scalars(query.order_by(RejectedMessageRow.id.desc())
                                      .offset(offset).limit(limit))).all()
        return list(rows), total
