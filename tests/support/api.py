"""The API in-process over httpx (real app, real database), with a key per role."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.announce import Announcer
from alerts.bus import AlertBus
from alerts.engine import AlertEngine
from alerts.offline import OfflineTracker
from alerts.recorder import AlertRecorder
from alerts.store import Policy
from alerts.timers import AlertTimers
from alerts.webhooks import WebhookDispatcher
from dashboard_api import Services, create_app
from dashboard_api.stream import AlertStream
from devices import MessageDecoder
from devices.registry.activity import PendingRecorder, StatusRecorder
from devices.registry.cache import RegistryCache
from firewarden.database import open_database
from firewarden.keys import Role, create_key
from firewarden.ports import free_port
from firewarden.settings import Settings
from ingest import Pipeline
from ingest.commands import CommandPublisher
from ingest.dead_letters import DeadLetterStore
from ingest.readback import SqlReader, TelemetryReader


@dataclass
class ApiHarness:
    client: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    registry: RegistryCache
    pipeline: Pipeline
    status: StatusRecorder
    pending: PendingRecorder
    dead_letters: DeadLetterStore
    keys: dict[Role, str]
    bus: AlertBus
    recorder: AlertRecorder
    engine: AlertEngine
    timers: AlertTimers
    webhooks: WebhookDispatcher
    stream: AlertStream
    app: FastAPI
    clock: list[float]
    """clock[0] is "now" for the alert engine and timers (a test moves it)."""

    async def handle(self, topic: str, payload: bytes) -> None:
        """One message through the pipeline, its alerts stored."""
        self.pipeline.handle(topic, payload)
        while self.recorder.pending:
            await self.recorder.flush_once()

    def as_(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@asynccontextmanager
async def api_harness(database_url: str, *, commands: CommandPublisher | None = None,
                      policy: Policy | None = None, telemetry: TelemetryReader | None = None,
                      stream_buffer: int = 1000, **settings: object
                      ) -> AsyncIterator[ApiHarness]:
    config = Settings(DATABASE_URL=database_url, **settings)  # type: ignore[arg-type]
    clock = [time.time()]
    now: Callable[[], float] = lambda: clock[0]  # noqa: E731
    async with open_database(config.database_url) as (_engine, sessions):
        registry = RegistryCache(sessions)
        await registry.load()
        status, pending = StatusRecorder(sessions), PendingRecorder(sessions)
        dead_letters = DeadLetterStore(sessions, keep=5)
        bus = AlertBus()
        webhooks = WebhookDispatcher(sessions)
        announcer = Announcer(bus, webhooks)
        recorder = AlertRecorder(sessions, announcer, policy)
        offline = OfflineTracker()
        engine = AlertEngine(recorder, offline, clock=now)
        timers = AlertTimers(sessions, recorder, registry, offline, clock=now,
                             startup_grace_s=0)
        pipeline = Pipeline(MessageDecoder("fw"), registry, on_unregistered=pending.record,
                            on_rejection=dead_letters.record, alerts=engine)
        pipeline.add_consumer(status.record_batch)
        keys = {}
        async with sessions() as session:
            for role in Role:
                _, keys[role] = await create_key(session, name=f"test {role}", role=role)
            await session.commit()
        stream = AlertStream(sessions, bus, client_buffer=stream_buffer)
        app = create_app(Services(settings=config, pipeline=pipeline, sessions=sessions,
                                  registry=registry, dead_letters=dead_letters,
                                  announcer=announcer, commands=commands, stream=stream,
                                  telemetry=telemetry or SqlReader(sessions)))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield ApiHarness(client, sessions, registry, pipeline, status, pending,
                             dead_letters, keys, bus, recorder, engine, timers, webhooks, stream,
                             app, clock)


@asynccontextmanager
async def serving(harness: ApiHarness) -> AsyncIterator[str]:
    """The harness's app on a real uvicorn server (streams need a real connection), with
    the stream hub running; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(harness.app, host="127.0.0.1", port=port,
                                           log_level="warning", timeout_graceful_shutdown=1))
    stop = asyncio.Event()
    hub = asyncio.create_task(harness.stream.run(stop))
    await harness.stream.started()
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn only sets a bool)
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        stop.set()
        await hub
