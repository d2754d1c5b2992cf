"""Process wiring for ``firewarden up``: broker, ingest, API and demo fleet in one process.

Start order: embedded broker (if no broker is configured) -> ingest listener
-> API server -> demo fleet.  Stop order is the reverse; Ctrl-C (SIGINT) or
SIGTERM stops the API server, which ends :func:`run_up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator

import uvicorn

from dashboard_api import Services, create_app
from devices import MessageDecoder
from firewarden.embedded_broker import INGEST_USERNAME, EmbeddedBroker
from firewarden.ports import ensure_port_free
from firewarden.settings import MqttEndpoint, Settings
from ingest import MqttListener, Pipeline
from simulators import FleetPublisher, FleetSimulation, PublishOptions, Scenario, SimConfig

_LOGGER = logging.getLogger(__name__)

DEMO_SCENARIOS = frozenset(Scenario) - {Scenario.FLOOD}
DEMO_SPEED = 60.0


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

    broker: EmbeddedBroker | None = None
    endpoint = settings.mqtt
    if endpoint is None:
        broker = EmbeddedBroker(settings.EMBEDDED_MQTT_HOST, settings.EMBEDDED_MQTT_PORT)
        await broker.start()
        endpoint = MqttEndpoint(settings.EMBEDDED_MQTT_HOST, settings.EMBEDDED_MQTT_PORT,
                                tls=False, username=INGEST_USERNAME, password=None)

    pipeline = Pipeline(make_decoder(settings))
    listener = MqttListener(endpoint, pipeline, prefix=settings.TOPIC_PREFIX,
                            client_id=settings.MQTT_CLIENT_ID,
                            shared_group=settings.MQTT_SHARED_GROUP)
    listener.start()

    app = create_app(Services(settings=settings, pipeline=pipeline, listener=listener))
    server = _ApiServer(uvicorn.Config(app, host=settings.API_HOST, port=settings.API_PORT,
                                       log_level="warning", access_log=False))
    stop_demo = threading.Event()
    demo_thread: threading.Thread | None = None
    try:
        if demo:
            demo_thread = threading.Thread(target=_run_demo, name="demo-fleet",
                                           args=(settings, endpoint, stop_demo))
        print(_banner(settings, endpoint, broker is not None, demo), flush=True)
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


def _banner(settings: Settings, endpoint: MqttEndpoint, embedded: bool, demo: bool) -> str:
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
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)
