"""Every scenario produces messages the contract accepts, or rejects as intended."""

from __future__ import annotations

import csv
import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

from devices import DECODE_REASONS, DeviceKind, MessageDecoder, Reading, Rejection
from simulators import FleetSimulation, Scenario, SimConfig, SimMessage, write_registry_csv

SPEED = 60.0


def run(scenarios: set[Scenario], seconds: float = 3600, seed: int = 7,
        **overrides: object) -> tuple[FleetSimulation, list[SimMessage]]:
    config = SimConfig(smoke=12, electrical=8, controlrooms=3, scenarios=frozenset(scenarios),
                       seed=seed, speed=SPEED, onset_s=300, **overrides)  # type: ignore[arg-type]
    sim = FleetSimulation(config)
    messages = list(itertools.takewhile(lambda m: m.at <= seconds, sim.messages()))
    return sim, messages


def decode_all(sim: FleetSimulation, messages: list[SimMessage]) -> list[Reading | Rejection]:
    decoder = MessageDecoder(sim.config.prefix)
    config = sim.config
    return [decoder.decode(m.topic, m.payload, config.start_ms + round(m.at * 1000 / config.speed))
            for m in messages]


def events(sim: FleetSimulation, messages: list[SimMessage]) -> Counter[str]:
    found: Counter[str] = Counter()
    for result in decode_all(sim, messages):
        if isinstance(result, Reading) and hasattr(result.body, "event"):
            found[result.body.event] += 1
    return found


@pytest.mark.parametrize("scenario", list(Scenario))
def test_every_scenario_is_accepted_or_rejected_as_intended(scenario: Scenario) -> None:
    sim, messages = run({scenario})
    assert len(messages) > 100
    for message, result in zip(messages, decode_all(sim, messages), strict=True):
        if message.expect is None:
            assert isinstance(result, Reading), (message, result)
            assert not result.clock_corrected
        else:
            assert isinstance(result, Rejection) and result.reason is message.expect, message


def test_garbage_covers_every_reason_code() -> None:
    sim, messages = run({Scenario.GARBAGE})
    reasons = Counter(r.reason for r in decode_all(sim, messages) if isinstance(r, Rejection))
    assert set(reasons) == set(DECODE_REASONS)


def test_same_seed_same_messages_and_other_seed_differs() -> None:
    _, first = run({Scenario.NORMAL, Scenario.FIRE, Scenario.GARBAGE}, seed=3)
    _, again = run({Scenario.NORMAL, Scenario.FIRE, Scenario.GARBAGE}, seed=3)
    _, other = run({Scenario.NORMAL, Scenario.FIRE, Scenario.GARBAGE}, seed=4)
    def key(messages: list[SimMessage]) -> list[tuple[float, str, bytes]]:
        return [(m.at, m.topic, m.payload) for m in messages]

    assert key(first) == key(again)
    assert [m.payload for m in first] != [m.payload for m in other]


def test_fire_alarms_and_clears() -> None:
    sim, messages = run({Scenario.FIRE})
    found = events(sim, messages)
    assert found["smoke_alarm"] == 1 and found["smoke_clear"] == 1 and found["silenced"] == 1
    assert found["panel_fire"] == 1 and found["panel_reset"] == 1
    panel = sim.plan.fire_panel
    assert panel is not None
    states = [json.loads(m.payload)["panel_state"] for m in messages
              if m.device_id == panel.id and m.topic.endswith("/telemetry")]
    assert "fire" in states and states[0] == "normal"


def _residuals(sim: FleetSimulation, messages: list[SimMessage], device_id: str) -> list[float]:
    return [json.loads(m.payload)["residual_current_ma"] for m in messages
            if m.device_id == device_id and m.topic.endswith("/telemetry")]


def test_leakage_climbs_past_300_ma() -> None:
    sim, messages = run({Scenario.LEAKAGE})
    assert sim.plan.leakage is not None
    values = _residuals(sim, messages, sim.plan.leakage.id)
    assert values[0] < 300 <= max(values)
    assert events(sim, messages)["residual_current_alarm"] == 1


def test_flapping_oscillates_around_the_threshold() -> None:
    sim, messages = run({Scenario.FLAPPING})
    assert sim.plan.flapping is not None
    late = [v for v in _residuals(sim, messages, sim.plan.flapping.id)][10:]
    assert sum(v >= 300 for v in late) >= 5 and sum(v < 300 for v in late) >= 5


def test_overheat_passes_70_degrees() -> None:
    sim, messages = run({Scenario.OVERHEAT})
    assert sim.plan.overheat is not None
    temps = [json.loads(m.payload)["temperature_c"]["1"] for m in messages
             if m.device_id == sim.plan.overheat.id and m.topic.endswith("/telemetry")]
    assert temps[0] < 70 <= max(temps)
    assert events(sim, messages)["over_temperature"] == 1


def test_tamper_and_low_battery() -> None:
    sim, messages = run({Scenario.TAMPER, Scenario.LOW_BATTERY}, seconds=2 * 86_400,
                        smoke_interval_s=3600.0)
    found = events(sim, messages)
    assert found["tamper"] == 1 and found["tamper_clear"] == 1 and found["low_battery"] == 1
    assert sim.plan.low_battery is not None
    later = [json.loads(m.payload)["battery_pct"] for m in messages
             if m.device_id == sim.plan.low_battery.id and m.topic.endswith("/telemetry")
             and m.at > 300]
    assert later and all(b < 20 for b in later)


def test_offline_devices_fall_silent() -> None:
    sim, messages = run({Scenario.OFFLINE})
    assert sim.plan.offline
    for device_id in sim.plan.offline:
        times = [m.at for m in messages if m.device_id == device_id]
        assert times and max(times) < sim.plan.onset_s
    others = {m.device_id for m in messages if m.at > 1800}
    assert others and not others & sim.plan.offline


def test_duty_lapse_ignores_checks_and_understaffs() -> None:
    sim, messages = run({Scenario.DUTY_LAPSE})
    lapse, short = sim.plan.ignores_duty_checks, sim.plan.understaffed
    assert lapse is not None and short is not None
    check = json.dumps({"cmd": "duty_check", "check_id": "c1", "ts": 0}).encode()
    assert sim.answer_duty_check(lapse.id, check, 400) is None
    staffed = [json.loads(m.payload)["operators_on_duty"] for m in messages
               if m.device_id == short.id and m.at > 400]
    assert staffed and all(n < 2 for n in staffed)


def test_duty_check_answer_is_a_valid_ack() -> None:
    sim, _ = run({Scenario.NORMAL}, seconds=10)
    room = sim.fleet.of_kind(DeviceKind.CONTROLROOM)[0]
    check = json.dumps({"cmd": "duty_check", "check_id": "chk-42", "ts": 0}).encode()
    reply = sim.answer_duty_check(room.id, check, 100.0)
    assert reply is not None and 102 <= reply.at <= 130
    result = decode_all(sim, [reply])[0]
    assert isinstance(result, Reading) and getattr(result.body, "check_id", None) == "chk-42"
    assert sim.answer_duty_check(room.id, b"not json", 1) is None
    assert sim.answer_duty_check("unknown", check, 1) is None


def test_flood_device_far_over_its_rate() -> None:
    sim, messages = run({Scenario.FLOOD}, seconds=400)
    assert sim.plan.flood is not None
    per_device = Counter(m.device_id for m in messages if m.at > 300)
    flood_count = per_device.pop(sim.plan.flood.id)
    assert flood_count > 50 * max(per_device.values())


def test_registry_csv_lists_every_device(tmp_path: Path) -> None:
    sim, _ = run({Scenario.NORMAL}, seconds=1)
    path = tmp_path / "fleet.csv"
    assert write_registry_csv(sim.fleet, path) == len(sim.fleet.devices)
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["device_id"] for r in rows] == [d.id for d in sim.fleet.devices]
    assert {r["kind"] for r in rows} == {"smoke", "electrical", "controlroom"}
    assert all(r["site_id"] and r["jurisdiction"] for r in rows)


def test_fleet_identity_does_not_depend_on_intervals() -> None:
    """A registry written with one interval setting must match traffic sent with another."""
    a = FleetSimulation(SimConfig(smoke=5, electrical=3, controlrooms=1, seed=5))
    b = FleetSimulation(SimConfig(smoke=5, electrical=3, controlrooms=1, seed=5,
                                  smoke_interval_s=600.0, electrical_interval_s=10.0))
    assert [d.id for d in a.fleet.devices] == [d.id for d in b.fleet.devices]
