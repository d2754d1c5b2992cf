"""A paho client that reads the socket in large chunks.

paho reads every packet with three or four ``recv`` calls (the command byte, each
byte of the remaining length, then the body), after a ``select`` each time.  At
thousands of messages a second that was the largest single cost of an ingest
thread (py-spy, docs/performance.md).  This client makes one ``recv`` of up to
64 KiB and serves paho's small reads from it, then keeps parsing packets while
bytes are buffered, so one ``select`` covers hundreds of messages.

It overrides two of paho's private methods (``_sock_recv`` and ``loop_read``'s
loop), which is why pyproject.toml pins paho-mqtt below 2.3;
``tests/ingest/test_buffered_client.py`` checks the behaviour against a real broker.
"""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

CHUNK_BYTES = 65536
CHUNKS_PER_READ = 8
"""Read at most this many chunks before returning to paho's loop, so queued writes
(PUBACKs, pings) still go out under a sustained flood."""


class BufferedClient(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rx = b""
        self._rx_pos = 0
        self._rx_sock: object = None
        self._chunks_left = CHUNKS_PER_READ

    def buffered_bytes(self) -> int:
        return len(self._rx) - self._rx_pos if self._rx_sock is self._sock else 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rx_sock is not self._sock:  # a new connection: nothing old may leak in
            self._rx, self._rx_pos, self._rx_sock = b"", 0, self._sock
        if self._rx_pos >= len(self._rx):
            if self._chunks_left <= 0:  # paho keeps the partial packet for the next select
                raise BlockingIOError
            self._chunks_left -= 1
            data = super()._sock_recv(max(bufsize, CHUNK_BYTES))
            if len(data) <= bufsize:
                return data
            self._rx, self._rx_pos = data, 0
        end = min(self._rx_pos + bufsize, len(self._rx))
        data = self._rx[self._rx_pos:end]
        self._rx_pos = end
        return data

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """paho's read of one packet, repeated while bytes are buffered."""
        self._chunks_left = CHUNKS_PER_READ
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self.buffered_bytes():
            rc = super().loop_read(max_packets)
        return rc
