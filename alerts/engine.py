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
from collections.abc import Callable, Iterable, Sequence

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
        return self.consume_batch([(reading, device, ack)])[0]

    def consume_batch(self, accepted: Sequence[tuple[Reading, DeviceInfo, Ack | None]]
                      ) -> list[Ack | None]:
        """Evaluate readings in order; for each, the ack the telemetry store should call
        (the message's own, or one that also waits for the alerts it raised)."""
        now_ms = int(self._clock() * 1000)
        states = [device.state_at(now_ms) for _reading, device, _ack in accepted]
        # Only a possible fire still counts from a device taken out of service.
        with self._lock:  # once per batch: rule states are only touched here
            planned = [
                self._alarm_only(reading, device.id, "fire") if state == "decommissioned"
                else evaluate(reading, device, self._states.setdefault(device.id, {}))
                for (reading, device, _ack), state in zip(accepted, states, strict=True)]
        if self.offline is not None:
            back = self.offline.seen_batch([(device, reading.received_ms)
                                            for (reading, device, _), state
                                            in zip(accepted, states, strict=True)
                                            if state != "decommissioned"])
            for (reading, device, _), actions in zip(accepted, planned, strict=True):
                if device.id in back:
                    actions.append(Clear(device_id=device.id, types=("offline",),
                                         at_ms=reading.received_ms, reason="device reported"))
                    back.discard(device.id)  # one clear, on the first message back
        acks: list[Ack | None] = []
        for (_reading, device, ack), state, actions in zip(accepted, states, planned,
                                                          strict=True):
            if not actions:
                acks.append(ack)
                continue
            suppressed = state == "maintenance"
            stamped = [Raise(device_id=a.device_id, type=a.type, at_ms=a.at_ms,
                             subject=a.subject, details=a.details, kind=device.kind.value,
                             site_id=device.site_id, jurisdiction=device.jurisdiction,
                             suppressed=suppressed)
                       if isinstance(a, Raise) else a for a in actions]
            acks.append(self.recorder.submit(stamped, ack))
        return acks

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
