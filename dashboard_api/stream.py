"""The live alert stream's hub: stored alert changes, fanned out to connected clients.

The database is the source: every alert change is a row in ``alert_events`` with
an increasing id, whichever process made it (``firewarden up``, an operator in
the API, a separate ``firewarden ingest`` worker).  One task per process reads
new rows (woken at once by the in-process bus, else every ``poll_s``) and offers
each to every client.  So a client that reconnects with ``Last-Event-ID`` is
replayed what it missed from the same table, in order, also across a restart.

Each client has a bounded queue: a slow or stuck one is marked ``overflowed``
(told to resync) instead of slowing the hub or anyone else.

PostgreSQL can commit a lower id after a higher one (two writers): ids skipped
over are asked for again for ``GAP_WAIT`` and delivered when they appear.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.bus import AlertBus
from alerts.schemas import AlertChange, AlertPublic
from alerts.tables import AlertEventRow, AlertRow
from firewarden.database import utcnow

_LOGGER = logging.getLogger(__name__)

GAP_WAIT = timedelta(seconds=30)
FETCH = 1000
_WITH_ALERT = select(AlertEventRow, AlertRow).join(AlertRow, AlertRow.id == AlertEventRow.alert_id)


class StreamClient:
    def __init__(self, maxsize: int, accepts: Callable[[AlertChange], bool]) -> None:
        self.queue: asyncio.Queue[AlertChange] = asyncio.Queue(maxsize)
        self.accepts = accepts
        self.overflowed = False
        self.wake = asyncio.Event()

    def offer(self, change: AlertChange) -> None:
        if self.overflowed or not self.accepts(change):
            return
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True
        self.wake.set()


def change_from(event: AlertEventRow, alert: AlertRow) -> AlertChange:
    return AlertChange(id=event.id, action=event.action, at=event.at, actor=event.actor,
                       note=event.note, alert=AlertPublic.model_validate(alert))


class AlertStream:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: AlertBus, *,
                 poll_s: float = 1.0, client_buffer: int = 1000,
                 replay_limit: int = 10_000) -> None:
        self._sessions = sessions
        self._bus = bus
        self.poll_s = poll_s
        self.client_buffer = client_buffer
        self.replay_limit = replay_limit
        """A client further behind than this many changes is told to reload."""
        self.clients: set[StreamClient] = set()
        self.last_id = 0
        self._gaps: dict[int, datetime] = {}
        self._started = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        wakeups = self._bus.doorbell()
        try:
            async with self._sessions() as session:
                self.last_id = await session.scalar(select(func.max(AlertEventRow.id))) or 0
            self._started.set()
            while not stop.is_set():
                with contextlib.suppress(asyncio.QueueEmpty):
                    wakeups.queue.get_nowait()
                try:
                    await self.poll()
                except Exception:
                    _LOGGER.exception("alert stream poll failed; retrying")
                await _wait_for_bell(wakeups.queue, stop, self.poll_s)
        finally:
            wakeups.close()

    async def started(self) -> None:
        await self._started.wait()

    async def poll(self) -> int:
        """Read and fan out new changes; returns how many."""
        wanted = AlertEventRow.id > self.last_id
        if self._gaps:
            wanted = or_(wanted, AlertEventRow.id.in_(sorted(self._gaps)))
        async with self._sessions() as session:
            rows = (await session.execute(
                _WITH_ALERT.where(wanted).order_by(AlertEventRow.id).limit(FETCH))).all()
        now = utcnow()
        for event, alert in rows:
            if event.id > self.last_id:
                self._gaps.update((i, now) for i in range(self.last_id + 1, event.id))
                self.last_id = event.id
            self._gaps.pop(event.id, None)
            if alert.suppressed:
                continue
            change = change_from(event, alert)
            for client in list(self.clients):
                client.offer(change)
        if self._gaps:
            self._gaps = {k: v for k, v in self._gaps.items() if now - v < GAP_WAIT}
        return len(rows)

    def connect(self, accepts: Callable[[AlertChange], bool]) -> StreamClient:
        client = StreamClient(self.client_buffer, accepts)
        self.clients.add(client)
        return client

    def disconnect(self, client: StreamClient) -> None:
        self.clients.discard(client)

    async def replay(self, after_id: int, accepts: Callable[[AlertChange], bool]
                     ) -> list[AlertChange] | None:
        """Changes after ``after_id`` up to what the hub has fanned out, or None when the
        gap is too old to replay (or the id is unknown): the client must reload."""
        if after_id > self.last_id:
            return None
        async with self._sessions() as session:
            missed = await session.scalar(
                select(func.count()).select_from(AlertEventRow)
                .where(AlertEventRow.id > after_id, AlertEventRow.id <= self.last_id))
            if (missed or 0) > self.replay_limit:
                return None
            rows = (await session.execute(
                _WITH_ALERT.where(AlertEventRow.id > after_id, AlertEventRow.id <= self.last_id)
                .order_by(AlertEventRow.id))).all()
        changes = [change_from(e, a) for e, a in rows if not a.suppressed]
        return [c for c in changes if accepts(c)]


async def _wait_for_bell(bell: asyncio.Queue[Any], stop: asyncio.Event, seconds: float) -> None:
    getter = asyncio.ensure_future(bell.get())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({getter, stopper}, timeout=seconds,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        getter.cancel()
        stopper.cancel()

