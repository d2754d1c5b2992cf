"""The alert rules: one reading (and the device's rule progress) in, actions out.

Pure functions over plain data so they can be tested without a database or a
clock.  ``states`` is the device's rule progress, keyed by rule name; a rule
that changes its entry also returns a :class:`SaveState` so the progress
survives a restart.  Thresholds come from the device's effective profile.

Threshold rules (residual current, cable temperature, battery, staffing) use a
:class:`Band`: the condition must hold for a minimum duration before an alert
is raised, and must stay past the hysteresis margin for a minimum duration
before it clears, so a value wobbling around the threshold raises one alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from alerts.actions import Action, AnswerDutyCheck, Clear, Raise, Record, SaveState
from alerts.catalog import DEVICE_ALARMS
from devices import Reading
from devices.messages import (
    ControlRoomEvent,
    ControlRoomTelemetry,
    ElectricalEvent,
    ElectricalTelemetry,
    SmokeEvent,
    SmokeTelemetry,
)
from devices.registry.cache import DeviceInfo

State = dict[str, Any]
States = dict[str, State]

RAISED, CLEARED = "raise", "clear"

_DEVICE_ALARM_TYPES = {name: ("residual_current" if name == "residual_current_alarm" else name)
                       for name in DEVICE_ALARMS}
_CLEARED_BY_ALARM_CLEAR = (*sorted(set(_DEVICE_ALARM_TYPES.values())), "power_loss")


@dataclass(frozen=True, slots=True)
class Band:
    """A threshold with hysteresis and minimum durations (milliseconds)."""

    threshold: float
    hysteresis: float
    above: bool
    """True: alarm at or above the threshold; False: alarm below it."""
    raise_after_ms: int = 0
    clear_after_ms: int = 0

    def tripped(self, value: float) -> bool:
        return value >= self.threshold if self.above else value < self.threshold

    def recovered(self, value: float) -> bool:
        if self.above:
            return value < self.threshold - self.hysteresis
        return value >= self.threshold + self.hysteresis


@lru_cache(maxsize=4096)
def _band(threshold: float, hysteresis: float, above: bool, raise_after_ms: int = 0,
          clear_after_ms: int = 0) -> Band:
    """Bands come from profile numbers on every reading; most devices share a few."""
    return Band(threshold, hysteresis, above, raise_after_ms, clear_after_ms)


def step(state: State | None, band: Band, value: float, at_ms: int
         ) -> tuple[State | None, str | None]:
    """Advance one band by one value: (new state, RAISED / CLEARED / None).

    Phases: none (normal), ``rising`` (tripped, waiting out the duration),
    ``raised``, ``falling`` (recovered, waiting out the duration).
    """
    phase = state["phase"] if state else None
    if phase is None:
        if not band.tripped(value):
            return None, None
        if band.raise_after_ms <= 0:
            return {"phase": "raised", "since": at_ms}, RAISED
        return {"phase": "rising", "since": at_ms}, None
    assert state is not None
    since = int(state["since"])
    if phase == "rising":
        if not band.tripped(value):
            return None, None
        if at_ms - since >= band.raise_after_ms:
            return {"phase": "raised", "since": at_ms}, RAISED
        return state, None
    if phase == "raised":
        if not band.recovered(value):
            return state, None
        if band.clear_after_ms <= 0:
            return None, CLEARED
        return {"phase": "falling", "since": at_ms}, None
    # falling
    if not band.recovered(value):
        return {"phase": "raised", "since": since}, None
    if at_ms - since >= band.clear_after_ms:
        return None, CLEARED
    return state, None


class _Rules:
    """Collects the actions of one reading for one device."""

    def __init__(self, reading: Reading, device: DeviceInfo, states: States) -> None:
        self.reading = reading
        self.device = device
        self.states = states
        self.at = reading.ts_ms
        self.actions: list[Action] = []

    def raise_(self, type_: str, subject: str = "", **details: Any) -> None:
        self.actions.append(Raise(device_id=self.device.id, type=type_, at_ms=self.at,
                                  subject=subject, details=details))

    def clear(self, *types: str, subject: str | None = "", reason: str = "") -> None:
        self.actions.append(Clear(device_id=self.device.id, types=types, at_ms=self.at,
                                  subject=subject, reason=reason or self._event_name()))

    def record(self, type_: str, action: str, **details: Any) -> None:
        self.actions.append(Record(device_id=self.device.id, type=type_, action=action,
                                   at_ms=self.at, details=details))

    def save(self, rule: str, state: State | None) -> None:
        if self.states.get(rule) == state:
            return
        if state is None:
            self.states.pop(rule, None)
        else:
            self.states[rule] = state
        self.actions.append(SaveState(device_id=self.device.id, rule=rule, state=state))

    def band(self, rule: str, band: Band, value: float, type_: str, subject: str = "",
             **details: Any) -> None:
        previous = self.states.get(rule)
        if previous is None and not band.tripped(value):
            return  # normal and was normal: nearly every reading, so nothing else to do
        state, change = step(previous, band, value, self.at)
        self.save(rule, state)
        if change == RAISED:
            self.raise_(type_, subject, **details)
        elif change == CLEARED:
            self.clear(type_, subject=subject, reason=f"{rule} back to normal")

    def flag(self, rule: str, bad: bool, type_: str, **details: Any) -> None:
        """A yes/no condition (power ok, panel in fault): raise on the change to bad."""
        was_bad = bool(self.states.get(rule))
        if bad == was_bad:
            return
        self.save(rule, {"since": self.at} if bad else None)
        if bad:
            self.raise_(type_, **details)
        else:
            self.clear(type_, reason=f"{rule} back to normal")

    def _event_name(self) -> str:
        return str(getattr(self.reading.body, "event", "telemetry"))


def evaluate(reading: Reading, device: DeviceInfo, states: States) -> list[Action]:
    """The actions one reading from a registered device leads to."""
    rules = _Rules(reading, device, states)
    body = reading.body
    if isinstance(body, SmokeTelemetry):
        _smoke_telemetry(rules, body)
    elif isinstance(body, SmokeEvent):
        _smoke_event(rules, body)
    elif isinstance(body, ElectricalTelemetry):
        _electrical_telemetry(rules, body)
    elif isinstance(body, ElectricalEvent):
        _electrical_event(rules, body)
    elif isinstance(body, ControlRoomTelemetry):
        _controlroom_telemetry(rules, body)
    elif isinstance(body, ControlRoomEvent):
        _controlroom_event(rules, body)
    return rules.actions


# --- smoke detectors -------------------------------------------------------------------

def _battery_band(rules: _Rules) -> Band:
    profile = rules.device.profile
    return _band(profile.low_battery_pct, profile.battery_hysteresis_pct, False)


def _smoke_telemetry(rules: _Rules, body: SmokeTelemetry) -> None:
    rules.band("battery", _battery_band(rules), body.battery_pct, "low_battery",
               battery_pct=body.battery_pct, threshold=rules.device.profile.low_battery_pct)


def _smoke_event(rules: _Rules, body: SmokeEvent) -> None:
    event = body.event
    if event == "smoke_alarm":
        rules.raise_("fire", event=event, smoke_db_per_m=body.smoke_db_per_m)
    elif event in ("smoke_clear", "silenced"):
        rules.record("fire", "device_cleared" if event == "smoke_clear" else "silenced")
    elif event in ("tamper", "fault"):
        rules.raise_(event, event=event)
    elif event in ("tamper_clear", "fault_clear"):
        rules.clear(event.removesuffix("_clear"))
    elif event == "low_battery":
        # The device's own warning: raised now, cleared by a report back above the band.
        rules.save("battery", {"phase": "raised", "since": rules.at})
        rules.raise_("low_battery", event=event, battery_pct=body.battery_pct)
    elif event == "self_test":
        rules.raise_("self_test", event=event)


# --- electrical fire monitors ------------------------------------------------------------

def _electrical_telemetry(rules: _Rules, body: ElectricalTelemetry) -> None:
    profile = rules.device.profile
    duration_ms = profile.min_duration_s * 1000
    rules.band("residual_current",
               _band(profile.residual_current_ma, profile.residual_hysteresis_ma, True,
              duration_ms, duration_ms),
               body.residual_current_ma, "residual_current",
               residual_current_ma=body.residual_current_ma,
               threshold=profile.residual_current_ma)
    temperature = _band(profile.cable_temperature_c, profile.temperature_hysteresis_c, True,
                        duration_ms, duration_ms)
    for channel, value in body.temperature_c.items():
        rules.band(_temperature_rule(channel), temperature, value, "over_temperature", channel,
                   temperature_c=value, threshold=profile.cable_temperature_c)


@lru_cache(maxsize=256)
def _temperature_rule(channel: str) -> str:
    return f"temperature:{channel}"


def _electrical_event(rules: _Rules, body: ElectricalEvent) -> None:
    event = body.event
    if event in _DEVICE_ALARM_TYPES:
        rules.raise_(_DEVICE_ALARM_TYPES[event], body.channel or "", event=event,
                     value=body.value, reported_by="device")
    elif event == "power_loss":
        rules.raise_("power_loss", event=event)
    elif event == "alarm_clear":
        rules.clear(*_CLEARED_BY_ALARM_CLEAR, subject=body.channel)
    elif event == "fault":
        rules.raise_("fault", event=event)
    elif event == "fault_clear":
        rules.clear("fault")


# --- fire control rooms --------------------------------------------------------------------

def _controlroom_telemetry(rules: _Rules, body: ControlRoomTelemetry) -> None:
    previous = rules.states.get("panel", {}).get("state", "normal")
    if body.panel_state != previous:
        rules.save("panel", None if body.panel_state == "normal" else {"state": body.panel_state})
        if body.panel_state == "fire":
            rules.raise_("fire", panel_state="fire")
    rules.flag("panel_fault", body.panel_state == "fault", "panel_fault", panel_state="fault")
    rules.flag("main_power", not body.main_power_ok, "main_power_fault")
    rules.flag("backup_power", not body.backup_power_ok, "backup_power_fault")
    profile, minimum = rules.device.profile, rules.device.min_operators
    rules.band("staffing", _band(minimum, 0, False, profile.understaffed_grace_s * 1000, 0),
               body.operators_on_duty, "duty_lapse", "staffing",
               operators_on_duty=body.operators_on_duty, minimum=minimum)


def _controlroom_event(rules: _Rules, body: ControlRoomEvent) -> None:
    event = body.event
    point = _point(body)
    if event in ("panel_fire", "manual_alarm"):
        rules.raise_("fire", event=event, point=point)
    elif event == "panel_fault":
        rules.raise_("panel_fault", event=event, point=point)
    elif event == "panel_fault_clear":
        rules.clear("panel_fault")
    elif event == "panel_reset":
        rules.record("fire", "panel_reset")
    elif event == "duty_check_ack" and body.check_id:
        rules.actions.append(AnswerDutyCheck(device_id=rules.device.id, check_id=body.check_id,
                                             at_ms=rules.reading.received_ms,
                                             operator=body.operator))


def _point(body: ControlRoomEvent) -> dict[str, Any] | None:
    if body.point is None:
        return None
    return {k: v for k, v in (("loop", body.point.loop), ("address", body.point.address),
                              ("zone", body.point.zone),
                              ("description", body.point.description)) if v is not None}
