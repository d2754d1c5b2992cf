"""What devices did lately, written to the registry in batches.

- :class:`StatusRecorder`: last seen time, battery, signal and last values of
  registered devices (the API's live status, online/offline filters).
- :class:`PendingRecorder`: devices that send but are not registered, so that
  installers can find and adopt them.

Ingest calls ``record`` from the MQTT network thread for every message; it only
updates a dict under a lock.  ``run`` flushes the dict every interval in one
upsert, so the database sees one write per device per interval, not per message.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices.decode import Reading
from devices.kinds import Channel
from devices.registry.cache import DeviceInfo
from devices.registry.tables import DeviceStatusRow, PendingDeviceRow
from firewarden.aio import every, give_way
from firewarden.database import upsert

_LOGGER = logging.getLogger(__name__)

KEPT_PAYLOAD_CHARS = 1024
FLUSH_CHUNK = 200
GIVE_WAY_MAX_S = 0.5


class _Batcher:
    """A dict filled from any thread and drained by an asyncio flush loop."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], interval_s: float) -> None:
        self._sessions = sessions
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, Any]] = {}
        self.give_way_to: Callable[[], bool] | None = None
        """True while more urgent work (alerts) is waiting or being stored: the flush
        waits between chunks (at most GIVE_WAY_MAX_S). On SQLite, with one writer at a
        time, alerts would wait for the chunk's transaction; on any database, for the
        interpreter lock that building and sending rows holds."""

    def _take(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            batch, self._pending = self._pending, {}
        return batch

    async def flush(self) -> int:
        """Write what was collected, ``FLUSH_CHUNK`` rows per transaction: on SQLite a
        transaction holds the one write lock, and an alert waiting for it must not wait
        behind ten thousand status rows.  Rows are built on a worker thread: ten thousand
        of them take tens of milliseconds, which the event loop spends announcing alerts."""
        await give_way(self.give_way_to, GIVE_WAY_MAX_S)
        batch = await asyncio.to_thread(self._take)
        if not batch:
            return 0
        items = list(batch.items())
        written = 0
        try:
            for start in range(0, len(items), FLUSH_CHUNK):
                await give_way(self.give_way_to, GIVE_WAY_MAX_S)
                chunk = items[start:start + FLUSH_CHUNK]
                async with self._sessions() as session:
                    await self._write(session, [row for _, row in chunk])
                    await session.commit()
                written += len(chunk)
        except Exception:
            self._merge_back(dict(items[written:]))  # kept for the next flush, never dropped
            raise
        return len(batch)

    def _merge_back(self, batch: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            for key, row in batch.items():
                self._pending.setdefault(key, row)

    async def _write(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    async def run(self, stop: asyncio.Event) -> None:
        await every(self.interval_s, stop, self.flush, _LOGGER, f"{type(self).__name__} flush")


def _ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class StatusRecorder(_Batcher):
    def __init__(self, sessions: async_sessionmaker[AsyncSession], interval_s: float = 5.0
                 ) -> None:
        super().__init__(sessions, interval_s)
        self._seen: dict[str, tuple[int, int]] = {}
        self._latest: dict[str, Any] = {}

    def record(self, reading: Reading, device: DeviceInfo) -> None:
        self.record_batch([(reading, device)])

    def record_batch(self, readings: Iterable[tuple[Reading, DeviceInfo]]) -> None:
        """Per message only two dict writes; rows are built at flush time."""
        telemetry = Channel.TELEMETRY
        with self._lock:
            seen, latest = self._seen, self._latest
            for reading, device in readings:
                seen[reading.device_id] = (reading.received_ms, device.profile.offline_after_s)
                if reading.channel is telemetry:
                    latest[reading.device_id] = reading.body

    def _take(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            seen, self._seen = self._seen, {}
            latest, self._latest = self._latest, {}
            rows, self._pending = self._pending, {}  # rows put back by a failed flush
        for device_id, (received_ms, window_s) in seen.items():
            moment = _ms_to_datetime(received_ms)
            row: dict[str, Any] = {"device_id": device_id, "last_seen_at": moment,
                                   "offline_at": moment + timedelta(seconds=window_s)}
            body = latest.get(device_id)
            if body is not None:
                values = msgspec.structs.asdict(body)
                values.pop("ts", None)
                values.pop("seq", None)
                row.update(last_values=values, battery_pct=values.get("battery_pct"),
                           rsrp_dbm=values.get("rsrp_dbm"))
            elif "last_values" in rows.get(device_id, {}):
                row = {**rows[device_id], **row}  # an event must not erase the telemetry
            rows[device_id] = row
        return rows

    async def _write(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        with_values = [r for r in rows if "last_values" in r]
        seen_only = [{**r, "last_values": {}, "battery_pct": None, "rsrp_dbm": None}
                     for r in rows if "last_values" not in r]
        await upsert(session, DeviceStatusRow, with_values, key=["device_id"], update={
            "last_seen_at": lambda ex, _t: ex.last_seen_at,
            "offline_at": lambda ex, _t: ex.offline_at,
            "last_values": lambda ex, _t: ex.last_values,
            "battery_pct": lambda ex, _t: ex.battery_pct,
            "rsrp_dbm": lambda ex, _t: ex.rsrp_dbm,
        })
        await upsert(session, DeviceStatusRow, seen_only, key=["device_id"], update={
            "last_seen_at": lambda ex, _t: ex.last_seen_at,
            "offline_at": lambda ex, _t: ex.offline_at,
        })


class PendingRecorder(_Batcher):
    def __init__(self, sessions: async_sessionmaker[AsyncSession], interval_s: float = 2.0
                 ) -> None:
        super().__init__(sessions, interval_s)

    def record(self, reading: Reading, topic: str, payload: bytes) -> None:
        seen = _ms_to_datetime(reading.received_ms)
        text = payload[:KEPT_PAYLOAD_CHARS].decode("utf-8", "replace")
        with self._lock:
            row = self._pending.get(reading.device_id)
            if row is None:
                self._pending[reading.device_id] = {
                    "device_id": reading.device_id, "kind": reading.kind.value,
                    "first_seen_at": seen, "last_seen_at": seen, "message_count": 1,
                    "last_topic": topic, "last_payload": text}
            else:
                row.update(last_seen_at=seen, last_topic=topic, last_payload=text,
                           message_count=row["message_count"] + 1)

    def _merge_back(self, batch: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            for key, row in batch.items():
                newer = self._pending.get(key)
                if newer is None:
                    self._pending[key] = row
                else:
                    newer.update(first_seen_at=row["first_seen_at"],
                                 message_count=newer["message_count"] + row["message_count"])

    async def _write(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        await upsert(session, PendingDeviceRow, rows, key=["device_id"], update={
            "kind": lambda ex, _t: ex.kind,
            "last_seen_at": lambda ex, _t: ex.last_seen_at,
            "message_count": lambda ex, t: t.message_count + ex.message_count,
            "last_topic": lambda ex, _t: ex.last_topic,
            "last_payload": lambda ex, _t: ex.last_payload,
        })
