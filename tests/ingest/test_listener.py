"""The ingest listener against a real Mosquitto: counts by kind and by reason code."""

from __future__ import annotations

import json
import time

from devices import Channel, DeviceKind, MessageDecoder, Reading
from devices.profiles import DEFAULT_PROFILES
from devices.registry.cache import DeviceInfo
from firewarden.settings import parse_mqtt_url
from ingest import MqttListener, Pipeline
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import publish


def registry(*devices: tuple[str, DeviceKind]) -> dict[str, DeviceInfo]:
    """A stand-in registry lookup (the real cache is tested against real databases)."""
    return {d: DeviceInfo(d, k, "S1", "东", "active", 0, DEFAULT_PROFILES[k], 2)
            for d, k in devices}


def wait(predicate: object, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_counts_accepted_and_rejected_and_keeps_rejections(mosquitto: MosquittoServer) -> None:
    pipeline = Pipeline(MessageDecoder("lst"), registry(("D1", DeviceKind.SMOKE),
                                                        ("C1", DeviceKind.CONTROLROOM)))
    seen: list[Reading] = []
    pipeline.add_consumer(lambda batch: seen.extend(reading for reading, _ in batch))
    listeners = [MqttListener(parse_mqtt_url(mosquitto.url), pipeline, prefix="lst",
                              client_id="lst-test-1", lane=lane)
                 for lane in (Channel.EVENT, Channel.TELEMETRY)]
    for listener in listeners:
        listener.start()
    try:
        assert all(listener.connected.wait(10) for listener in listeners)
        publish(mosquitto.port, "lst/smoke/D1/telemetry",
                json.dumps({"battery_pct": 80, "rsrp_dbm": -90}).encode())
        publish(mosquitto.port, "lst/controlroom/C1/event", b'{"event":"panel_fire"}')
        publish(mosquitto.port, "lst/smoke/D1/telemetry", b'{"battery_pct": 180, "rsrp_dbm": -9}')
        publish(mosquitto.port, "lst/toaster/D1/telemetry", b"{}")
        publish(mosquitto.port, "lst/smoke/D1/cmd", b"{}")  # downlink: not subscribed
        assert wait(lambda: pipeline.metrics.snapshot()["received"] == 4)
    finally:
        for listener in listeners:
            listener.stop()
    snapshot = pipeline.metrics.snapshot()
    assert snapshot["accepted"] == {"controlroom/event": 1, "smoke/telemetry": 1}
    assert snapshot["rejected"] == {"bad_topic": 1, "schema": 1}
    assert sorted(r.device_id for r in seen) == ["C1", "D1"]
    kept = pipeline.recent_rejections()
    assert sorted(r.reason.value for r in kept) == ["bad_topic", "schema"]


def test_a_failing_consumer_does_not_stop_the_others() -> None:
    pipeline = Pipeline(MessageDecoder("x"), registry(("D9", DeviceKind.SMOKE)))
    seen: list[str] = []

    def broken(_batch: list[tuple[Reading, DeviceInfo]]) -> None:
        raise RuntimeError("boom")

    pipeline.add_consumer(broken)
    pipeline.add_consumer(lambda batch: seen.extend(r.device_id for r, _ in batch))
    pipeline.handle("x/smoke/D9/event", b'{"event":"smoke_alarm"}')
    assert seen == ["D9"]


def test_reconnects_and_resubscribes_after_broker_restart(tmp_path: object) -> None:
    from pathlib import Path

    server = MosquittoServer(Path(str(tmp_path)) / "mq")
    server.start()
    pipeline = Pipeline(MessageDecoder("rc"), registry(("D1", DeviceKind.SMOKE)))
    listener = MqttListener(parse_mqtt_url(server.url), pipeline, prefix="rc",
                            client_id="rc-test", lane=Channel.EVENT)
    listener.start()
    try:
        assert listener.connected.wait(10)
        server.restart()
        assert wait(lambda: listener.connected.is_set() and
                    pipeline.metrics.mqtt_reconnects.labels("event")._value.get() >= 1, timeout=40)
        publish(server.port, "rc/smoke/D1/event", b'{"event":"tamper"}')
        assert wait(lambda: pipeline.metrics.snapshot()["received"] == 1)
    finally:
        listener.stop()
        server.stop()


def _session(mosquitto: MosquittoServer, *, expect: int, acknowledge: bool) -> int:
    """One persistent session of the ack-test client: how many messages it received; with
    ``acknowledge`` they are all acknowledged in one batch (``ack_all``)."""
    from ingest.acks import Ack, ack_all

    held: list[Ack | None] = []
    pipeline = Pipeline(MessageDecoder("ackt"), registry(("D1", DeviceKind.SMOKE)),
                        store=lambda batch: held.extend(ack for _, _, ack in batch))
    listener = MqttListener(parse_mqtt_url(mosquitto.url), pipeline, prefix="ackt",
                            client_id="ack-test", lane=Channel.TELEMETRY)
    listener.start()
    try:
        assert listener.connected.wait(10)
        wait(lambda: len(held) >= expect, timeout=5 if expect else 1.5)
        if acknowledge:
            ack_all(held)  # one packet of PUBACKs
            time.sleep(0.5)
    finally:
        listener.stop()
    return len(held)


def test_batched_acks_reach_the_broker_and_unacked_messages_come_back(
        mosquitto: MosquittoServer) -> None:
    assert _session(mosquitto, expect=0, acknowledge=True) == 0  # the session now exists
    for seq in range(30):
        publish(mosquitto.port, "ackt/smoke/D1/telemetry",
                json.dumps({"battery_pct": 80, "rsrp_dbm": -90, "seq": seq}).encode())
    assert _session(mosquitto, expect=30, acknowledge=False) == 30
    assert _session(mosquitto, expect=30, acknowledge=True) == 30  # redelivered: not acked
    assert _session(mosquitto, expect=0, acknowledge=False) == 0  # acked in one batch
