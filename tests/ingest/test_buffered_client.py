"""The chunked reader against a real Mosquitto: every packet intact, in order, across
chunk boundaries and reconnects, with far fewer socket reads than packets."""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.buffered_client import CHUNK_BYTES, BufferedClient, Publish
from tests.support.mosquitto import MosquittoServer

# Remaining-length encodings of 1, 2 and 3 bytes, and bodies larger than one chunk.
SIZES = [0, 1, 100, 126, 127, 128, 200, 16_383, 16_384, CHUNK_BYTES + 7, 3 * CHUNK_BYTES]


def payload(i: int) -> bytes:
    size = SIZES[i % len(SIZES)] if i % 7 == 0 else 200
    stamp = f"{i}:".encode()
    return (stamp + bytes((i + k) % 251 for k in range(size)))[:max(size, len(stamp))]


class Subscriber:
    def __init__(self, port: int, topic: str, client_id: str, *, batches: bool = False) -> None:
        """``batches``: PUBLISH packets come through ``on_publishes`` (acknowledged here)."""
        self.received: list[tuple[str, bytes]] = []
        self.batched = 0
        self.connected = threading.Event()
        self.client = BufferedClient(CallbackAPIVersion.VERSION2, client_id=client_id,
                                     clean_session=False, protocol=mqtt.MQTTv311,
                                     manual_ack=batches)
        self.client.on_connect = lambda c, *_: (c.subscribe(topic, qos=1), self.connected.set())
        self.client.on_message = self._on_message
        if batches:
            self.client.on_publishes = self._on_publishes
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.received.append((message.topic, message.payload))
        if self.client._manual_ack and message.qos == 1:
            self.client.ack(message.mid, 1)

    def _on_publishes(self, batch: list[Publish]) -> None:
        self.batched += len(batch)
        for topic, body, qos, mid in batch:
            self.received.append((topic.decode(), body))
            if qos == 1:
                self.client.ack(mid, 1)

    def distinct(self) -> int:
        """Messages received, a redelivered copy counted once (topics are unique)."""
        return len({topic for topic, _ in list(self.received)})

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.distinct() < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.distinct() >= count, f"{self.distinct()} of {count} received"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(port: int, topic: str, indices: range, qos: int = 1) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{time.monotonic_ns()}")
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(f"{topic}/{i}", payload(i), qos=qos) for i in indices]
    for info in infos:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def real_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the socket reads BufferedClient makes (paho's own _sock_recv)."""
    reads: list[int] = []
    original = mqtt.Client._sock_recv

    def counting(self: mqtt.Client, bufsize: int) -> bytes:
        reads.append(bufsize)
        return original(self, bufsize)

    monkeypatch.setattr(mqtt.Client, "_sock_recv", counting)
    return reads


def test_a_backlog_arrives_intact_in_order_with_few_reads(mosquitto: MosquittoServer,
                                                          real_reads: list[int]) -> None:
    topic = f"buffered/{time.monotonic_ns()}"
    first = Subscriber(mosquitto.port, f"{topic}/#", "buffered-backlog")
    assert first.connected.wait(10)
    first.close()  # offline: the broker queues the backlog for the persistent session
    count = 5000
    publish(mosquitto.port, topic, range(count))
    real_reads.clear()
    subscriber = Subscriber(mosquitto.port, f"{topic}/#", "buffered-backlog")
    try:
        subscriber.wait_for(count)
    finally:
        subscriber.close()
    assert subscriber.received == [(f"{topic}/{i}", payload(i)) for i in range(count)]
    # paho alone reads three to five times per packet; chunked, a backlog of small
    # packets takes a few hundred reads of up to 64 KiB.
    assert len(real_reads) < count // 4, len(real_reads)


def test_a_reconnect_starts_from_a_clean_buffer(mosquitto: MosquittoServer) -> None:
    topic = f"buffered/{time.monotonic_ns()}"
    subscriber = Subscriber(mosquitto.port, f"{topic}/#", "buffered-reconnect")
    try:
        assert subscriber.connected.wait(10)
        publish(mosquitto.port, topic, range(0, 2000))
        subscriber.wait_for(2000)
        subscriber.connected.clear()
        mosquitto.restart()  # the session is persisted: the subscription survives
        assert subscriber.connected.wait(20)
        publish(mosquitto.port, topic, range(2000, 4000))
        subscriber.wait_for(4000)
    finally:
        subscriber.close()
    expected = [(f"{topic}/{i}", payload(i)) for i in range(4000)]
    # QoS 1: messages whose PUBACK the restart cut off come again; each copy is intact.
    assert set(subscriber.received) <= set(expected)
    assert list(dict.fromkeys(subscriber.received)) == expected


def test_batches_carry_every_publish_intact_in_order(mosquitto: MosquittoServer) -> None:
    """The batch parser: QoS 1 and QoS 0 packets of every size, across chunk boundaries,
    acknowledged by the callee; anything it leaves (a packet split across reads) goes
    through paho, in order with the batches."""
    topic = f"batched/{time.monotonic_ns()}"
    first = Subscriber(mosquitto.port, f"{topic}/#", "buffered-batches", batches=True)
    assert first.connected.wait(10)
    first.close()
    publish(mosquitto.port, topic, range(3000))
    subscriber = Subscriber(mosquitto.port, f"{topic}/#", "buffered-batches", batches=True)
    try:
        subscriber.wait_for(3000)  # the backlog, queued while offline
        publish(mosquitto.port, topic, range(3000, 4000), qos=0)  # live, at QoS 0
        subscriber.wait_for(4000)
    finally:
        subscriber.close()
    assert subscriber.received == [(f"{topic}/{i}", payload(i)) for i in range(4000)]
    assert subscriber.batched > 3000, subscriber.batched  # most came as batches

    # Every QoS 1 message was acknowledged: a new session of the same id gets nothing again.
    again = Subscriber(mosquitto.port, f"{topic}/#", "buffered-batches", batches=True)
    try:
        assert again.connected.wait(10)
        time.sleep(1)
    finally:
        again.close()
    assert again.received == []
