"""Device status written in chunks: all of it lands; a failed chunk loses nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from devices import DeviceKind
from devices.registry import activity
from devices.registry.activity import StatusRecorder
from devices.registry.tables import DeviceStatusRow
from tests.alerts.helpers import device, reading
from tests.devices.registry.test_api import make_device, make_site
from tests.support.api import api_harness

DEVICES = [f"sd-{i}" for i in range(12)]


def record_all(recorder: StatusRecorder, ts_ms: int, battery_pct: int) -> None:
    for device_id in DEVICES:
        info = device(DeviceKind.SMOKE, device_id)
        recorder.record(reading(info, "telemetry", ts_ms, battery_pct=battery_pct,
                                rsrp_dbm=-90), info)


async def stored(sessions: Any) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(DeviceStatusRow)) or 0


async def test_status_is_written_in_chunks_and_a_failed_chunk_is_kept(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(activity, "FLUSH_CHUNK", 5)
    async with api_harness(database_url) as api:
        await make_site(api)
        for device_id in DEVICES:
            await make_device(api, device_id, "smoke")
        calls = 0

        @asynccontextmanager
        async def third_fails() -> AsyncIterator[AsyncSession]:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise ConnectionError("database went away")
            async with api.sessions() as session:
                yield session

        recorder = StatusRecorder(third_fails)  # type: ignore[arg-type]
        now = int(time.time() * 1000)
        record_all(recorder, now, 80)
        with pytest.raises(ConnectionError):
            await recorder.flush()
        assert await stored(api.sessions) == 10  # two chunks of 5 committed
        assert await recorder.flush() == 2  # the failed chunk's rows were kept
        assert await stored(api.sessions) == 12


async def test_the_flush_gives_way_to_alerts_between_chunks_but_not_forever(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(activity, "FLUSH_CHUNK", 5)
    monkeypatch.setattr(activity, "GIVE_WAY_MAX_S", 0.2)
    async with api_harness(f"sqlite+aiosqlite:///{tmp_path / 'fw.db'}") as api:
        await make_site(api)
        for device_id in DEVICES:
            await make_device(api, device_id, "smoke")
        chunks_started: list[float] = []

        @asynccontextmanager
        async def sessions() -> AsyncIterator[AsyncSession]:
            chunks_started.append(time.monotonic())
            async with api.sessions() as session:
                yield session

        recorder = StatusRecorder(sessions)  # type: ignore[arg-type]
        now = int(time.time() * 1000)
        record_all(recorder, now, 80)
        alerts_until = time.monotonic() + 0.1  # an alert transaction for the next 100 ms
        recorder.give_way_to = lambda: time.monotonic() < alerts_until
        assert await recorder.flush() == 12
        assert len(chunks_started) == 3 and chunks_started[0] >= alerts_until

        record_all(recorder, now + 1, 70)  # alerts that never stop: each chunk waits <= 0.2 s
        recorder.give_way_to = lambda: True
        started = time.monotonic()
        assert await recorder.flush() == 12
        assert 0.6 <= time.monotonic() - started < 2
        assert await stored(api.sessions) == 12


async def test_rows_are_not_built_while_alerts_are_being_stored(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Building ten thousand rows holds the interpreter lock the alert recorder needs."""
    monkeypatch.setattr(activity, "GIVE_WAY_MAX_S", 0.5)
    async with api_harness(f"sqlite+aiosqlite:///{tmp_path / 'fw.db'}") as api:
        await make_site(api)
        for device_id in DEVICES:
            await make_device(api, device_id, "smoke")
        recorder = StatusRecorder(api.sessions)
        built_at: list[float] = []
        take = recorder._take
        monkeypatch.setattr(recorder, "_take", lambda: (built_at.append(time.monotonic()),
                                                        take())[1])
        record_all(recorder, int(time.time() * 1000), 80)
        alerts_until = time.monotonic() + 0.1
        recorder.give_way_to = lambda: time.monotonic() < alerts_until
        assert await recorder.flush() == 12
        assert built_at and built_at[0] >= alerts_until
        assert await stored(api.sessions) == 12
