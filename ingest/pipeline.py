"""The ingest pipeline's first stage: decode, look the device up, count, hand on.

It runs in the MQTT client's network thread, so it does only cheap work:
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
from collections.abc import Callable
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
from ingest.metrics import IngestMetrics

_LOGGER = logging.getLogger(__name__)

_KIND_NAMES = frozenset(k.value for k in DeviceKind)

ReadingConsumer = Callable[[Reading, DeviceInfo], None]
UnregisteredHandler = Callable[[Reading, str, bytes], None]
Ack = Callable[[], None]
Store = Callable[[Reading, DeviceInfo, Ack | None], None]
"""Makes a reading durable and then calls the ack (see ingest.writer)."""
RejectionHandler = Callable[[Rejection], None]


class DeviceLookup(Protocol):
    def get(self, device_id: str) -> DeviceInfo | None: ...


class AlertConsumer(Protocol):
    """The alert engine: returns the ack to call once the message is otherwise durable
    (the same ack, or one that also waits for the alerts it raised to be stored)."""

    def consume(self, reading: Reading, device: DeviceInfo, ack: Ack | None) -> Ack | None: ...

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
        self._consumers: list[ReadingConsumer] = []
        self._rejections: deque[Rejection] = deque(maxlen=kept_rejections)
        self._lock = threading.Lock()
        self._clock = clock
        self._accepted: dict[tuple[object, object], Any] = {}

    def add_consumer(self, consumer: ReadingConsumer) -> None:
        self._consumers.append(consumer)

    def handle(self, topic: str, payload: bytes, ack: Ack | None = None) -> Reading | Rejection:
        """Decode one MQTT message and dispatch it; never raises for bad input.

        ``ack`` acknowledges the message to the broker: at once for a rejected
        message (it is counted and kept for inspection), and for an accepted
        one only when the store has made it durable.
        """
        metrics = self.metrics
        metrics.received.inc()
        result = self.decoder.decode(topic, payload, int(self._clock() * 1000))
        if isinstance(result, Rejection):
            return self._reject(result, ack)
        device = self.registry.get(result.device_id)
        if device is None:
            if self._on_unregistered is not None:
                self._on_unregistered(result, topic, payload)
            if self.alerts is not None:
                ack = self._guarded(self.alerts.unregistered, result, ack)
            return self._reject(self._rejection(result, topic, payload, Reason.UNREGISTERED,
                                                "device id is not registered"), ack)
        if device.kind is not result.kind:
            return self._reject(self._rejection(
                result, topic, payload, Reason.KIND_MISMATCH,
                f"device is registered as {device.kind}, topic says {result.kind}"), ack)
        counter = self._accepted.get((result.kind, result.channel))
        if counter is None:  # labels() costs a lookup and a lock: keep each child
            counter = metrics.accepted.labels(result.kind.value, result.channel.value)
            self._accepted[result.kind, result.channel] = counter
        counter.inc()
        if result.clock_corrected:
            metrics.clock_corrected.inc()
        elif result.channel is Channel.EVENT:
            metrics.event_handoff.observe(max(0.0, self._clock() - result.ts_ms / 1000))
        for consumer in self._consumers:
            try:
                consumer(result, device)
            except Exception:  # one bad consumer must not stop the others or the listener
                _LOGGER.exception("reading consumer %r failed", consumer)
        if self.alerts is not None:
            ack = self._guarded(self.alerts.consume, result, device, ack)
        if self._store is not None:
            self._store(result, device, ack)
        elif ack is not None:
            ack()
        return result

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
