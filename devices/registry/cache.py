"""The in-process registry lookup used on the ingest hot path.

``get(device_id)`` is one dict lookup.  The cache is loaded whole at start-up
and kept fresh by following the ``registry_changes`` log that every registry
change appends to in its own transaction, so changes made by another process
sharing the same database arrive within one poll interval (1 s by default).

Change ids can commit out of order on PostgreSQL (a transaction holding a lower
id may commit after a higher one is seen), so each poll also looks back over the
last ``LOOKBACK`` of changes and re-applies any it has not seen; re-applying is
harmless because a change only says "reload this device / site".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import delete, or_, select
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
_jurisdictions: dict[str, str] = {}


def _info(device: DeviceRow, site: SiteRow) -> DeviceInfo:
    kind = _KINDS[device.kind]
    until = device.maintenance_until
    return DeviceInfo(
        device.id, kind, site.id,
        _jurisdictions.setdefault(site.jurisdiction, site.jurisdiction),  # one string per value
        device.state, int(until.timestamp() * 1000) if until else 0,
        effective_profile(kind, site.profiles.get(kind.value), device.profile or None),
        site.min_operators,
    )


class RegistryCache:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *,
                 poll_interval_s: float = 1.0) -> None:
        self._sessions = sessions
        self.poll_interval_s = poll_interval_s
        self._devices: dict[str, DeviceInfo] = {}
        self._applied: dict[int, datetime] = {}
        self._last_id = 0
        self._last_prune = utcnow()

    def get(self, device_id: str) -> DeviceInfo | None:
        return self._devices.get(device_id)

    def __len__(self) -> int:
        return len(self._devices)

    async def load(self) -> None:
        """Read every device (streamed, so a million rows do not sit in memory twice)."""
        async with self._sessions() as session:
            newest = await session.scalar(select(RegistryChangeRow.id)
                                          .order_by(RegistryChangeRow.id.desc()).limit(1))
            devices: dict[str, DeviceInfo] = {}
            result = await session.stream(
                select(DeviceRow, SiteRow).join(SiteRow, SiteRow.id == DeviceRow.site_id)
                .execution_options(yield_per=5000))
            async for device, site in result:
                devices[device.id] = _info(device, site)
        self._devices = devices
        self._last_id = newest or 0
        _LOGGER.info("registry cache loaded %d devices", len(devices))

    async def refresh(self) -> int:
        """Apply changes since the last call; returns how many change entries were applied."""
        now = utcnow()
        async with self._sessions() as session:
            changes = (await session.execute(
                select(RegistryChangeRow.id, RegistryChangeRow.device_id,
                       RegistryChangeRow.site_id, RegistryChangeRow.changed_at)
                .where(or_(RegistryChangeRow.id > self._last_id,
                           RegistryChangeRow.changed_at >= now - LOOKBACK))
            )).all()
            fresh = [c for c in changes if c[0] not in self._applied]
            if fresh:
                await self._reload(session, {c[1] for c in fresh if c[1]},
                                   {c[2] for c in fresh if c[2]})
                for change_id, _, _, changed_at in fresh:
                    self._applied[change_id] = changed_at
                self._last_id = max(self._last_id, *(c[0] for c in fresh))
            if now - self._last_prune > timedelta(minutes=10):
                await self._prune(session, now)
        cutoff = now - 2 * LOOKBACK
        self._applied = {k: v for k, v in self._applied.items() if v >= cutoff}
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
        found: dict[str, DeviceInfo] = {}
        for chunk in _chunks(sorted(device_ids)):
            rows = await session.execute(select(DeviceRow, SiteRow)
                                         .join(SiteRow, SiteRow.id == DeviceRow.site_id)
                                         .where(DeviceRow.id.in_(chunk)))
            found.update({d.id: _info(d, s) for d, s in rows})
        for device_id in device_ids - found.keys():
            self._devices.pop(device_id, None)
        for chunk in _chunks(sorted(site_ids)):
            rows = await session.execute(select(DeviceRow, SiteRow)
                                         .join(SiteRow, SiteRow.id == DeviceRow.site_id)
                                         .where(SiteRow.id.in_(chunk)))
            found.update({d.id: _info(d, s) for d, s in rows})
        self._devices.update(found)

    async def _prune(self, session: AsyncSession, now: datetime) -> None:
        await session.execute(delete(RegistryChangeRow)
                              .where(RegistryChangeRow.changed_at < now - CHANGE_LOG_KEPT))
        await session.commit()
        self._last_prune = now


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]
