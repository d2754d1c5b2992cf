"""The writer's failure handling, with a sink that fails on command (fault injection)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ingest.metrics import IngestMetrics
from ingest.points import Point
from ingest.sinks import RejectedError, RetryableError, TooLargeError
from ingest.spool import Spool
from ingest.writer import TelemetryWriter


class FlakySink:
    name = "flaky"

    def __init__(self) -> None:
        self.stored: list[Point] = []
        self.down = False
        self.max_batch: int | None = None
        self.calls = 0

    async def write(self, points: list[Point]) -> None:
        self.calls += 1
        if self.down:
            raise RetryableError("503 service unavailable")
        if self.max_batch is not None and len(points) > self.max_batch:
            raise TooLargeError("413 request entity too large")
        if any(p.fields.get("bad") for p in points):
            raise RejectedError("400 field type conflict")
        self.stored.extend(points)

    async def close(self) -> None:
        pass


def point(i: int, **fields: object) -> Point:
    return Point("smoke", {"device_id": f"D{i % 7}"}, {"n": i, **fields}, 1_795_000_000_000 + i)


async def run_writer(writer: TelemetryWriter, work: object) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    try:
        await work  # type: ignore[misc]
    finally:
        stop.set()
        await task


async def wait_for(predicate: object, seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.02)):
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


@pytest.fixture
def sink() -> FlakySink:
    return FlakySink()


def make_writer(sink: FlakySink, tmp_path: Path, **options: object) -> TelemetryWriter:
    spool = Spool(tmp_path / "spool", int(options.pop("spool_bytes", 10**8)))  # type: ignore[call-overload]
    return TelemetryWriter(sink, spool, IngestMetrics(), batch_size=50, flush_interval_s=0.02,
                           retry_min_s=0.05, retry_max_s=0.2, **options)  # type: ignore[arg-type]


async def test_acks_only_after_the_store_took_the_batch(sink: FlakySink, tmp_path: Path) -> None:
    writer = make_writer(sink, tmp_path)
    acked: list[int] = []

    async def work() -> None:
        for i in range(120):
            writer.submit(point(i), 0, lambda i=i: acked.append(i))
        await wait_for(lambda: len(acked) == 120)
        assert len(sink.stored) == 120

    await run_writer(writer, work())
    assert sorted(acked) == list(range(120))


async def test_bad_points_are_isolated_and_the_rest_written(sink: FlakySink, tmp_path: Path,
                                                            ) -> None:
    writer = make_writer(sink, tmp_path)
    acked: list[int] = []

    async def work() -> None:
        for i in range(50):
            writer.submit(point(i, bad=i in (7, 31)), 0, lambda i=i: acked.append(i))
        await wait_for(lambda: len(acked) == 50)

    await run_writer(writer, work())
    assert sorted(p.fields["n"] for p in sink.stored) == [i for i in range(50) if i not in (7, 31)]
    assert writer.metrics.points_dead_lettered._value.get() == 2


async def test_too_large_batches_are_split(sink: FlakySink, tmp_path: Path) -> None:
    sink.max_batch = 10
    writer = make_writer(sink, tmp_path)

    async def work() -> None:
        for i in range(50):
            writer.submit(point(i), 0, None)
        await wait_for(lambda: len(sink.stored) == 50)

    await run_writer(writer, work())
    assert sorted(p.fields["n"] for p in sink.stored) == list(range(50))


async def test_outage_spools_acks_and_replays_in_order(sink: FlakySink, tmp_path: Path) -> None:
    writer = make_writer(sink, tmp_path)
    acked: list[int] = []

    async def work() -> None:
        sink.down = True
        for i in range(200):
            writer.submit(point(i), 0, lambda i=i: acked.append(i))
        await wait_for(lambda: len(acked) == 200)  # durable in the spool: acknowledged
        assert sink.stored == [] and writer.spool.batches >= 1
        for i in range(200, 250):  # later batches queue behind the spool, keeping order
            writer.submit(point(i), 0, lambda i=i: acked.append(i))
        await wait_for(lambda: len(acked) == 250)
        sink.down = False
        await wait_for(lambda: len(sink.stored) == 250)

    await run_writer(writer, work())
    assert [p.fields["n"] for p in sink.stored] == list(range(250))
    assert writer.spool.batches == 0 and writer.metrics.retries._value.get() >= 1


async def test_spool_survives_a_restart(sink: FlakySink, tmp_path: Path) -> None:
    sink.down = True
    first = make_writer(sink, tmp_path)

    async def fill() -> None:
        for i in range(60):
            first.submit(point(i), 0, None)
        await wait_for(lambda: first.spool.batches >= 2)

    await run_writer(first, fill())
    sink.down = False
    second = make_writer(sink, tmp_path)  # a new process finds the spool on disk
    assert second.spool.batches >= 2
    await run_writer(second, wait_for(lambda: len(sink.stored) == 60))
    assert sorted(p.fields["n"] for p in sink.stored) == list(range(60))


async def test_full_spool_stops_acknowledging(sink: FlakySink, tmp_path: Path) -> None:
    sink.down = True
    writer = make_writer(sink, tmp_path, spool_bytes=1)  # full after the first batch
    acked: list[int] = []

    async def work() -> None:
        for i in range(150):
            writer.submit(point(i), 0, lambda i=i: acked.append(i))
        await wait_for(lambda: writer.metrics.spool_full._value.get() == 1)
        held = len(acked)
        await asyncio.sleep(0.3)
        assert len(acked) == held < 150  # nothing more is acknowledged while full
        sink.down = False  # the store is back: the spool drains, acknowledging resumes
        await wait_for(lambda: len(acked) == 150)
        await wait_for(lambda: len(sink.stored) == 150)

    await run_writer(writer, work())
    assert sorted(p.fields["n"] for p in sink.stored) == list(range(150))


async def test_batches_wait_while_alerts_are_stored_but_not_for_ever(sink: FlakySink,
                                                                     tmp_path: Path) -> None:
    alerts_busy = True
    writer = make_writer(sink, tmp_path, give_way_to=lambda: alerts_busy)

    async def work() -> None:
        nonlocal alerts_busy
        writer.submit_batch([(point(i), 0, None) for i in range(10)])
        await asyncio.sleep(0.03)  # a flush interval: it waits while alerts are stored
        assert sink.stored == []
        alerts_busy = False
        await wait_for(lambda: len(sink.stored) == 10)
        alerts_busy = True  # for ever: each batch waits at most GIVE_WAY_MAX_S
        writer.submit_batch([(point(i), 0, None) for i in range(10, 20)])
        await wait_for(lambda: len(sink.stored) == 20, seconds=1)

    await run_writer(writer, work())
