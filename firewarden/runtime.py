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
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dashboard_api import Services, create_app
from devices import MessageDecoder
from devices.registry.activity import PendingRecorder, StatusRecorder
from devices.registry.cache import RegistryCache
from devices.registry.csv_import import import_csv
from firewarden.database import open_database
from firewarden.embedded_broker import INGEST_USERNAME, EmbeddedBroker
from firewarden.keys import Role, create_key, list_keys, revoke_key
from firewarden.ports import ensure_port_free
from firewarden.settings import MqttEndpoint, Settings
from ingest import MqttListener, Pipeline
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
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    ensure_port_free(settings.API_HOST, settings.API_PORT)
    async with open_database(settings.database_url) as (_engine, sessions):
        return await _run(settings, sessions, demo=demo)


async def _run(settings: Settings, sessions: async_sessionmaker[AsyncSession], *,
               demo: bool) -> int:
    demo_key = await _prepare_demo(settings, sessions) if demo else None
    registry = RegistryCache(sessions, poll_interval_s=settings.REGISTRY_POLL_S)
    await registry.load()
    status = StatusRecorder(sessions)
    pending = PendingRecorder(sessions)
    stop = asyncio.Event()
    loops = [asyncio.create_task(loop.run(stop), name=type(loop).__name__)
             for loop in (registry, status, pending)]

    broker: EmbeddedBroker | None = None
    endpoint = settings.mqtt
    if endpoint is None:
        broker = EmbeddedBroker(settings.EMBEDDED_MQTT_HOST, settings.EMBEDDED_MQTT_PORT)
        await broker.start()
        endpoint = MqttEndpoint(settings.EMBEDDED_MQTT_HOST, settings.EMBEDDED_MQTT_PORT,
                                tls=False, username=INGEST_USERNAME, password=None)

    pipeline = Pipeline(make_decoder(settings), registry, on_unregistered=pending.record)
    pipeline.add_consumer(status.record)
    listener = MqttListener(endpoint, pipeline, prefix=settings.TOPIC_PREFIX,
                            client_id=settings.MQTT_CLIENT_ID,
                            shared_group=settings.MQTT_SHARED_GROUP)
    listener.start()

    app = create_app(Services(settings=settings, pipeline=pipeline, sessions=sessions,
                              registry=registry, listener=listener))
    server = _ApiServer(uvicorn.Config(app, host=settings.API_HOST, port=settings.API_PORT,
                                       log_level="warning", access_log=False))
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
        if demo_thread is not None and server.started:
            demo_thread.start()
        await serving
    finally:
        stop_demo.set()
        if demo_thread is not None and demo_thread.is_alive():
            await asyncio.to_thread(demo_thread.join, 10)
        await asyncio.to_thread(listener.stop)
        stop.set()
        await asyncio.gather(*loops, return_exceptions=True)
        for recorder in (status, pending):
            try:
                await recorder.flush()
            except Exception:
                _LOGGER.exception("final %s flush failed", type(recorder).__name__)
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
        f"  API:     {api}  (health {api}/health, metrics {api}/metrics)",
        f"  MQTT:    {broker}, topics {settings.TOPIC_PREFIX}/<kind>/<device_id>/<channel>",
        f"  Data:    {settings.DATA_DIR.resolve()}",
    ]
    if demo:
        lines.append(f"  Demo:    a simulated fleet of 49 devices, {DEMO_SPEED:.0f}x time; "
                     "scenarios start after 15 s")
        lines.append(f"  API key: {demo_key}  (admin, for this demo run only)")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)
