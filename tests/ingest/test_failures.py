"""Nothing lost through InfluxDB, process and broker failures: real Mosquitto, real
InfluxDB, Firewarden as a separate process (docs/failure-tests.md)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.influx import InfluxServer
from tests.support.mosquitto import MosquittoServer

MEASUREMENTS = ("smoke", "electrical", "controlroom")
_runs = itertools.count(1)


class Stack:
    """One test's Firewarden: its own prefix, client id, InfluxDB database and data dir."""

    def __init__(self, tmp: Path, mosquitto: MosquittoServer, influx: InfluxServer) -> None:
        n = next(_runs)
        self.tmp, self.mosquitto, self.influx = tmp, mosquitto, influx
        self.prefix, self.db = f"ft{n}", f"failures_{n}_{os.getpid()}"
        self.env = {**os.environ, "FIREWARDEN_MQTT_URL": mosquitto.url,
                    "FIREWARDEN_TOPIC_PREFIX": self.prefix,
                    "FIREWARDEN_MQTT_CLIENT_ID": f"ingest-{self.prefix}",
                    "FIREWARDEN_INFLUX_URL": influx.url, "FIREWARDEN_INFLUX_DB": self.db,
                    "FIREWARDEN_DATA_DIR": str(tmp / "data"),
                    "FIREWARDEN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'fw.db'}"}
        self.ingest: subprocess.Popen[str] | None = None
        fleet = tmp / "fleet.csv"
        self.cli("simulate", "--smoke", "40", "--electrical", "40", "--controlrooms", "10",
                 "--seed", "5", "--write-registry", str(fleet), "--count", "0")
        self.cli("devices", "import", str(fleet))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "firewarden.cli", *args], env=self.env,
                              cwd=self.tmp, capture_output=True, text=True, timeout=300,
                              check=True)

    def start_ingest(self) -> None:
        self.ingest = subprocess.Popen([sys.executable, "-m", "firewarden.cli", "ingest"],
                                       env=self.env, cwd=self.tmp, stdout=subprocess.PIPE,
                                       stderr=(self.tmp / "ingest.log").open("a"), text=True)
        assert self.ingest.stdout is not None
        line = self.ingest.stdout.readline()
        assert "ingest worker is up" in line, (self.tmp / "ingest.log").read_text()

    def stop_ingest(self, sig: int = signal.SIGTERM) -> int:
        assert self.ingest is not None
        self.ingest.send_signal(sig)
        code = self.ingest.wait(60)
        self.ingest = None
        return code

    def publish(self, count: int, rate: int, *extra: str) -> subprocess.Popen[str]:
        """The simulator in the background; timestamps two days back, all distinct."""
        start = int(time.time() * 1000) - 2 * 86_400_000
        return subprocess.Popen(
            [sys.executable, "-m", "firewarden.cli", "simulate", "--smoke", "40",
             "--electrical", "40", "--controlrooms", "10", "--smoke-interval", "600",
             "--count", str(count), "--rate", str(rate), "--start", str(start), "--quiet",
             "--seed", "5", "--no-answer", *extra],
            env=self.env, cwd=self.tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)

    def stored(self) -> int:
        total = 0
        for measurement in MEASUREMENTS:
            try:
                total += self.influx.count(self.db, measurement, "seq")
            except (RuntimeError, httpx.HTTPError):
                return -1
        return total

    def wait_stored(self, expected: int, seconds: float = 90) -> int:
        deadline = time.monotonic() + seconds
        stored = self.stored()
        while stored < expected and time.monotonic() < deadline:
            time.sleep(0.5)
            stored = self.stored()
        return stored

    def close(self) -> None:
        if self.ingest is not None:
            self.ingest.kill()
            self.ingest.wait()


@pytest.fixture
def stack(tmp_path: Path, mosquitto: MosquittoServer, influx: InfluxServer) -> Iterator[Stack]:
    s = Stack(tmp_path, mosquitto, influx)
    yield s
    s.close()


def finish(publisher: subprocess.Popen[str]) -> str:
    out, err = publisher.communicate(timeout=180)
    assert publisher.returncode == 0, err
    return out


def test_influxdb_down_mid_stream_everything_stored_once(stack: Stack, influx: InfluxServer
                                                          ) -> None:
    stack.start_ingest()
    publisher = stack.publish(12_000, 2000)
    time.sleep(2)
    influx.stop()
    try:
        time.sleep(3)  # messages keep coming: they are spooled and acknowledged
        spool = list((stack.tmp / "data" / "spool").glob("*.batch"))
        assert spool, "nothing was spooled while InfluxDB was down"
    finally:
        influx.start()
    finish(publisher)
    assert stack.wait_stored(12_000) == 12_000
    time.sleep(1.5)  # a late duplicate would show up here
    assert stack.stored() == 12_000
    assert not list((stack.tmp / "data" / "spool").glob("*.batch"))
    assert stack.stop_ingest() == 0


def test_ingest_killed_mid_stream_nothing_missing(stack: Stack) -> None:
    stack.start_ingest()
    publisher = stack.publish(12_000, 2000)
    time.sleep(3)
    assert stack.stop_ingest(signal.SIGKILL) == -signal.SIGKILL
    time.sleep(1)  # the broker keeps the persistent sessions' messages meanwhile
    stack.start_ingest()
    finish(publisher)
    assert stack.wait_stored(12_000) == 12_000
    time.sleep(1.5)
    assert stack.stored() == 12_000
    assert stack.stop_ingest() == 0


def test_broker_restart_mid_stream_nothing_acknowledged_lost(tmp_path: Path,
                                                             influx: InfluxServer) -> None:
    broker = MosquittoServer(tmp_path / "own-mosquitto")  # this test restarts its broker
    broker.start()
    s = Stack(tmp_path / "stack", broker, influx) if (tmp_path / "stack").mkdir() is None \
        else None
    assert s is not None
    try:
        s.start_ingest()
        publisher = s.publish(10_000, 2000)
        time.sleep(2.5)
        broker.restart()
        out = finish(publisher)
        acknowledged = int(out.split(" acknowledged")[0].rsplit("; ", 1)[1])
        assert acknowledged == 10_000, out  # the publisher resent what was unacknowledged
        assert s.wait_stored(acknowledged) == acknowledged
        time.sleep(1.5)
        assert s.stored() == acknowledged
        assert s.stop_ingest() == 0
    finally:
        s.close()
        broker.stop()


def test_garbage_and_flood_counted_nothing_bad_stored(stack: Stack) -> None:
    from firewarden.ports import free_port

    port = free_port()
    stack.env["FIREWARDEN_API_PORT"] = str(port)
    up = subprocess.Popen([sys.executable, "-m", "firewarden.cli", "up"], env=stack.env,
                          cwd=stack.tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        publisher = stack.publish(8000, 2000, "--scenario", "normal,garbage,flood",
                                  "--onset", "0.5")
        out = finish(publisher)
        garbage_line = next(line for line in out.splitlines()
                            if line.startswith("  garbage by reason:"))
        garbage = {p.split()[0]: int(p.split()[1])
                   for p in garbage_line.split(":", 1)[1].split(",")}
        good = 8000 - sum(garbage.values())
        assert stack.wait_stored(good) == good
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        assert health["messages"]["rejected"] == garbage  # exactly what was sent, by reason
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'firewarden_messages_rejected_total{kind="unknown",reason="bad_topic"}' \
            in metrics
        assert up.poll() is None, "the process must stay up"
        time.sleep(1.5)
        assert stack.stored() == good
    finally:
        up.send_signal(signal.SIGINT)
        up.communicate(timeout=60)
    assert up.returncode == 0
