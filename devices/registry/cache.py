"""The in-process registry lookup used on the ingest hot path.

``get(device_id)`` is one dict lookup.  The cache is loaded whole at start-up
and kept fresh by following the ``registry_changes`` log that every registry
change appends to in its own transaction, so changes made by another process
sharing the same database arrive within one poll interval (1 s by default).

Change ids can commit out of order on PostgreSQL (a transaction holding a lower
id may commit after a higher one is seen), so each poll also asks again for the
ids it skipped over (gaps) during the last ``LOOKBACK``: a late commit fills its
gap and is applied then; a rolled-back one is forgotten after ``LOOKBACK``.
Re-applying a change is harmless: it only says "reload this device / site".
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Text, cast, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices.kinds import DeviceKind
from devices.profiles import Profile, effective_profile
from devices.registry.tables import DeviceRow, RegistryChangeRow, SiteRow
from firewarden.aio import sleep_or_stop
from firewarden.database import utcnow

_LOGGER = logging.getLogger(__name__)

LOOKBACK = timedelta(seconds=30)
CHANGE_LOG_KEPT = timedelta(days=1)
CHUNK = 500
MAX_GAPS = 1000


class DeviceInfo(msgspec.Struct, frozen=True, gc=False):
    """What ingest and alerts need to know about a registered device."""

    id: str
    kind: DeviceKind
    site_id: str
    jurisdiction: str
    state: str
    maintenance_until_ms: int
    """0 when not in maintenance."""
    profile: Profile
    min_operators: int

    def state_at(self, now_ms: int) -> str:
        """Maintenance ends by itself at its end time."""
        if self.state == "maintenance" and now_ms >= self.maintenance_until_ms:
            return "active"
        return self.state


_KINDS = {k.value: k for k in DeviceKind}
# The profile comes as JSON text: most are "{}" and need no parsing at all.
_DEVICE_COLUMNS = (DeviceRow.id, DeviceRow.kind, DeviceRow.site_id, DeviceRow.state,
                   DeviceRow.maintenance_until, cast(DeviceRow.profile, Text))


class _Sites:
    """Site facts by id, and one profile object per (site, kind) for devices without
    overrides of their own (most of them), so loading a million devices stays cheap."""

    def __init__(self, sites: Iterable[SiteRow]) -> None:
        self.by_id = {s.id: s for s in sites}
        self._profiles: dict[tuple[str, str], Profile] = {}

    def info(self, device_id: str, kind_name: str, site_id: str, state: str,
             until: datetime | None, override_json: str | None) -> DeviceInfo:
        site = self.by_id[site_id]
        kind = _KINDS[kind_name]
        profile: Profile | None
        if override_json and override_json != "{}":
            profile = effective_profile(kind, site.profiles.get(kind_name),
                                        json.loads(override_json))
        else:
            profile = self._profiles.get((site_id, kind_name))
            if profile is None:
                profile = effective_profile(kind, site.profiles.get(kind_name), None)
                self._profiles[site_id, kind_name] = profile
        return DeviceInfo(device_id, kind, site_id, site.jurisdiction, state,
                          int(until.timestamp() * 1000) if until else 0, profile,
                          site.min_operators)


class RegistryCache:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *,
                 poll_interval_s: float = 1.0) -> None:
        self._sessions = sessions
        self.poll_interval_s = poll_interval_s
        self._devices: dict[str, DeviceInfo] = {}
        self._gaps: dict[int, datetime] = {}
        """Ids below the newest seen that have not been seen (yet), and since when."""
        self._last_id = 0
        self._last_prune = utcnow()
        self._listeners: list[Callable[[list[DeviceInfo]], None]] = []

    def on_change(self, listener: Callable[[list[DeviceInfo]], None]) -> None:
        """Call ``listener`` with the devices added or changed by each refresh."""
        self._listeners.append(listener)

    def devices(self) -> Iterator[DeviceInfo]:
        return iter(list(self._devices.values()))

    def get(self, device_id: str) -> DeviceInfo | None:
        return self._devices.get(device_id)

    def __len__(self) -> int:
        return len(self._devices)

    async def load(self) -> None:
        """Read every device (streamed, so a million rows do not sit in memory twice)."""
        async with self._sessions() as session:
            newest = await session.scalar(select(RegistryChangeRow.id)
                                          .order_by(RegistryChangeRow.id.desc()).limit(1))
            sites = _Sites((await session.scalars(select(SiteRow))).all())
            devices: dict[str, DeviceInfo] = {}
            result = await session.stream(select(*_DEVICE_COLUMNS)
                                          .execution_options(yield_per=10_000))
            async for partition in result.partitions():  # one await per 10k rows, not per row
                for row in partition:
                    devices[row[0]] = sites.info(*row)
        self._devices = devices
        self._last_id = newest or 0
        _LOGGER.info("registry cache loaded %d devices", len(devices))

    async def refresh(self) -> int:
        """Apply changes since the last call; returns how many change entries were applied."""
        now = utcnow()
        wanted = RegistryChangeRow.id > self._last_id
        if self._gaps:
            wanted = or_(wanted, RegistryChangeRow.id.in_(sorted(self._gaps)))
        async with self._sessions() as session:
            fresh = (await session.execute(
                select(RegistryChangeRow.id, RegistryChangeRow.device_id,
                       RegistryChangeRow.site_id).where(wanted))).all()
            if fresh:
                await self._reload(session, {c[1] for c in fresh if c[1]},
                                   {c[2] for c in fresh if c[2]})
                seen = {c[0] for c in fresh}
                newest = max(seen)
                for change_id in range(self._last_id + 1, newest):
                    if change_id not in seen and len(self._gaps) < MAX_GAPS:
                        self._gaps[change_id] = now
                for change_id in seen:
                    self._gaps.pop(change_id, None)
                self._last_id = max(self._last_id, newest)
            if now - self._last_prune > timedelta(minutes=10):
                await self._prune(session, now)
        self._gaps = {k: v for k, v in self._gaps.items() if now - v < LOOKBACK}
        return len(fresh)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the change log until ``stop`` is set; errors are logged and retried."""
        while not stop.is_set():
            try:
                await self.refresh()
            except Exception:
                _LOGGER.exception("registry cache refresh failed; retrying")
            await sleep_or_stop(stop, self.poll_interval_s)

    async def _reload(self, session: AsyncSession, device_ids: set[str],
                      site_ids: set[str]) -> None:
        rows: list[Any] = []
        for chunk in _chunks(sorted(device_ids)):
            rows += (await session.execute(select(*_DEVICE_COLUMNS)
                                           .where(DeviceRow.id.in_(chunk)))).all()
        for chunk in _chunks(sorted(site_ids)):
            rows += (await session.execute(select(*_DEVICE_COLUMNS)
                                           .where(DeviceRow.site_id.in_(chunk)))).all()
        needed = sorted({row[2] for row in rows})
        site_rows: list[SiteRow] = []
        for chunk in _chunks(needed):
            site_rows += (await session.scalars(select(SiteRow).where(SiteRow.id.in_(chunk)))
                          ).all()
        sites = _Sites(site_rows)
        found = {row[0]: sites.info(*row) for row in rows}
        for device_id in device_ids - found.keys():
            self._devices.pop(device_id, None)
        self._devices.update(found)
        for listener in self._listeners:
            try:
                listener(list(found.values()))
            except Exception:  # a listener's bug must not stop the cache following changes
                _LOGGER.exception("registry change listener %r failed", listener)

    async def _prune(self, session: AsyncSession, now: datetime) -> None:
        await session.execute(delete(RegistryChangeRow)
                              .where(RegistryChangeRow.changed_at < now - CHANGE_LOG_KEPT))
        await session.commit()
        self._last_prune = now


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]
