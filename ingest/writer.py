"""The one place that owns batching, retries, spooling and acknowledgements.

Readings arrive from the MQTT threads with a function that acknowledges their
message to the broker.  A message is acknowledged only once its point is
durable: written to the telemetry store, or appended to the disk spool.

- Batches are cut at ``batch_size`` points or every ``flush_interval_s``.
- A retryable failure (5xx, 429, timeout, refused) sends the batch to the
  spool; a replay loop writes spooled batches back in order, backing off
  (capped, exponential) while the store stays down.  While the spool holds
  anything, new batches queue behind it there, so order is kept.
- A 4xx is never retried: the batch is halved until the bad points are alone;
  they are dead-lettered with the server's message and the rest is written.
  A 413 halves the batch too.
- When the spool is full, nothing more is acknowledged: batches wait in
  memory, and once ``max_pending`` points wait, :meth:`submit` blocks the MQTT
  thread, so the broker holds the rest.  Logs and metrics say so.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from firewarden.aio import give_way, sleep_or_stop, wait_any
from ingest.acks import ack_all
from ingest.dead_letters import DeadLetterStore
from ingest.line_protocol import encode_point
from ingest.metrics import IngestMetrics
from ingest.points import Point
from ingest.sinks import RejectedError, RetryableError, TelemetrySink, TooLargeError
from ingest.spool import Spool

_LOGGER = logging.getLogger(__name__)

Ack = Callable[[], None]
GIVE_WAY_MAX_S = 0.05


class TelemetryWriter:
    def __init__(
        self,
        sink: TelemetrySink,
        spool: Spool,
        metrics: IngestMetrics,
        *,
        dead_letters: DeadLetterStore | None = None,
        batch_size: int = 5000,
        flush_interval_s: float = 0.1,
        max_pending: int = 100_000,
        retry_min_s: float = 0.5,
        retry_max_s: float = 30.0,
        give_way_to: Callable[[], bool] | None = None,
    ) -> None:
        self.sink = sink
        self.spool = spool
        self.metrics = metrics
        self.dead_letters = dead_letters
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_pending = max_pending
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.give_way_to = give_way_to
        """True while alerts are being stored: a batch waits (at most GIVE_WAY_MAX_S)
        before it is encoded and sent, which holds the interpreter lock for a while."""
        self._pending: list[tuple[Point, int, Ack | None]] = []
        self._room = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._replay_wake = asyncio.Event()
        self._closing = False
        self._store_down = False
        self._warned_full = False
        self._update_spool_metrics()

    # --- from MQTT threads -------------------------------------------------------------------
    def submit(self, point: Point, received_ms: int, ack: Ack | None) -> None:
        """Queue a point; blocks (backpressure to the broker) while too many wait."""
        self.submit_batch([(point, received_ms, ack)])

    def submit_batch(self, items: list[tuple[Point, int, Ack | None]]) -> None:
        """Queue points (with their receive time and ack), in order; blocks
        (backpressure to the broker) while too many wait."""
        with self._room:
            while len(self._pending) >= self.max_pending and not self._closing:
                self._room.wait(0.5)
            before = len(self._pending)
            self._pending.extend(items)
            waiting = len(self._pending)
        self.metrics.unacked.set(waiting)
        if before < self.batch_size <= waiting and self._loop is not None:
            # Once, on reaching a batch: a wake-up per message costs the loop a pipe write
            # each, and the loop keeps flushing while a batch is waiting anyway.
            self._loop.call_soon_threadsafe(self._wake.set)

    # --- the loops ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Batch and deliver until ``stop``; then deliver what is left."""
        self._loop = asyncio.get_running_loop()
        replay = asyncio.create_task(self._replay(stop), name="spool-replay")
        try:
            while not stop.is_set():
                if len(self._pending) < self.batch_size:
                    self._wake.clear()
                    await wait_any(self._wake, stop, seconds=self.flush_interval_s)
                await self.flush_once()
            while self._pending:  # shutting down: everything received is made durable
                await self.flush_once(final=True)
        finally:
            with self._room:
                self._closing = True
                self._room.notify_all()
            self._replay_wake.set()
            await replay

    async def flush_once(self, *, final: bool = False) -> None:
        if not final:
            await give_way(self.give_way_to, GIVE_WAY_MAX_S)
        with self._room:
            batch = self._pending[: self.batch_size]
            del self._pending[: self.batch_size]
            self._room.notify_all()
        self.metrics.unacked.set(len(self._pending) + len(batch))
        if batch:
            await self._deliver(batch, final=final)

    async def _deliver(self, batch: list[tuple[Point, int, Ack | None]], *,
                       final: bool = False) -> None:
        points = [p for p, _, _ in batch]
        self.metrics.batch_size.observe(len(points))
        if self.spool.batches or self._store_down:
            await self._to_spool(points, final=final)
        else:
            try:
                await self._write(points)
            except RetryableError as error:
                self._store_down = True
                _LOGGER.warning("telemetry store %s unavailable (%s); spooling to %s",
                                self.sink.name, error, self.spool.directory)
                await self._to_spool(points, final=final)
                self._replay_wake.set()
        ack_all(ack for _, _, ack in batch)
        now_ms = time.time() * 1000
        lag = self.metrics.lag
        for _, received_ms, _ in batch:
            lag.observe(max(0.0, (now_ms - received_ms) / 1000))
        self.metrics.unacked.set(len(self._pending))

    async def _to_spool(self, points: list[Point], *, final: bool = False) -> None:
        while self.spool.full and not final:
            if not self._warned_full:
                _LOGGER.error("spool full (%d bytes): not acknowledging messages; the broker "
                              "holds them until the store is back", self.spool.bytes)
                self._warned_full = True
            self.metrics.spool_full.set(1)
            await asyncio.sleep(0.2)
        if self._warned_full and not self.spool.full:
            _LOGGER.warning("spool has room again: acknowledging resumes")
            self._warned_full = False
            self.metrics.spool_full.set(0)
        await asyncio.to_thread(self.spool.append, points)
        self._update_spool_metrics()

    async def _write(self, points: list[Point]) -> None:
        """Write, isolating bad points (4xx) and splitting what is too large (413)."""
        started = time.perf_counter()
        try:
            await self.sink.write(points)
        except (RejectedError, TooLargeError) as error:
            if len(points) == 1:
                self._dead_letter(points[0], error)
                return
            middle = len(points) // 2
            await self._write(points[:middle])
            await self._write(points[middle:])
            return
        self.metrics.write_seconds.observe(time.perf_counter() - started)
        self.metrics.points_written.labels(self.sink.name).inc(len(points))

    def _dead_letter(self, point: Point, error: Exception) -> None:
        self.metrics.points_dead_lettered.inc()
        _LOGGER.warning("telemetry store refused a point of %s: %s", point.device_id, error)
        if self.dead_letters is not None:
            self.dead_letters.record_point_failure(point.measurement, point.device_id,
                                                   str(error), encode_point(point).encode())

    async def _replay(self, stop: asyncio.Event) -> None:
        delay = self.retry_min_s
        while True:
            if not self.spool.batches:
                if self._store_down:
                    _LOGGER.info("spool replayed: telemetry store %s is back", self.sink.name)
                self._store_down = False
                if stop.is_set():
                    return
                await wait_any(self._replay_wake, stop, seconds=1.0)
                self._replay_wake.clear()
                continue
            oldest = await asyncio.to_thread(self.spool.oldest)
            if oldest is None:
                continue
            path, points = oldest
            try:
                await self._write(points)
            except RetryableError:
                self.metrics.retries.inc()
                if stop.is_set():
                    return  # the spool keeps it for the next start
                await sleep_or_stop(stop, delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            await asyncio.to_thread(self.spool.remove, path)
            self._update_spool_metrics()
            delay = self.retry_min_s

    def _update_spool_metrics(self) -> None:
        self.metrics.spool_batches.set(self.spool.batches)
        self.metrics.spool_bytes.set(self.spool.bytes)
