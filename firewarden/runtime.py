"""Process wiring for ``firewarden up``: broker, ingest, API and demo fleet in one process.

Start order: database (migrated) and registry cache -> embedded broker (if no
broker is configured) -> ingest listener -> API server -> demo fleet.  Stop
order is the reverse; Ctrl-C (SIGINT) or SIGTERM stops the API server, which
ends :func:`run_up`; background loops then stop and flush what they hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts import store as alert_store
from alerts.announce import Announcer
from alerts.bus import AlertBus
from alerts.engine import AlertEngine
from alerts.offline import OfflineTracker
from alerts.recorder import AlertMetrics, AlertRecorder, RecorderThread
from alerts.timers import AlertTimers
from alerts.webhooks import WebhookDispatcher
from dashboard_api import Services, create_app
from dashboard_api.stream import AlertStream
from devices import Channel, MessageDecoder, Reading
from devices.registry.activity import PendingRecorder, StatusRecorder
from devices.registry.cache import DeviceInfo, RegistryCache
from devices.registry.csv_import import import_csv
from firewarden.database import open_database
from firewarden.embedded_broker import INGEST_USERNAME, EmbeddedBroker
from firewarden.interpreter import settle_heap, tune_for_latency
from firewarden.keys import Role, create_key, list_keys, revoke_key
from firewarden.ports import ensure_port_free
from firewarden.settings import MqttEndpoint, Settings, SettingsError
from ingest import MqttListener, Pipeline
from ingest.commands import CommandPublisher
from ingest.dead_letters import DeadLetterStore
from ingest.influx import InfluxSink
from ingest.metrics import IngestMetrics
from ingest.points import point_for
from ingest.readback import InfluxReader, SqlReader, TelemetryReader
from ingest.sinks import RetryableError, TelemetrySink
from ingest.spool import Spool
from ingest.sql_store import SqlTelemetrySink
from ingest.writer import TelemetryWriter
from simulators import (
    FleetPublisher,
    FleetSimulation,
    PublishOptions,
    Scenario,
    SimConfig,
    write_registry_csv,
)

_LOGGER = logging.getLogger(__name__)

DEMO_SCENARIOS = frozenset(Scenario) - {Scenario.FLOOD}
DEMO_SPEED = 60.0
DEMO_KEY_NAME = "demo (firewarden up --demo)"


def make_decoder(settings: Settings) -> MessageDecoder:
    return MessageDecoder(
        settings.TOPIC_PREFIX,
        max_payload_bytes=settings.MAX_PAYLOAD_BYTES,
        max_ahead_s=settings.MAX_CLOCK_AHEAD_S,
        max_age_s=settings.MAX_MESSAGE_AGE_S,
    )


def demo_config(settings: Settings, seed: int = 1) -> SimConfig:
    """A small lively fleet: a minute of wall time is an hour of the fleet's life."""
    return SimConfig(
        smoke=30, electrical=15, controlrooms=4, seed=seed,
        scenarios=DEMO_SCENARIOS, start_ms=int(time.time() * 1000), speed=DEMO_SPEED,
        onset_s=15 * DEMO_SPEED, prefix=settings.TOPIC_PREFIX, garbage_interval_s=30 * DEMO_SPEED,
        max_payload_bytes=settings.MAX_PAYLOAD_BYTES,
    )


async def run_up(settings: Settings, *, demo: bool = False) -> int:
    tune_for_latency()
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    ensure_port_free(settings.API_HOST, settings.API_PORT)
    async with open_database(settings.database_url) as (_engine, sessions):
        return await _run(settings, sessions, demo=demo)


class Ingest:
    """The ingest side of a process: registry cache, pipeline, writer, both MQTT lanes,
    and the background loops that flush what they collect."""

    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession],
                 endpoint: MqttEndpoint) -> None:
        self.settings = settings
        self.registry = RegistryCache(sessions, poll_interval_s=settings.REGISTRY_POLL_S)
        self.status = StatusRecorder(sessions)
        self.pending = PendingRecorder(sessions)
        self.dead_letters = DeadLetterStore(sessions)
        self.sink: TelemetrySink = (
            InfluxSink(settings.INFLUX_URL, settings.INFLUX_DB, token=(
                settings.INFLUX_TOKEN.get_secret_value() if settings.INFLUX_TOKEN else None))
            if settings.INFLUX_URL else SqlTelemetrySink(sessions))
        metrics = IngestMetrics()
        self.writer = TelemetryWriter(
            self.sink, Spool(settings.DATA_DIR / "spool", settings.SPOOL_MAX_BYTES), metrics,
            dead_letters=self.dead_letters, batch_size=settings.BATCH_SIZE,
            flush_interval_s=settings.FLUSH_INTERVAL_S)
        self.offline = OfflineTracker()
        self.announcer = Announcer(AlertBus(), WebhookDispatcher(sessions))
        self.recorder = AlertRecorder(sessions, self.announcer, alert_store.Policy(
            reminder_interval_s=settings.ALERT_REMINDER_INTERVAL_S,
            reminders_per_escalation=settings.ALERT_REMINDERS_PER_ESCALATION,
            flap_cooldown_s=settings.ALERT_FLAP_COOLDOWN_S), AlertMetrics(metrics.registry))
        self.engine = AlertEngine(self.recorder, self.offline)
        # Alerts go first: bulk work waits while they are stored (docs/performance.md).
        alerts_busy = lambda: self.recorder.busy  # noqa: E731
        self.status.give_way_to = self.pending.give_way_to = alerts_busy
        self.writer.give_way_to = alerts_busy
        self.timers = AlertTimers(sessions, self.recorder, self.registry, self.offline,
                                  startup_grace_s=settings.OFFLINE_STARTUP_GRACE_S)
        self.pipeline = Pipeline(make_decoder(settings), self.registry, metrics,
                                 on_unregistered=self.pending.record,
                                 on_rejection=self.dead_letters.record, store=self._store,
                                 alerts=self.engine)
        self._sessions = sessions
        self.pipeline.add_consumer(self.status.record_batch)
        self.listeners = [
            MqttListener(endpoint, self.pipeline, prefix=settings.TOPIC_PREFIX,
                         client_id=settings.MQTT_CLIENT_ID, lane=lane,
                         shared_group=settings.MQTT_SHARED_GROUP,
                         give_way=self.recorder.give_way if lane is Channel.TELEMETRY else None)
            for lane in (Channel.EVENT, Channel.TELEMETRY)
        ]
        self._stop = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._writer_stop = asyncio.Event()
        self._writer_task: asyncio.Task[None] | None = None
        self._recorder_thread = RecorderThread(self.recorder, settings.database_url)

    def _store(self, accepted: list[tuple[Reading, DeviceInfo, Callable[[], None] | None]]
               ) -> None:
        self.writer.submit_batch([(point_for(reading, device), reading.received_ms, ack)
                                  for reading, device, ack in accepted])

    async def start(self) -> None:
        await self.registry.load()
        async with self._sessions() as session:
            self.engine.load_states(await alert_store.load_states(session))
        await self.timers.load()
        if isinstance(self.sink, InfluxSink):
            try:
                await self.sink.ensure_database()
            except RetryableError as error:
                _LOGGER.warning("cannot reach InfluxDB yet (%s); spooling until it answers",
                                error)
        self._loops = [asyncio.create_task(loop.run(self._stop), name=type(loop).__name__)
                       for loop in (self.registry, self.status, self.pending, self.dead_letters,
                                    self.timers, self.announcer.webhooks) if loop is not None]
        self._writer_task = asyncio.create_task(self.writer.run(self._writer_stop))
        await self._recorder_thread.start()
        for listener in self.listeners:
            listener.start()

    async def stop(self) -> None:
        """Stop receiving, make everything received durable, flush what loops hold."""
        for listener in self.listeners:
            await asyncio.to_thread(listener.stop)
        self._writer_stop.set()
        if self._writer_task is not None:
            await self._writer_task
        await self._recorder_thread.stop()
        self._stop.set()
        await asyncio.gather(*self._loops, return_exceptions=True)
        for flusher in (self.status, self.pending, self.dead_letters):
            try:
                await flusher.flush()
            except Exception:
                _LOGGER.exception("final %s flush failed", type(flusher).__name__)
        await self.sink.close()

    @property
    def connected(self) -> bool:
        return all(listener.connected.is_set() for listener in self.listeners)


def _broker_endpoint(settings: Settings) -> tuple[MqttEndpoint, EmbeddedBroker | None]:
    endpoint = settings.mqtt
    if endpoint is not None:
        return endpoint, None
    broker = EmbeddedBroker(settings.EMBEDDED_MQTT_HOST, settings.EMBEDDED_MQTT_PORT)
    return MqttEndpoint(settings.EMBEDDED_MQTT_HOST, settings.EMBEDDED_MQTT_PORT, tls=False,
                        username=INGEST_USERNAME, password=None), broker


async def run_ingest(settings: Settings) -> int:
    """``firewarden ingest``: an ingest worker alone (no API, no embedded broker)."""
    if settings.mqtt is None:
        raise SettingsError("bad setting: FIREWARDEN_MQTT_URL: firewarden ingest needs a "
                            "broker it shares with devices (no embedded broker here)")
    tune_for_latency()
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    async with open_database(settings.database_url) as (_engine, sessions):
        ingest = Ingest(settings, sessions, settings.mqtt)
        await ingest.start()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        for _ in range(300):  # say "up" once both lanes are subscribed (or after 30 s)
            if ingest.connected:
                break
            await asyncio.sleep(0.1)
        settle_heap()
        print(f"Firewarden ingest worker is up ({settings.mqtt.display}, store "
              f"{ingest.sink.name}); Ctrl-C to stop.", flush=True)
        try:
            await stopping.wait()
        finally:
            await ingest.stop()
    return 0


async def _run(settings: Settings, sessions: async_sessionmaker[AsyncSession], *,
               demo: bool) -> int:
    demo_key = await _prepare_demo(settings, sessions) if demo else None
    endpoint, broker = _broker_endpoint(settings)
    if broker is not None:
        await broker.start()
    ingest = Ingest(settings, sessions, endpoint)
    await ingest.start()

    commands = CommandPublisher(endpoint, f"{settings.MQTT_CLIENT_ID}-commands")
    commands.start()
    stream = AlertStream(sessions, ingest.announcer.bus,
                         client_buffer=settings.STREAM_CLIENT_BUFFER,
                         replay_limit=settings.STREAM_REPLAY_LIMIT)
    stop_stream = asyncio.Event()
    stream_task = asyncio.create_task(stream.run(stop_stream))
    await stream.started()
    reader: TelemetryReader = (InfluxReader(ingest.sink) if isinstance(ingest.sink, InfluxSink)
                               else SqlReader(sessions))
    app = create_app(Services(settings=settings, pipeline=ingest.pipeline, sessions=sessions,
                              registry=ingest.registry, listeners=ingest.listeners,
                              dead_letters=ingest.dead_letters, announcer=ingest.announcer,
                              commands=commands, stream=stream, telemetry=reader))
    server = _ApiServer(uvicorn.Config(app, host=settings.API_HOST, port=settings.API_PORT,
                                       log_level="warning", access_log=False,
                                       timeout_graceful_shutdown=3))
    stop_demo = threading.Event()
    demo_thread: threading.Thread | None = None
    try:
        if demo:
            demo_thread = threading.Thread(target=_run_demo, name="demo-fleet",
                                           args=(settings, endpoint, stop_demo))
        print(_banner(settings, endpoint, broker is not None, demo, demo_key), flush=True)
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():  # noqa: ASYNC110 (uvicorn sets a bool)
            await asyncio.sleep(0.05)
        settle_heap()
        if demo_thread is not None and server.started:
            demo_thread.start()
        await serving
    finally:
        stop_demo.set()
        if demo_thread is not None and demo_thread.is_alive():
            await asyncio.to_thread(demo_thread.join, 10)
        stop_stream.set()
        await stream_task
        await asyncio.to_thread(commands.stop)
        await ingest.stop()
        if broker is not None:
            await broker.stop()
        _LOGGER.info("stopped")
    return 0


class _ApiServer(uvicorn.Server):
    """uvicorn's server, but a Ctrl-C stops the whole process cleanly (exit 0).

    uvicorn re-raises the signal after its own shutdown, which would skip ours;
    here the signal only asks the server to exit, and :func:`run_up` then stops
    the rest in order.  A second Ctrl-C forces the exit.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def _run_demo(settings: Settings, endpoint: MqttEndpoint, stop: threading.Event) -> None:
    sim = FleetSimulation(demo_config(settings))
    publisher = FleetPublisher(sim, endpoint, PublishOptions(qos=1, progress_every_s=0),
                               stop=stop)
    try:
        summary = publisher.run()
    except Exception:
        _LOGGER.exception("demo fleet stopped")
        return
    _LOGGER.info("demo fleet stopped after %d messages", summary.sent)


async def _prepare_demo(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> str:
    """Register the demo fleet (idempotent) and make a fresh admin key for this run."""
    sim = FleetSimulation(demo_config(settings))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.csv"
        write_registry_csv(sim.fleet, path)
        data = path.read_bytes()
    async with sessions() as session:
        result = await import_csv(session, data)
        for row in await list_keys(session):
            if row.name == DEMO_KEY_NAME and row.revoked_at is None:
                await revoke_key(session, row.id)
        _, key = await create_key(session, name=DEMO_KEY_NAME, role=Role.ADMIN)
        await session.commit()
    _LOGGER.info("demo fleet registered: %d created, %d unchanged", result.created,
                 result.unchanged)
    return key


def _banner(settings: Settings, endpoint: MqttEndpoint, embedded: bool, demo: bool,
            demo_key: str | None) -> str:
    api = f"http://{settings.API_HOST}:{settings.API_PORT}"
    broker = f"{endpoint.display} ({'embedded' if embedded else 'external'})"
    lines = [
        "Firewarden is up.",
        f"  Console: {api}/  (sign in with an API key)",
        f"  API:     {api}/api/v1  (docs {api}/docs, health {api}/health, metrics {api}/metrics)",
        f"  MQTT:    {broker}, topics {settings.TOPIC_PREFIX}/<kind>/<device_id>/<channel>",
        f"  Data:    {settings.DATA_DIR.resolve()}",
    ]
    if demo:
        lines.append(f"  Demo:    a simulated fleet of 49 devices, {DEMO_SPEED:.0f}x time; "
                     "scenarios start after 15 s")
        lines.append(f"  API key: {demo_key}  (admin, for this demo run only)")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)
