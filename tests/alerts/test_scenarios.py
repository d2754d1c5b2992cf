"""The alert rules end to end: simulator scenarios over a real Mosquitto into
``firewarden ingest`` (a separate process), and a SIGKILL in the middle.

The fleet's clock starts three hours back and runs at real speed, published as
fast as the broker takes it: durations, hysteresis and grace periods are
measured on the devices' timestamps, so hours of behaviour play in seconds.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devices import DeviceKind
from firewarden.settings import MqttEndpoint
from simulators import (
    FleetPublisher,
    FleetSimulation,
    PublishOptions,
    Scenario,
    SimConfig,
    write_registry_csv,
)
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import publish

SCENARIOS = frozenset({Scenario.FIRE, Scenario.LEAKAGE, Scenario.OVERHEAT, Scenario.TAMPER,
                       Scenario.LOW_BATTERY, Scenario.FLAPPING, Scenario.DUTY_LAPSE})
_runs = itertools.count(1)


class Worker:
    """``firewarden ingest`` with its own prefix, client id and SQLite database."""

    def __init__(self, tmp: Path, mosquitto: MosquittoServer, sim: FleetSimulation) -> None:
        self.tmp, self.db = tmp, tmp / "fw.db"
        self.prefix = sim.config.prefix
        self.env = {**os.environ, "FIREWARDEN_MQTT_URL": mosquitto.url,
                    "FIREWARDEN_TOPIC_PREFIX": self.prefix,
                    "FIREWARDEN_MQTT_CLIENT_ID": f"ingest-{self.prefix}",
                    "FIREWARDEN_DATA_DIR": str(tmp / "data"),
                    "FIREWARDEN_DATABASE_URL": f"sqlite+aiosqlite:///{self.db}"}
        fleet = tmp / "fleet.csv"
        write_registry_csv(sim.fleet, fleet)
        subprocess.run([sys.executable, "-m", "firewarden.cli", "devices", "import", str(fleet)],
                       env=self.env, cwd=tmp, check=True, capture_output=True, timeout=120)
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "firewarden.cli", "ingest"], env=self.env, cwd=self.tmp,
            stdout=subprocess.PIPE, stderr=(self.tmp / "ingest.log").open("a"), text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "ingest worker is up" in line, (self.tmp / "ingest.log").read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(60)
        self.process = None
        return code

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db, timeout=30) as connection:
            return connection.execute(sql, args).fetchall()

    def alerts(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        rows = self.query("SELECT id, device_id, type, subject, status, count, reopened, "
                          "auto_resolved, details FROM alerts")
        out = {}
        for alert_id, device, type_, subject, status, count, reopened, auto, details in rows:
            actions = [a for (a,) in self.query(
                "SELECT action FROM alert_events WHERE alert_id = ? ORDER BY id", alert_id)]
            out[device, type_, subject] = {"status": status, "count": count,
                                           "reopened": reopened, "auto_resolved": bool(auto),
                                           "details": json.loads(details), "history": actions}
        return out

    def wait(self, done: Any, seconds: float = 90) -> dict[tuple[str, str, str], Any]:
        deadline = time.monotonic() + seconds
        found = self.alerts()
        while not done(found) and time.monotonic() < deadline:
            time.sleep(0.5)
            found = self.alerts()
        return found

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


def simulation(scenarios: frozenset[Scenario]) -> FleetSimulation:
    return FleetSimulation(SimConfig(
        smoke=20, electrical=10, controlrooms=3, seed=7, scenarios=scenarios,
        start_ms=int(time.time() * 1000) - 3 * 3_600_000, speed=1.0, onset_s=600,
        prefix=f"sc{next(_runs)}", smoke_interval_s=3600))


@pytest.fixture
def worker(tmp_path: Path, mosquitto: MosquittoServer, request: pytest.FixtureRequest
           ) -> Iterator[Worker]:
    sim = simulation(getattr(request, "param", SCENARIOS))
    w = Worker(tmp_path, mosquitto, sim)
    w.sim = sim  # type: ignore[attr-defined]
    yield w
    w.close()


def play(sim: FleetSimulation, mosquitto: MosquittoServer, hours: float) -> int:
    endpoint = MqttEndpoint("127.0.0.1", mosquitto.port, False, None, None)
    options = PublishOptions(qos=1, fast=True, duration_s=hours * 3600, progress_every_s=0,
                             answer_duty_checks=False)
    return FleetPublisher(sim, endpoint, options).run().sent


def test_every_scenario_raises_and_clears_as_the_rules_say(worker: Worker,
                                                           mosquitto: MosquittoServer) -> None:
    sim: FleetSimulation = worker.sim  # type: ignore[attr-defined]
    plan = sim.plan
    assert plan.fire_smoke and plan.fire_panel and plan.leakage and plan.overheat
    assert plan.tamper and plan.low_battery and plan.flapping and plan.understaffed
    expected = {
        (plan.fire_smoke.id, "fire", ""), (plan.fire_panel.id, "fire", ""),
        (plan.leakage.id, "residual_current", ""), (plan.overheat.id, "over_temperature", "1"),
        (plan.tamper.id, "tamper", ""), (plan.low_battery.id, "low_battery", ""),
        (plan.flapping.id, "residual_current", ""),
        (plan.understaffed.id, "duty_lapse", "staffing"),
    }
    worker.start()
    assert play(sim, mosquitto, hours=2.5) > 1000
    found = worker.wait(lambda a: expected <= a.keys()
                        and a[plan.tamper.id, "tamper", ""]["status"] == "resolved")
    worker.stop()
    found = worker.alerts()
    assert expected <= found.keys(), sorted(found)

    smoke_fire = found[plan.fire_smoke.id, "fire", ""]
    assert smoke_fire["status"] == "open"  # smoke_clear is recorded, an operator closes it
    assert {"raised", "silenced", "device_cleared"} <= set(smoke_fire["history"])
    panel_fire = found[plan.fire_panel.id, "fire", ""]
    assert panel_fire["details"]["point"]["zone"] == "3F 东侧走廊"
    assert "panel_reset" in panel_fire["history"]
    assert found[plan.leakage.id, "residual_current", ""]["status"] == "open"
    assert found[plan.overheat.id, "over_temperature", "1"]["status"] == "open"
    tamper = found[plan.tamper.id, "tamper", ""]
    assert (tamper["status"], tamper["auto_resolved"]) == ("resolved", True)
    assert found[plan.low_battery.id, "low_battery", ""]["status"] == "open"
    flapping = found[plan.flapping.id, "residual_current", ""]
    assert flapping["reopened"] >= 3, flapping  # one alert reopened, not one per flap
    assert found[plan.understaffed.id, "duty_lapse", "staffing"]["details"][
        "operators_on_duty"] == 1
    troubled = {d for d, _, _ in expected}
    assert {k for k in found if k[0] not in troubled} == set(), "alerts on healthy devices"


@pytest.mark.parametrize("worker", [frozenset({Scenario.NORMAL})], indirect=True)
def test_sigkill_loses_no_alert_and_forgets_no_progress(worker: Worker,
                                                        mosquitto: MosquittoServer) -> None:
    sim: FleetSimulation = worker.sim  # type: ignore[attr-defined]
    smoke = [d.id for d in sim.fleet.of_kind(DeviceKind.SMOKE)]
    meter = sim.fleet.of_kind(DeviceKind.ELECTRICAL)[0].id
    room = sim.fleet.of_kind(DeviceKind.CONTROLROOM)[0]
    worker.start()

    def event(kind: str, device: str, channel: str, **body: Any) -> None:
        body.setdefault("ts", int(time.time() * 1000))
        publish(mosquitto.port, f"{worker.prefix}/{kind}/{device}/{channel}",
                json.dumps(body).encode())

    # Rule progress: 400 mA since two minutes ago, not raised until a second reading
    # (after the restart) shows it lasted the minimum duration (60 s).
    event("electrical", meter, "telemetry", ts=int(time.time() * 1000) - 120_000,
          residual_current_ma=400)
    # A duty check in flight (as the API stores it), due in a few seconds.
    now = time.time()
    worker.query(
        "INSERT INTO duty_checks (id, batch_id, device_id, site_id, jurisdiction, requested_by, "
        "requested_at, deadline_at, status) VALUES ('dc-kill', 'b', ?, ?, 'j', 'op', ?, ?, "
        "'pending')", room.id, room.site.id, _iso(now), _iso(now + 6))
    half = len(smoke) // 2
    for device in smoke[:half]:
        event("smoke", device, "event", event="smoke_alarm")
    worker.wait(lambda _a: worker.query("SELECT rule FROM rule_states WHERE device_id = ?",
                                        meter) != [])
    assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
    for device in smoke[half:]:  # while it is down: the broker keeps them
        event("smoke", device, "event", event="smoke_alarm")
    time.sleep(7)  # the duty check's deadline passes while nothing runs

    worker.start()
    event("electrical", meter, "telemetry", residual_current_ma=410)
    fires = {(d, "fire", "") for d in smoke}
    found = worker.wait(lambda a: fires | {(meter, "residual_current", ""),
                                           (room.id, "duty_lapse", "duty_check")} <= a.keys())
    worker.stop()
    found = worker.alerts()
    assert fires <= found.keys(), sorted(fires - found.keys())
    assert all(found[k]["count"] == 1 for k in fires)  # redelivery did not double-count
    assert (meter, "residual_current", "") in found
    assert (room.id, "duty_lapse", "duty_check") in found
    assert worker.query("SELECT status FROM duty_checks WHERE id = 'dc-kill'") == [("missed",)]


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1e6):06d}"
