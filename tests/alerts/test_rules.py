"""The rules as pure functions: each raise path with its clear and hysteresis path."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from alerts.actions import AnswerDutyCheck, Clear, Raise, Record, SaveState
from alerts.rules import CLEARED, RAISED, Band, States, evaluate, step
from devices import DeviceKind
from tests.alerts.helpers import NOW_MS, device, reading

MINUTE = 60_000


def alerts_of(actions: list[Any]) -> list[tuple[str, str, str]]:
    """(verb, type, subject) of the alert actions, leaving out saved rule progress."""
    out = []
    for a in actions:
        if isinstance(a, Raise):
            out.append(("raise", a.type, a.subject))
        elif isinstance(a, Clear):
            out += [("clear", t, a.subject or "") for t in a.types]
        elif isinstance(a, Record):
            out.append((a.action, a.type, a.subject))
    return out


def run(info: Any, states: States, channel: str, at_ms: int, **body: Any) -> list[Any]:
    return evaluate(reading(info, channel, at_ms, **body), info, states)


class TestBand:
    band = Band(300, 30, above=True, raise_after_ms=MINUTE, clear_after_ms=MINUTE)

    def test_raises_only_after_the_minimum_duration(self) -> None:
        state, change = step(None, self.band, 310, 0)
        assert change is None and state == {"phase": "rising", "since": 0}
        state, change = step(state, self.band, 320, MINUTE - 1)
        assert change is None
        state, change = step(state, self.band, 320, MINUTE)
        assert change == RAISED and state is not None and state["phase"] == "raised"

    def test_a_dip_below_the_threshold_restarts_the_duration(self) -> None:
        state, _ = step(None, self.band, 310, 0)
        state, _ = step(state, self.band, 290, 30_000)
        assert state is None
        state, change = step(state, self.band, 310, 40_000)
        state, change = step(state, self.band, 310, 90_000)
        assert change is None  # only 50 s above since the dip

    def test_clears_only_below_the_hysteresis_for_the_duration(self) -> None:
        state: Any = {"phase": "raised", "since": 0}
        state, change = step(state, self.band, 280, 1000)  # below 300 but not below 270
        assert change is None and state["phase"] == "raised"
        state, change = step(state, self.band, 260, 2000)
        assert change is None and state["phase"] == "falling"
        state, change = step(state, self.band, 275, 30_000)  # back inside the band
        assert state["phase"] == "raised"
        state, _ = step(state, self.band, 260, 40_000)
        state, change = step(state, self.band, 260, 40_000 + MINUTE)
        assert change == CLEARED and state is None

    def test_below_band_for_batteries(self) -> None:
        band = Band(20, 5, above=False)
        state, change = step(None, band, 19, 0)
        assert change == RAISED
        state, change = step(state, band, 24, 1)
        assert change is None
        state, change = step(state, band, 25, 2)
        assert change == CLEARED


class TestSmokeDetector:
    info = device(DeviceKind.SMOKE)

    def test_smoke_alarm_raises_fire_and_clear_is_only_recorded(self) -> None:
        states: States = {}
        assert alerts_of(run(self.info, states, "event", NOW_MS, event="smoke_alarm")) == [
            ("raise", "fire", "")]
        assert alerts_of(run(self.info, states, "event", NOW_MS, event="smoke_clear")) == [
            ("device_cleared", "fire", "")]
        assert alerts_of(run(self.info, states, "event", NOW_MS, event="silenced")) == [
            ("silenced", "fire", "")]

    @pytest.mark.parametrize("event", ["tamper", "fault"])
    def test_tamper_and_fault_raise_and_their_clear_events_clear(self, event: str) -> None:
        states: States = {}
        assert alerts_of(run(self.info, states, "event", NOW_MS, event=event)) == [
            ("raise", event, "")]
        assert alerts_of(run(self.info, states, "event", NOW_MS, event=f"{event}_clear")) == [
            ("clear", event, "")]

    def test_low_battery_from_telemetry_with_hysteresis(self) -> None:
        states: States = {}
        report = {"rsrp_dbm": -90}
        assert alerts_of(run(self.info, states, "telemetry", NOW_MS, battery_pct=30, **report)) \
            == []
        assert alerts_of(run(self.info, states, "telemetry", NOW_MS + 1, battery_pct=19,
                             **report)) == [("raise", "low_battery", "")]
        assert alerts_of(run(self.info, states, "telemetry", NOW_MS + 2, battery_pct=23,
                             **report)) == []
        assert alerts_of(run(self.info, states, "telemetry", NOW_MS + 3, battery_pct=26,
                             **report)) == [("clear", "low_battery", "")]

    def test_low_battery_event_is_cleared_by_a_good_report(self) -> None:
        states: States = {}
        assert alerts_of(run(self.info, states, "event", NOW_MS, event="low_battery")) == [
            ("raise", "low_battery", "")]
        assert alerts_of(run(self.info, states, "telemetry", NOW_MS + 1, battery_pct=90,
                             rsrp_dbm=-90)) == [("clear", "low_battery", "")]

    def test_self_test_is_recorded_as_a_test(self) -> None:
        actions = run(self.info, {}, "event", NOW_MS, event="self_test")
        assert alerts_of(actions) == [("raise", "self_test", "")]

    def test_thresholds_follow_the_profile(self) -> None:
        info = device(DeviceKind.SMOKE, low_battery_pct=40)
        assert alerts_of(run(info, {}, "telemetry", NOW_MS, battery_pct=35, rsrp_dbm=-90)) == [
            ("raise", "low_battery", "")]


class TestElectricalMonitor:
    info = device(DeviceKind.ELECTRICAL)

    def test_residual_current_needs_the_minimum_duration_and_clears_with_hysteresis(
            self) -> None:
        states: States = {}

        def rc(at: int, value: float) -> list[Any]:
            return alerts_of(run(self.info, states, "telemetry", at, residual_current_ma=value))

        assert rc(NOW_MS, 350) == []
        assert rc(NOW_MS + 30_000, 350) == []
        assert rc(NOW_MS + MINUTE, 350) == [("raise", "residual_current", "")]
        assert rc(NOW_MS + 2 * MINUTE, 280) == []  # under 300 but above 270
        assert rc(NOW_MS + 3 * MINUTE, 200) == []  # below the band: the clear duration starts
        assert rc(NOW_MS + 4 * MINUTE, 200) == [("clear", "residual_current", "")]

    def test_each_temperature_channel_is_its_own_alert(self) -> None:
        info = device(DeviceKind.ELECTRICAL, min_duration_s=0)
        states: States = {}
        actions = run(info, states, "telemetry", NOW_MS, residual_current_ma=10,
                      temperature_c={"1": 75, "2": 40, "3": 71})
        assert alerts_of(actions) == [("raise", "over_temperature", "1"),
                                      ("raise", "over_temperature", "3")]
        actions = run(info, states, "telemetry", NOW_MS + 1, residual_current_ma=10,
                      temperature_c={"1": 60, "2": 40, "3": 68})
        assert alerts_of(actions) == [("clear", "over_temperature", "1")]

    def test_rule_progress_is_saved_when_it_changes(self) -> None:
        states: States = {}
        actions = run(self.info, states, "telemetry", NOW_MS, residual_current_ma=350)
        assert [a for a in actions if isinstance(a, SaveState)] == [
            SaveState(device_id="dev-1", rule="residual_current",
                      state={"phase": "rising", "since": NOW_MS})]
        actions = run(self.info, states, "telemetry", NOW_MS + 1000, residual_current_ma=360)
        assert not [a for a in actions if isinstance(a, SaveState)]

    @pytest.mark.parametrize(("event", "type_"), [
        ("arc_fault", "arc_fault"), ("short_circuit", "short_circuit"),
        ("over_current", "over_current"), ("residual_current_alarm", "residual_current"),
        ("power_loss", "power_loss")])
    def test_device_alarms_raise_their_type_and_alarm_clear_clears(self, event: str,
                                                                   type_: str) -> None:
        states: States = {}
        assert alerts_of(run(self.info, states, "event", NOW_MS, event=event)) == [
            ("raise", type_, "")]
        cleared = alerts_of(run(self.info, states, "event", NOW_MS, event="alarm_clear"))
        assert ("clear", type_, "") in cleared


class TestControlRoom:
    info = device(DeviceKind.CONTROLROOM, understaffed_grace_s=300)
    ok: ClassVar[dict[str, Any]] = {"panel_state": "normal", "main_power_ok": True,
                                    "backup_power_ok": True, "operators_on_duty": 2}

    def heartbeat(self, states: States, at: int, **changes: Any) -> list[Any]:
        return alerts_of(run(self.info, states, "telemetry", at, **{**self.ok, **changes}))

    def test_panel_fire_event_raises_fire_with_the_point(self) -> None:
        actions = run(self.info, {}, "event", NOW_MS, event="panel_fire",
                      point={"loop": 1, "address": 23, "zone": "B1", "description": "厨房"})
        assert alerts_of(actions) == [("raise", "fire", "")]
        assert actions[0].details["point"] == {"loop": 1, "address": 23, "zone": "B1",
                                               "description": "厨房"}

    def test_panel_state_fire_raises_once_not_on_every_heartbeat(self) -> None:
        states: States = {}
        assert self.heartbeat(states, NOW_MS, panel_state="fire") == [("raise", "fire", "")]
        assert self.heartbeat(states, NOW_MS + MINUTE, panel_state="fire") == []

    def test_panel_fault_and_power_faults_raise_and_clear(self) -> None:
        states: States = {}
        raised = self.heartbeat(states, NOW_MS, panel_state="fault", main_power_ok=False)
        assert raised == [("raise", "panel_fault", ""), ("raise", "main_power_fault", "")]
        cleared = self.heartbeat(states, NOW_MS + MINUTE)
        assert cleared == [("clear", "panel_fault", ""), ("clear", "main_power_fault", "")]

    def test_understaffing_raises_duty_lapse_after_the_grace_period(self) -> None:
        states: States = {}
        assert self.heartbeat(states, NOW_MS, operators_on_duty=1) == []
        assert self.heartbeat(states, NOW_MS + 299_000, operators_on_duty=1) == []
        assert self.heartbeat(states, NOW_MS + 300_000, operators_on_duty=1) == [
            ("raise", "duty_lapse", "staffing")]
        assert self.heartbeat(states, NOW_MS + 360_000, operators_on_duty=2) == [
            ("clear", "duty_lapse", "staffing")]

    def test_the_site_minimum_applies(self) -> None:
        info = device(DeviceKind.CONTROLROOM, min_operators=1, understaffed_grace_s=0)
        actions = run(info, {}, "telemetry", NOW_MS, **{**self.ok, "operators_on_duty": 1})
        assert alerts_of(actions) == []

    def test_duty_check_ack_answers_the_check(self) -> None:
        actions = run(self.info, {}, "event", NOW_MS, event="duty_check_ack", check_id="dc-1",
                      operator="张三")
        assert actions == [AnswerDutyCheck(device_id="dev-1", check_id="dc-1", at_ms=NOW_MS,
                                           operator="张三")]
