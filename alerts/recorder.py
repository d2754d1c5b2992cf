"""Stores what the rules decided, then acknowledges and announces it.

Ingest threads ``submit`` actions (with the ack of the message behind them);
one asyncio task takes everything queued, applies it in one transaction,
commits, and only then calls the acks and announces the changes.  A failed
transaction is retried with backoff and nothing is acknowledged meanwhile, so
the broker keeps the messages until the alerts they raise are stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts import store
from alerts.actions import Action, Raise
from alerts.announce import Announcer
from alerts.schemas import AlertChange
from firewarden.aio import sleep_or_stop, wait_any

_LOGGER = logging.getLogger(__name__)

Ack = Callable[[], None]
MAX_BATCH = 500
MAX_BACKOFF_S = 10.0
GIVE_WAY_MAX_S = 0.05
"""The longest the telemetry lane waits for the recorder before each batch (see
:meth:`AlertRecorder.give_way`)."""


class AckJoin:
    """An ack that reaches the broker only after every part (telemetry store, alert
    recorder) has called it."""

    __slots__ = ("_ack", "_left", "_lock")

    def __init__(self, ack: Ack, parts: int = 2) -> None:
        self._ack = ack
        self._left = parts
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self._left -= 1
            done = self._left == 0
        if done:
            self._ack()


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.changes = Counter("firewarden_alert_changes_total",
                               "Alert changes stored, by action (raised, repeated, reopened, "
                               "auto_resolved, acknowledged, resolved, reminded, ...) and type.",
                               ["action", "type"], registry=registry)
        self.pending = Gauge("firewarden_alert_actions_pending",
                             "Rule actions waiting to be stored.", registry=registry)
        self.store_latency = Histogram(
            "firewarden_alert_store_seconds",
            "From rule decision to alert stored, acknowledged and announced.",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=registry)
        self.raise_latency = Histogram(
            "firewarden_alert_raise_latency_seconds",
            "From what raised an alert (an event's own timestamp, or the deadline that "
            "passed) to the alert stored and announced.",
            ["trigger"],
            # Fine around 100 ms, the target the benchmark checks (docs/performance.md).
            buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.09, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5,
                     1, 2.5, 5, 10, 30),
            registry=registry)
        self.failures = Counter("firewarden_alert_store_failures_total",
                                "Failed alert transactions (retried).", registry=registry)


class AlertRecorder:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], announcer: Announcer,
                 policy: store.Policy | None = None, metrics: AlertMetrics | None = None
                 ) -> None:
        self._sessions = sessions
        self.announcer = announcer
        self.policy = policy or store.Policy()
        self.metrics = metrics or AlertMetrics()
        self._items: deque[tuple[list[Action], Ack | None, float, str]] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._backing_off = False
        self.announce_loop: asyncio.AbstractEventLoop | None = None
        """Where announcements are made when the recorder runs on a thread of its own."""

    def submit(self, actions: list[Action], ack: Ack | None = None, *,
               trigger: str = "reading") -> Ack | None:
        """From any thread; returns the ack the message's other part must call.

        ``trigger`` labels the raise latency: ``reading`` or ``deadline`` (timers).
        """
        join = AckJoin(ack) if ack is not None else None
        with self._lock:
            self._items.append((actions, join, time.monotonic(), trigger))
            if not self._backing_off:
                self._idle.clear()
        self.metrics.pending.inc(len(actions))
        loop = self._loop
        if loop is not None:
            # RuntimeError: the loop closed (run() ended); the items wait for the next run.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake.set)
        return join

    @property
    def pending(self) -> int:
        return len(self._items)

    @property
    def busy(self) -> bool:
        """Alerts are waiting or being stored (and the database is not failing): bulk
        writers give way (see :meth:`devices.registry.activity._Batcher.flush`)."""
        return not self._idle.is_set()

    def give_way(self, timeout: float = GIVE_WAY_MAX_S) -> None:
        """Wait (at most ``timeout``) while alerts are waiting or being stored.

        The telemetry lane calls this before each batch.  The threads of one process
        share the interpreter lock, and the recorder releases it at every database
        call; under a telemetry flood it waited for the lock again each time, which
        made up most of a fire alarm's time to be stored (docs/performance.md).
        Alerts are rare, so telemetry pauses briefly and seldom.
        """
        if not self._idle.is_set():
            self._idle.wait(timeout)

    async def run(self, stop: asyncio.Event) -> None:
        """Store until ``stop`` is set and nothing is left (a final drain on shutdown)."""
        self._loop = asyncio.get_running_loop()
        backoff = 0.1
        while True:
            await wait_any(self._wake, stop, seconds=1.0)
            self._wake.clear()
            while self._items:
                try:
                    await self.flush_once()
                    backoff = 0.1
                    self._backing_off = False
                except Exception:
                    self.metrics.failures.inc()
                    self._backing_off = True  # nobody should wait for us meanwhile
                    self._idle.set()
                    _LOGGER.exception("storing alerts failed; retrying in %.1f s", backoff)
                    await sleep_or_stop(stop, backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                    if stop.is_set():
                        return  # unacknowledged: the broker redelivers them
            if stop.is_set():
                return

    async def flush_once(self) -> list[AlertChange]:
        with self._lock:
            batch = [self._items.popleft() for _ in range(min(MAX_BATCH, len(self._items)))]
        try:
            changes = await self._store([a for actions, _, _, _ in batch for a in actions])
        except BaseException:
            with self._lock:
                self._items.extendleft(reversed(batch))  # in order, first in the queue
            raise
        with self._lock:
            if not self._items:
                self._idle.set()
        for _, join, _, _ in batch:
            if join is not None:
                join()
        timings = [(actions, submitted, trigger) for actions, _, submitted, trigger in batch]
        if self.announce_loop is None:
            self._announce(changes, timings)
        else:
            self.announce_loop.call_soon_threadsafe(self._announce, changes, timings)
        return changes

    def _announce(self, changes: list[AlertChange],
                  timings: list[tuple[list[Action], float, str]]) -> None:
        self.announcer.announce(changes)
        now, wall = time.monotonic(), time.time()
        for actions, submitted, trigger in timings:
            self.metrics.pending.dec(len(actions))
            self.metrics.store_latency.observe(now - submitted)
            for action in actions:
                if isinstance(action, Raise):
                    self.metrics.raise_latency.labels(trigger).observe(
                        max(0.0, wall - action.at_ms / 1000))
        for change in changes:
            self.metrics.changes.labels(change.action, change.alert.type).inc()

    async def _store(self, actions: list[Action]) -> list[AlertChange]:
        for attempt in range(3):
            try:
                async with self._sessions() as session:
                    events = await store.apply(session, actions, self.policy)
                    changes = await self.announcer.prepare(session, events)
                    await session.commit()
                    return changes
            except IntegrityError:
                # Another worker opened the same alert between our check and our write:
                # run the batch again, and the raise finds that alert.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class RecorderThread:
    """Runs a recorder on a thread and event loop of its own, with its own database
    connections, so storing a fire alarm never waits behind the API, the telemetry
    writer or the status flushes on the main loop.  On SQLite its statements run on
    this thread directly (:mod:`firewarden.sqlite_inline`), since nothing else waits
    on this loop.  Announcements still happen on the main loop (the live stream's
    queues live there)."""

    def __init__(self, recorder: AlertRecorder, database_url: str) -> None:
        self.recorder = recorder
        self._url = database_url
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="alert-recorder", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    async def start(self) -> None:
        self.recorder.announce_loop = asyncio.get_running_loop()
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to start(), or logged after it
            self._error = error
            _LOGGER.exception("alert recorder thread stopped")
            self._ready.set()

    async def _serve(self) -> None:
        from firewarden.database import create_engine, session_factory

        engine = create_engine(self._url, inline_sqlite=True)
        self.recorder._sessions = session_factory(engine)
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        try:
            await self.recorder.run(self._stop)
        finally:
            await engine.dispose()

    async def stop(self) -> None:
        """Drain what is queued, then stop (the broker redelivers anything not stored)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, 60)
