"""The ingest pipeline's first stage: decode, look the device up, count, hand on.

It runs in the MQTT client's network thread, a batch of messages at a time
(what one socket read brought), so it does only cheap work:
decoding, a dict lookup in the registry cache, counting, and handing readings
to the consumers registered with it.  Rejections are counted by reason and the
latest are kept for inspection; messages from unregistered devices go to the
pending list instead of vanishing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from devices import (
    KEPT_PAYLOAD_BYTES,
    Channel,
    DeviceKind,
    MessageDecoder,
    Reading,
    Reason,
    Rejection,
)
from devices.registry.cache import DeviceInfo
from ingest.acks import ack_all
from ingest.metrics import IngestMetrics

_LOGGER = logging.getLogger(__name__)

_KIND_NAMES = frozenset(k.value for k in DeviceKind)

Ack = Callable[[], None]
Message = tuple[str, bytes, Ack | None]
"""An MQTT message: topic, payload, and the ack that tells the broker it is durable."""
Accepted = tuple[Reading, DeviceInfo, Ack | None]
ReadingsConsumer = Callable[[list[tuple[Reading, DeviceInfo]]], None]
"""Sees the accepted readings of each batch (e.g. the device status recorder)."""
UnregisteredHandler = Callable[[Reading, str, bytes], None]
Store = Callable[[list[Accepted]], None]
"""Makes readings durable and then calls their acks (see ingest.writer)."""
RejectionHandler = Callable[[Rejection], None]


class DeviceLookup(Protocol):
    def get(self, device_id: str) -> DeviceInfo | None: ...


class AlertConsumer(Protocol):
    """The alert engine: for each reading, the ack to call once the message is otherwise
    durable (the same ack, or one that also waits for the alerts it raised to be stored)."""

    def consume_batch(self, accepted: Sequence[Accepted]) -> list[Ack | None]: ...

    def unregistered(self, reading: Reading, ack: Ack | None) -> Ack | None: ...


class Pipeline:
    def __init__(
        self,
        decoder: MessageDecoder,
        registry: DeviceLookup,
        metrics: IngestMetrics | None = None,
        *,
        on_unregistered: UnregisteredHandler | None = None,
        on_rejection: RejectionHandler | None = None,
        store: Store | None = None,
        alerts: AlertConsumer | None = None,
        kept_rejections: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.decoder = decoder
        self.registry = registry
        self.metrics = metrics or IngestMetrics()
        self._on_unregistered = on_unregistered
        self._on_rejection = on_rejection
        self._store = store
        self.alerts = alerts
        self._consumers: list[ReadingsConsumer] = []
        self._rejections: deque[Rejection] = deque(maxlen=kept_rejections)
        self._lock = threading.Lock()
        self._clock = clock
        self._accepted: dict[tuple[object, object], Any] = {}

    def add_consumer(self, consumer: ReadingsConsumer) -> None:
        self._consumers.append(consumer)

    def handle(self, topic: str, payload: bytes, ack: Ack | None = None) -> Reading | Rejection:
        """Decode one MQTT message and dispatch it; never raises for bad input.

        ``ack`` acknowledges the message to the broker: at once for a rejected
        message (it is counted and kept for inspection), and for an accepted
        one only when the store has made it durable.
        """
        return self.handle_batch([(topic, payload, ack)])[0]

    def handle_batch(self, messages: Sequence[Message]) -> list[Reading | Rejection]:
        """:meth:`handle` for messages read together, in order.

        Per-batch work (the clock, counters, locks of the consumers, the alert
        engine and the writer) is done once per batch, not once per message: at
        tens of thousands of messages a second that was a fifth of the cost.
        """
        received_ms = int(self._clock() * 1000)
        decode, lookup = self.decoder.decode, self.registry.get
        results: list[Reading | Rejection] = []
        accepted: list[Accepted] = []
        for topic, payload, ack in messages:
            result = decode(topic, payload, received_ms)
            if type(result) is Rejection:
                results.append(self._reject(result, ack))
                continue
            assert isinstance(result, Reading)
            device = lookup(result.device_id)
            if device is None:
                if self._on_unregistered is not None:
                    self._on_unregistered(result, topic, payload)
                alert_ack = (ack if self.alerts is None
                             else self._guarded(self.alerts.unregistered, result, ack))
                results.append(self._reject(self._rejection(
                    result, topic, payload, Reason.UNREGISTERED, "device id is not registered"),
                    alert_ack))
            elif device.kind is not result.kind:
                results.append(self._reject(self._rejection(
                    result, topic, payload, Reason.KIND_MISMATCH,
                    f"device is registered as {device.kind}, topic says {result.kind}"), ack))
            else:
                accepted.append((result, device, ack))
                results.append(result)
        self.metrics.received.inc(len(messages))
        if accepted:
            self._dispatch(accepted)
        return results

    def _dispatch(self, accepted: list[Accepted]) -> None:
        metrics = self.metrics
        counts: dict[tuple[DeviceKind, Channel], int] = {}
        now = self._clock()
        for reading, _device, _ack in accepted:
            key = (reading.kind, reading.channel)
            counts[key] = counts.get(key, 0) + 1
            if reading.clock_corrected:
                metrics.clock_corrected.inc()
            elif reading.channel is Channel.EVENT:
                metrics.event_handoff.observe(max(0.0, now - reading.ts_ms / 1000))
        for key, count in counts.items():
            counter = self._accepted.get(key)
            if counter is None:  # labels() costs a lookup and a lock: keep each child
                counter = metrics.accepted.labels(key[0].value, key[1].value)
                self._accepted[key] = counter
            counter.inc(count)
        readings = [(reading, device) for reading, device, _ack in accepted]
        for consumer in self._consumers:
            try:
                consumer(readings)
            except Exception:  # one bad consumer must not stop the others or the listener
                _LOGGER.exception("reading consumer %r failed", consumer)
        if self.alerts is not None:
            accepted = self._alerts_batch(accepted)
        if self._store is not None:
            self._store(accepted)
        else:
            ack_all(ack for _reading, _device, ack in accepted)

    def _alerts_batch(self, accepted: list[Accepted]) -> list[Accepted]:
        """The same readings, each with the ack the alert engine answered; the plain acks
        if it failed (logged): a bug in a rule must not hold every message unacknowledged."""
        assert self.alerts is not None
        try:
            acks = self.alerts.consume_batch(accepted)
        except Exception:
            _LOGGER.exception("alert engine failed on a batch of readings")
            return accepted
        return [(reading, device, ack) for (reading, device, _), ack in zip(accepted, acks,
                                                                              strict=True)]

    @staticmethod
    def _guarded(handler: Callable[..., Ack | None], *args: Any) -> Ack | None:
        """The alert engine's answer, or the plain ack if it failed (logged): a bug in a
        rule must not hold every message unacknowledged."""
        try:
            return handler(*args)
        except Exception:
            _LOGGER.exception("alert engine failed on a reading")
            ack: Ack | None = args[-1]
            return ack

    def _reject(self, rejection: Rejection, ack: Ack | None) -> Rejection:
        kind = rejection.kind if rejection.kind in _KIND_NAMES else "unknown"  # bounded labels
        self.metrics.rejected.labels(rejection.reason.value, kind).inc()
        with self._lock:
            self._rejections.append(rejection)
        if self._on_rejection is not None:
            self._on_rejection(rejection)
        if ack is not None:
            ack()
        return rejection

    @staticmethod
    def _rejection(reading: Reading, topic: str, payload: bytes, reason: Reason,
                   detail: str) -> Rejection:
        return Rejection(reason, detail, topic, reading.received_ms, payload[:KEPT_PAYLOAD_BYTES],
                         reading.kind.value, reading.device_id)

    def recent_rejections(self, limit: int = 100) -> list[Rejection]:
        """The newest rejections first."""
        with self._lock:
            items = list(self._rejections)
        return items[::-1][:limit]
