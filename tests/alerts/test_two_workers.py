"""Two ingest workers sharing one PostgreSQL raise each alert once (the database decides)."""

from __future__ import annotations

import asyncio
import json
import time

from sqlalchemy import func, select

from alerts.tables import AlertRow
from tests.devices.registry.test_api import make_device, make_site
from tests.support.api import api_harness
from tests.support.postgres import PostgresServer

DEVICES = [f"sd-{i}" for i in range(40)]


async def test_the_same_alarm_on_two_workers_is_one_alert(postgres: PostgresServer) -> None:
    url = postgres.create_database("fw_two_workers")
    async with api_harness(url) as first, api_harness(url) as second:
        await make_site(first)
        for device_id in DEVICES:
            await make_device(first, device_id, "smoke")
        for worker in (first, second):
            await worker.registry.refresh()
        for round_ in range(3):  # each round: both workers receive every device's alarm
            ts = int(time.time() * 1000) + round_
            for device_id in DEVICES:
                payload = json.dumps({"event": "smoke_alarm", "ts": ts}).encode()
                for worker in (first, second):
                    worker.pipeline.handle(f"fw/smoke/{device_id}/event", payload)
            await asyncio.gather(first.recorder.flush_once(), second.recorder.flush_once())
        async with first.sessions() as session:
            counts = (await session.execute(
                select(AlertRow.device_id, func.count(), func.sum(AlertRow.count))
                .group_by(AlertRow.device_id))).all()
    # Both workers were handed each of 3 messages: one alert each, counted once per message.
    assert sorted(counts) == sorted((d, 1, 3) for d in DEVICES)
