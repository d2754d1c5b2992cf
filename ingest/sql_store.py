"""Telemetry in the local SQL database, for ``firewarden up`` without InfluxDB.

The same sink interface as :class:`ingest.influx.InfluxSink`; a redelivered point
replaces itself (primary key: measurement, device, timestamp, event).
"""

from __future__ import annotations

from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from firewarden.database import upsert
from ingest.points import Point
from ingest.sinks import RejectedError, RetryableError
from ingest.tables import TelemetryPointRow


class SqlTelemetrySink:
    name = "sql"

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def write(self, points: list[Point]) -> None:
        rows = {}
        for p in points:  # one statement cannot upsert the same key twice: last one wins
            key = (p.measurement, p.device_id, p.ts_ms, p.tags.get("event", ""))
            rows[key] = {"measurement": p.measurement, "device_id": p.device_id,
                         "ts_ms": p.ts_ms, "event": key[3], "site_id": p.tags.get("site_id", ""),
                         "jurisdiction": p.tags.get("jurisdiction", ""), "fields": p.fields}
        try:
            async with self._sessions() as session:
                await upsert(session, TelemetryPointRow, list(rows.values()),
                             key=["measurement", "device_id", "ts_ms", "event"],
                             update={"fields": lambda ex, _t: ex.fields})
                await session.commit()
        except (exc.OperationalError, exc.InterfaceError, OSError) as error:
            raise RetryableError(f"database unavailable: {error}") from None
        except exc.DBAPIError as error:
            raise RejectedError(f"database refused the points: {error.orig}") from None

    async def close(self) -> None:
        return None
