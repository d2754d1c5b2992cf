"""The ingest pipeline's first stage: decode, count, and hand on.

It runs in the MQTT client's network thread, so it does only cheap work:
decoding, counting, and handing readings to the consumers registered with it.
Rejections are counted by reason and the latest are kept for inspection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from devices import MessageDecoder, Reading, Rejection
from ingest.metrics import IngestMetrics

_LOGGER = logging.getLogger(__name__)

ReadingConsumer = Callable[[Reading], None]


class Pipeline:
    def __init__(
        self,
        decoder: MessageDecoder,
        metrics: IngestMetrics | None = None,
        *,
        kept_rejections: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.decoder = decoder
        self.metrics = metrics or IngestMetrics()
        self._consumers: list[ReadingConsumer] = []
        self._rejections: deque[Rejection] = deque(maxlen=kept_rejections)
        self._lock = threading.Lock()
        self._clock = clock

    def add_consumer(self, consumer: ReadingConsumer) -> None:
        self._consumers.append(consumer)

    def handle(self, topic: str, payload: bytes) -> Reading | Rejection:
        """Decode one MQTT message and dispatch it; never raises for bad input."""
        metrics = self.metrics
        metrics.received.inc()
        result = self.decoder.decode(topic, payload, int(self._clock() * 1000))
        if isinstance(result, Rejection):
            metrics.rejected.labels(result.reason.value).inc()
            with self._lock:
                self._rejections.append(result)
            return result
        metrics.accepted.labels(result.kind.value, result.channel.value).inc()
        if result.clock_corrected:
            metrics.clock_corrected.inc()
        for consumer in self._consumers:
            try:
                consumer(result)
            except Exception:  # one bad consumer must not stop the others or the listener
                _LOGGER.exception("reading consumer %r failed", consumer)
        return result

    def recent_rejections(self, limit: int = 100) -> list[Rejection]:
        """The newest rejections first."""
        with self._lock:
            items = list(self._rejections)
        return items[::-1][:limit]
