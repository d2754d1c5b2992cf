"""The alert engine as ingest sees it: every accepted reading passes through here.

It runs on the MQTT network threads (both lanes), so it only evaluates the
rules in memory and hands the resulting actions to the :class:`AlertRecorder`,
which stores them.  A message whose reading led to actions is acknowledged to
the broker only once the telemetry store *and* the recorder have made it
durable, so a fire alarm acknowledged to the broker is never lost, even to a
SIGKILL between receiving and storing it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from alerts.actions import Action, Clear, Raise
from alerts.catalog import ALARM_EVENTS
from alerts.offline import OfflineTracker
from alerts.recorder import AlertRecorder
from alerts.rules import States, evaluate
from devices import Channel, Reading
from devices.registry.cache import DeviceInfo

_LOGGER = logging.getLogger(__name__)

Ack = Callable[[], None]


class AlertEngine:
    def __init__(self, recorder: AlertRecorder, offline: OfflineTracker | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.recorder = recorder
        self.offline = offline
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, States] = {}

    def load_states(self, rows: Iterable[tuple[str, str, dict[str, object]]]) -> None:
        """Rule progress saved before a restart: (device_id, rule, state) rows."""
        with self._lock:
            for device_id, rule, state in rows:
                self._states.setdefault(device_id, {})[rule] = dict(state)

    def consume(self, reading: Reading, device: DeviceInfo, ack: Ack | None) -> Ack | None:
        """Evaluate one reading; return the ack the telemetry store should call."""
        now_ms = int(self._clock() * 1000)
        state = device.state_at(now_ms)
        actions: list[Action]
        if state == "decommissioned":
            # Only a possible fire still counts from a device taken out of service.
            actions = self._alarm_only(reading, device.id, "fire")
        else:
            with self._lock:
                actions = evaluate(reading, device, self._states.setdefault(device.id, {}))
        if (self.offline is not None and state != "decommissioned"
                and self.offline.seen(device, reading.received_ms)):
            actions.append(Clear(device_id=device.id, types=("offline",),
                                 at_ms=reading.received_ms, reason="device reported"))
        if not actions:
            return ack
        suppressed = state == "maintenance"
        actions = [Raise(device_id=a.device_id, type=a.type, at_ms=a.at_ms, subject=a.subject,
                         details=a.details, kind=device.kind.value, site_id=device.site_id,
                         jurisdiction=device.jurisdiction, suppressed=suppressed)
                   if isinstance(a, Raise) else a for a in actions]
        return self.recorder.submit(actions, ack)

    def unregistered(self, reading: Reading, ack: Ack | None) -> Ack | None:
        """A device not in the registry: a possible fire is still raised, nothing else."""
        actions = self._alarm_only(reading, reading.device_id, "unregistered_device_alarm")
        if not actions:
            return ack
        return self.recorder.submit(actions, ack)

    @staticmethod
    def _alarm_only(reading: Reading, device_id: str, type_: str) -> list[Action]:
        event = getattr(reading.body, "event", None)
        if reading.channel is not Channel.EVENT or event not in ALARM_EVENTS:
            return []
        return [Raise(device_id=device_id, type=type_, at_ms=reading.ts_ms,
                      kind=reading.kind.value, details={"event": event})]
