"""Reading telemetry back, the same way from InfluxDB and from the SQL store:
the latest point of a device, and one device's series over a time range
downsampled to a step (mean per step of every numeric field)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest.influx import InfluxSink, quote_ident, quote_string
from ingest.tables import TelemetryPointRow

Fields = dict[str, Any]
Series = list[tuple[int, dict[str, float | None]]]
"""(step start in epoch ms, mean of each numeric field or None for an empty step)."""

MAX_STEPS = 10_000


class TelemetryReader(Protocol):
    async def latest(self, measurement: str, device_id: str) -> tuple[int, Fields] | None: ...

    async def series(self, measurement: str, device_id: str, start_ms: int, end_ms: int,
                     step_s: int) -> Series: ...


def check_range(start_ms: int, end_ms: int, step_s: int) -> None:
    if end_ms <= start_ms:
        raise ValueError("to must be after from")
    if step_s < 1:
        raise ValueError("step must be at least 1 second")
    if (end_ms - start_ms) / (step_s * 1000) > MAX_STEPS:
        raise ValueError(f"at most {MAX_STEPS} steps: use a larger step or a shorter range")


class InfluxReader:
    def __init__(self, influx: InfluxSink) -> None:
        self._influx = influx

    async def latest(self, measurement: str, device_id: str) -> tuple[int, Fields] | None:
        series = await self._influx.query(
            f"SELECT * FROM {quote_ident(measurement)} WHERE device_id = "
            f"{quote_string(device_id)} ORDER BY time DESC LIMIT 1")
        if not series:
            return None
        columns, values = series[0]["columns"], series[0]["values"][0]
        row = dict(zip(columns, values, strict=True))
        ts = int(row.pop("time"))
        for tag in ("device_id", "site_id", "jurisdiction", "kind", "event"):
            row.pop(tag, None)
        return ts, {k: v for k, v in row.items() if v is not None}

    async def series(self, measurement: str, device_id: str, start_ms: int, end_ms: int,
                     step_s: int) -> Series:
        check_range(start_ms, end_ms, step_s)
        found = await self._influx.query(
            f"SELECT mean(*) FROM {quote_ident(measurement)} WHERE device_id = "
            f"{quote_string(device_id)} AND time >= {start_ms}ms AND time < {end_ms}ms "
            f"GROUP BY time({step_s}s) fill(none)")
        if not found:
            return []
        columns = [c.removeprefix("mean_") for c in found[0]["columns"]]
        return [(int(v[0]), dict(zip(columns[1:], v[1:], strict=True)))
                for v in found[0]["values"]]


class SqlReader:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def latest(self, measurement: str, device_id: str) -> tuple[int, Fields] | None:
        async with self._sessions() as session:
            row = (await session.execute(
                select(TelemetryPointRow.ts_ms, TelemetryPointRow.fields)
                .where(TelemetryPointRow.measurement == measurement,
                       TelemetryPointRow.device_id == device_id)
                .order_by(TelemetryPointRow.ts_ms.desc()).limit(1))).first()
        return None if row is None else (row[0], dict(row[1]))

    async def series(self, measurement: str, device_id: str, start_ms: int, end_ms: int,
                     step_s: int) -> Series:
        check_range(start_ms, end_ms, step_s)
        step_ms = step_s * 1000
        sums: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        async with self._sessions() as session:
            rows = await session.execute(
                select(TelemetryPointRow.ts_ms, TelemetryPointRow.fields)
                .where(TelemetryPointRow.measurement == measurement,
                       TelemetryPointRow.device_id == device_id,
                       TelemetryPointRow.ts_ms >= start_ms, TelemetryPointRow.ts_ms < end_ms))
            for ts_ms, fields in rows:
                bucket = (ts_ms // step_ms) * step_ms  # aligned to the epoch, like InfluxDB
                for key, value in fields.items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        sums[bucket][key].append(float(value))
        return [(bucket, {k: sum(v) / len(v) for k, v in sums[bucket].items()})
                for bucket in sorted(sums)]
