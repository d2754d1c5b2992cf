"""The embedded broker speaks real MQTT: QoS 1 both ways and persistent sessions."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firewarden.embedded_broker import EmbeddedBroker
from firewarden.ports import PortInUseError, free_port


def _client(client_id: str = "", clean: bool = True) -> mqtt.Client:
    return mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean,
                       protocol=mqtt.MQTTv311)


async def test_qos1_round_trip_and_persistent_session() -> None:
    import asyncio

    port = free_port()
    broker = EmbeddedBroker("127.0.0.1", port)
    await broker.start()
    try:
        got: list[bytes] = []
        arrived = threading.Event()
        subscribed = threading.Event()

        def on_message(_c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
            got.append(m.payload)
            arrived.set()

        # A persistent subscriber subscribes, goes away, and must get what was sent meanwhile.
        sub = _client("fw-test-sub", clean=False)
        sub.username_pw_set("firewarden")  # anonymous sessions are not kept (see OpenAuthPlugin)
        sub.on_subscribe = lambda *_: subscribed.set()
        sub.on_message = on_message
        await asyncio.to_thread(sub.connect, "127.0.0.1", port)
        sub.loop_start()
        sub.subscribe("fw/+/+/event", qos=1)
        assert await asyncio.to_thread(subscribed.wait, 5)
        sub.disconnect()
        sub.loop_stop()

        pub = _client()
        await asyncio.to_thread(pub.connect, "127.0.0.1", port)
        pub.loop_start()
        info = pub.publish("fw/smoke/D1/event", b'{"event":"smoke_alarm"}', qos=1)
        await asyncio.to_thread(info.wait_for_publish, 5)
        pub.disconnect()
        pub.loop_stop()

        await asyncio.to_thread(sub.reconnect)
        sub.loop_start()
        assert await asyncio.to_thread(arrived.wait, 10)
        sub.disconnect()
        sub.loop_stop()
        assert got == [b'{"event":"smoke_alarm"}']
    finally:
        await broker.stop()


async def test_port_in_use_says_how_to_use_the_broker_already_there() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUseError) as caught:
            await EmbeddedBroker("127.0.0.1", port).start()
    assert f"FIREWARDEN_MQTT_URL=mqtt://127.0.0.1:{port}" in str(caught.value)
