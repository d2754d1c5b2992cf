"""`firewarden simulate` against a real Mosquitto, seen by an independent subscriber."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from devices import MessageDecoder, Reading, Rejection
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import Recorder, publish


def simulate(mosquitto: MosquittoServer, *args: str, timeout: float = 120,
             ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FIREWARDEN_MQTT_URL": mosquitto.url}
    return subprocess.run([sys.executable, "-m", "firewarden.cli", "simulate", *args],
                          env=env, capture_output=True, text=True, timeout=timeout, check=True)


def test_traffic_conforms_to_the_contract(mosquitto: MosquittoServer) -> None:
    with Recorder(mosquitto.port, ["sim1/#"]) as recorder:
        result = simulate(mosquitto, "--prefix", "sim1", "--smoke", "10", "--electrical", "6",
                          "--controlrooms", "2", "--scenario", "normal,fire,leakage,garbage",
                          "--speed", "600", "--onset", "1", "--duration", "4", "--quiet")
        sent = int(result.stdout.split("sent ")[1].split()[0])
        received = recorder.wait_for(sent)
    assert sent > 50 and len(received) == sent
    assert f"{sent} acknowledged" in result.stdout

    decoder = MessageDecoder("sim1")
    now = int(time.time() * 1000)
    outcome: Counter[str] = Counter()
    for topic, payload in received:
        decoded = decoder.decode(topic, payload, now)
        outcome["ok" if isinstance(decoded, Reading) else decoded.reason.value] += 1
    # Good traffic all conforms; the garbage scenario's rejects appear in its summary line.
    garbage_line = next(line for line in result.stdout.splitlines()
                        if line.startswith("  garbage by reason:"))
    expected_garbage = {part.split()[0]: int(part.split()[1])
                        for part in garbage_line.split(":", 1)[1].split(",")}
    assert {k: v for k, v in outcome.items() if k != "ok"} == expected_garbage
    assert outcome["ok"] == sent - sum(expected_garbage.values())


def test_same_seed_same_payloads_over_the_wire(mosquitto: MosquittoServer) -> None:
    runs = []
    for prefix in ("seedA", "seedB"):
        with Recorder(mosquitto.port, [f"{prefix}/#"]) as recorder:
            simulate(mosquitto, "--prefix", prefix, "--seed", "9", "--start", "1790000000000",
                     "--count", "40", "--fast", "--quiet")
            runs.append([payload for _, payload in recorder.wait_for(40)])
    assert len(runs[0]) == 40 and runs[0] == runs[1]


def test_control_rooms_answer_duty_checks(mosquitto: MosquittoServer, tmp_path: Path) -> None:
    registry = tmp_path / "fleet.csv"
    env = {**os.environ, "FIREWARDEN_MQTT_URL": mosquitto.url}
    with Recorder(mosquitto.port, ["duty/controlroom/+/event"]) as recorder:
        proc = subprocess.Popen(
            [sys.executable, "-m", "firewarden.cli", "simulate", "--prefix", "duty", "--smoke",
             "0", "--electrical", "0", "--controlrooms", "2", "--speed", "30", "--duration", "8",
             "--write-registry", str(registry), "--quiet"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not registry.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        rooms = [line.split(",")[0] for line in registry.read_text().splitlines()[1:]]
        time.sleep(1.5)  # let the simulator subscribe to its cmd topics
        for i, room in enumerate(rooms):
            command = {"cmd": "duty_check", "check_id": f"chk-{i}", "ts": 0, "deadline_s": 600}
            publish(mosquitto.port, f"duty/controlroom/{room}/cmd", json.dumps(command).encode())
        out, err = proc.communicate(timeout=60)
        acks = [json.loads(p) for _, p in recorder.wait_for(2, timeout=5)]
    assert proc.returncode == 0, err
    assert sorted(a["check_id"] for a in acks if a["event"] == "duty_check_ack") == ["chk-0",
                                                                                     "chk-1"]
    assert "duty checks: 2 received, 2 answered" in out


def test_unreachable_broker_is_a_clear_error(tmp_path: Path) -> None:
    from firewarden.ports import free_port

    env = {**os.environ, "FIREWARDEN_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}"}
    result = subprocess.run([sys.executable, "-m", "firewarden.cli", "simulate", "--count", "1"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "cannot reach broker" in result.stderr


def test_decoder_rejects_what_it_should_on_the_wire(mosquitto: MosquittoServer) -> None:
    """Sanity of the observer itself: a bad message seen on the wire is rejected."""
    with Recorder(mosquitto.port, ["wire/#"]) as recorder:
        publish(mosquitto.port, "wire/smoke/D1/telemetry", b'{"battery_pct": 200}')
        (topic, payload), = recorder.wait_for(1)
    assert isinstance(MessageDecoder("wire").decode(topic, payload, 0), Rejection)
