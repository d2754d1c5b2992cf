"""A paho client that reads the socket in large chunks and takes PUBLISH packets in batches.

paho reads every packet with three or four ``recv`` calls (the command byte, each
byte of the remaining length, then the body), after a ``select`` each time, and
then builds an ``MQTTMessage`` and calls ``on_message`` under a lock.  At
thousands of messages a second those were the largest costs of an ingest thread
(py-spy, docs/performance.md).  This client:

- makes one ``recv`` of up to 64 KiB and serves paho's small reads from it, then
  keeps parsing packets while bytes are buffered, so one ``select`` covers
  hundreds of messages;
- when ``on_publishes`` is set, parses the complete PUBLISH packets at the head
  of that buffer itself (MQTT 3.1.1, QoS 0 and 1, manual acknowledgement) and
  hands them over as one list of :class:`Publish`.  Everything else (CONNACK,
  SUBACK, PINGRESP, QoS 2, a packet split across chunks) still goes through
  paho, one packet at a time, in order with the batches.

It overrides two of paho's private methods (``_sock_recv`` and ``loop_read``'s
loop) and reads its ``_in_packet`` state, which is why pyproject.toml pins
paho-mqtt below 2.3; ``tests/ingest/test_buffered_client.py`` checks the
behaviour against a real broker.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

CHUNK_BYTES = 65536
CHUNKS_PER_READ = 8
"""Read at most this many chunks before returning to paho's loop, so queued writes
(PUBACKs, pings) still go out under a sustained flood."""

_U16 = struct.Struct("!H")
_SUCCESS = MQTTErrorCode.MQTT_ERR_SUCCESS


class Publish(NamedTuple):
    topic: bytes
    payload: bytes
    qos: int
    mid: int
    """The packet id to acknowledge (QoS 1); 0 for QoS 0."""


class BufferedClient(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rx = b""
        self._rx_pos = 0
        self._rx_sock: object = None
        self._chunks_left = CHUNKS_PER_READ
        self.on_publishes: Callable[[list[Publish]], None] | None = None
        """Takes PUBLISH packets in batches instead of ``on_message``; QoS 1 ones
        only with ``manual_ack=True`` (the callee acknowledges them)."""

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
        """paho's read of one packet, then batches of PUBLISH packets and paho's
        reads of anything else, while bytes are buffered."""
        self._chunks_left = CHUNKS_PER_READ
        rc = super().loop_read(max_packets)
        batching = (self.on_publishes is not None and self._protocol != mqtt.MQTTv5)
        while rc == _SUCCESS and self.buffered_bytes():
            if batching and self._in_packet["command"] == 0:  # paho is between packets
                self._take_publishes()
                if not self.buffered_bytes():
                    break
            rc = super().loop_read(max_packets)
        return rc

    def _take_publishes(self) -> None:
        """Parse the complete PUBLISH packets at the head of the buffer and hand them on.

        Stops at the first packet that is not a complete QoS 0/1 PUBLISH, or looks
        malformed, and leaves it to paho (which reports a malformed one)."""
        buf, pos, end = self._rx, self._rx_pos, len(self._rx)
        qos1_ok = self._manual_ack
        batch: list[Publish] = []
        while pos < end:
            command = buf[pos]
            qos = (command >> 1) & 3
            if command & 0xF0 != mqtt.PUBLISH or qos > 1 or (qos == 1 and not qos1_ok):
                break
            length, shift, i = 0, 0, pos + 1
            while i < end and i - pos <= 4:
                byte = buf[i]
                length |= (byte & 0x7F) << shift
                shift += 7
                i += 1
                if byte < 0x80:
                    break
            else:
                break  # length incomplete in this chunk, or longer than MQTT allows
            body_end = i + length
            if body_end > end or length < 2:
                break
            topic_end = i + 2 + _U16.unpack_from(buf, i)[0]
            payload_start = topic_end + 2 * qos
            if payload_start > body_end:
                break
            mid = _U16.unpack_from(buf, topic_end)[0] if qos else 0
            batch.append(Publish(buf[i + 2:topic_end], buf[payload_start:body_end], qos, mid))
            pos = body_end
        if not batch:
            return
        self._rx_pos = pos
        with self._msgtime_mutex:  # keepalive: the broker is alive
            self._last_bytes_received = mqtt.time_func()
        assert self.on_publishes is not None
        self.on_publishes(batch)
