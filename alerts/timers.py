"""Time-driven alerts: devices going offline, unanswered duty checks, reminders.

Everything here is driven by stored deadlines, so a restart (even a SIGKILL)
forgets nothing: offline deadlines are rebuilt from ``device_status``, duty
checks and reminder times live in their tables.  Where two processes could
act on the same deadline, a conditional update decides which one does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts import store
from alerts.actions import Action, Raise
from alerts.catalog import Status
from alerts.offline import OfflineTracker
from alerts.recorder import AlertRecorder
from alerts.tables import UNRESOLVED, AlertRow, DutyCheckRow
from devices.kinds import DeviceKind
from devices.registry.cache import DeviceInfo, RegistryCache
from devices.registry.tables import DeviceStatusRow
from firewarden.aio import sleep_or_stop

_LOGGER = logging.getLogger(__name__)

TICK_S = 0.25
"""Offline deadlines are checked this often (raised within a second of the deadline)."""
SLOW_TICK_S = 1.0
SYNC_OFFLINE_S = 5.0
"""How often the open offline alerts are re-read (another worker may have raised one)."""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class AlertTimers:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], recorder: AlertRecorder,
                 registry: RegistryCache, offline: OfflineTracker, *,
                 clock: Callable[[], float] = time.time, startup_grace_s: float = 30.0) -> None:
        self._sessions = sessions
        self.recorder = recorder
        self.registry = registry
        self.offline = offline
        self._clock = clock
        self.startup_grace_s = startup_grace_s
        registry.on_change(self._registry_changed)

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def load(self) -> None:
        """Track every device: its stored offline deadline, or the window from now.

        A deadline that passed while Firewarden was down is given ``startup_grace_s``,
        so the broker's backlog can arrive before anything is called offline.
        """
        now_ms = self.now_ms()
        floor = now_ms + int(self.startup_grace_s * 1000)
        async with self._sessions() as session:
            stored = {r[0]: _ms(r[1]) for r in await session.execute(
                select(DeviceStatusRow.device_id, DeviceStatusRow.offline_at))}
            await self._sync_offline(session)
        deadlines = []
        for device in self.registry.devices():
            if self._tracked_state(device, now_ms):
                default = now_ms + device.profile.offline_after_s * 1000
                deadlines.append((device.id, max(stored.get(device.id, default), floor)))
        self.offline.track_many(deadlines)
        _LOGGER.info("tracking %d devices for offline detection", len(deadlines))

    @staticmethod
    def _tracked_state(device: DeviceInfo, now_ms: int) -> bool:
        return device.state_at(now_ms) == "active"

    def _registry_changed(self, devices: list[DeviceInfo]) -> None:
        now_ms = self.now_ms()
        for device in devices:
            state = device.state_at(now_ms)
            if state == "decommissioned":
                self.offline.untrack(device.id)
            elif not self.offline.tracks(device.id) and not self.offline.is_offline(device.id):
                start = device.maintenance_until_ms if state == "maintenance" else now_ms
                self.offline.track(device.id, start + device.profile.offline_after_s * 1000)

    async def run(self, stop: asyncio.Event) -> None:
        last_slow = last_sync = 0.0
        while not stop.is_set():
            now = time.monotonic()
            try:
                await self.check_offline()
                if now - last_slow >= SLOW_TICK_S:
                    last_slow = now
                    await self.check_duty_checks()
                    await self.send_reminders()
                if now - last_sync >= SYNC_OFFLINE_S:
                    last_sync = now
                    async with self._sessions() as session:
                        await self._sync_offline(session)
            except Exception:
                _LOGGER.exception("alert timers failed; retrying")
            await sleep_or_stop(stop, TICK_S)

    async def _sync_offline(self, session: AsyncSession) -> None:
        self.offline.set_offline((await session.scalars(
            select(AlertRow.device_id).where(AlertRow.type == "offline", UNRESOLVED))).all())

    async def check_offline(self) -> int:
        """Raise offline for devices past their deadline; returns how many were raised."""
        now_ms = self.now_ms()
        due = self.offline.due(now_ms)
        if not due:
            return 0
        candidates: dict[str, tuple[DeviceInfo, int]] = {}
        for device_id, deadline in due:
            device = self.registry.get(device_id)
            if device is None:
                continue
            state = device.state_at(now_ms)
            if state == "maintenance":  # tracked again from the end of maintenance
                self.offline.track(device_id, device.maintenance_until_ms
                                   + device.profile.offline_after_s * 1000)
            elif state == "active":
                candidates[device_id] = (device, deadline)
        if not candidates:
            return 0
        async with self._sessions() as session:  # another worker may have heard from it
            stored = {r[0]: (_ms(r[1]), r[2]) for r in await session.execute(
                select(DeviceStatusRow.device_id, DeviceStatusRow.offline_at,
                       DeviceStatusRow.last_seen_at)
                .where(DeviceStatusRow.device_id.in_(list(candidates))))}
        actions: list[Action] = []
        for device_id, (device, deadline) in candidates.items():
            stored_deadline, last_seen = stored.get(device_id, (0, None))
            if stored_deadline > now_ms:
                self.offline.track(device_id, stored_deadline)
                continue
            actions.append(Raise(
                device_id=device_id, type="offline", at_ms=deadline, kind=device.kind.value,
                site_id=device.site_id, jurisdiction=device.jurisdiction,
                details={"last_seen_at": last_seen.isoformat() if last_seen else None,
                         "offline_after_s": device.profile.offline_after_s}))
        if actions:
            self.offline.mark_offline(a.device_id for a in actions if isinstance(a, Raise))
            self.recorder.submit(actions, trigger="deadline")
        return len(actions)

    async def check_duty_checks(self) -> int:
        """Mark unanswered checks past their deadline missed, each raising a duty lapse."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        async with self._sessions() as session:
            missed = (await session.execute(
                update(DutyCheckRow)
                .where(DutyCheckRow.status == "pending", DutyCheckRow.deadline_at < now)
                .values(status="missed")
                .returning(DutyCheckRow.id, DutyCheckRow.device_id, DutyCheckRow.site_id,
                           DutyCheckRow.jurisdiction, DutyCheckRow.deadline_at)
                .execution_options(synchronize_session=False))).all()
            if not missed:
                return 0
            actions: list[Action] = [
                Raise(device_id=device_id, type="duty_lapse", subject="duty_check",
                      at_ms=_ms(deadline), kind=DeviceKind.CONTROLROOM.value, site_id=site_id,
                      jurisdiction=jurisdiction, suppressed=self._in_maintenance(device_id),
                      details={"check_id": check_id, "reason": "duty check not answered"})
                for check_id, device_id, site_id, jurisdiction, deadline in missed]
            events = await store.apply(session, actions, self.recorder.policy)
            changes = await self.recorder.announcer.prepare(session, events)
            await session.commit()
        self.recorder.announcer.announce(changes)
        return len(missed)

    def _in_maintenance(self, device_id: str) -> bool:
        device = self.registry.get(device_id)
        return device is not None and device.state_at(self.now_ms()) == "maintenance"

    async def send_reminders(self) -> int:
        """Re-announce unacknowledged critical alerts; escalate every few reminders."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        policy = self.recorder.policy
        async with self._sessions() as session:
            due = (await session.execute(
                select(AlertRow.id, AlertRow.next_reminder_at, AlertRow.reminders)
                .where(AlertRow.status == Status.OPEN, AlertRow.next_reminder_at <= now)
                .order_by(AlertRow.next_reminder_at).limit(200))).all()
            events = []
            for alert_id, next_at, reminders in due:
                count = reminders + 1
                level = count // policy.reminders_per_escalation
                result = await session.execute(
                    update(AlertRow).where(AlertRow.id == alert_id,
                                           AlertRow.next_reminder_at == next_at)
                    .values(reminders=count, escalation=level,
                            next_reminder_at=now + timedelta(seconds=policy.reminder_interval_s)))
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    continue  # another process sent this reminder
                events.append(await store.add_event(
                    session, alert_id, "reminded", now,
                    details={"reminder": count, "escalation": level}))
                if count % policy.reminders_per_escalation == 0:
                    events.append(await store.add_event(session, alert_id, "escalated", now,
                                                        details={"escalation": level}))
            changes = await self.recorder.announcer.prepare(session, events)
            await session.commit()
        self.recorder.announcer.announce(changes)
        return len(due)
