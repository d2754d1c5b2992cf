"""The fleet simulation as a pure, deterministic stream of messages.

:class:`FleetSimulation` yields :class:`SimMessage` objects in order of their
virtual time (seconds since the start of the run); it never touches the
network, so tests can check every message, and the same configuration
(seed included) always gives the same bytes.  The publisher paces them.

Timestamps: ``ts = start_ms + at / speed``, i.e. in wall-clock time of a run
compressed by ``speed``, so a day of heartbeats at ``speed=1440`` carries
timestamps spread over one real minute and none lie in the future.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from devices import DECODE_REASONS, Channel, DeviceKind, Reason, topic_for
from simulators.fleet import Fleet, SimDevice, build_fleet
from simulators.scenarios import Scenario, ScenarioPlan

CHINA_TZ = timezone(timedelta(hours=8))
RESIDUAL_ALARM_MA = 300.0
TEMPERATURE_ALARM_C = 70.0
FLOOD_FACTOR = 1000.0
GARBAGE_REASONS = DECODE_REASONS


@dataclass(frozen=True, slots=True)
class SimMessage:
    at: float
    """Virtual seconds since the start of the run."""
    topic: str
    payload: bytes
    device_id: str
    expect: Reason | None = None
    """For garbage: the reason it must be rejected with; None for a valid message."""


@dataclass(frozen=True, slots=True)
class SimConfig:
    smoke: int = 20
    electrical: int = 10
    controlrooms: int = 3
    sites: int | None = None
    scenarios: frozenset[Scenario] = frozenset({Scenario.NORMAL})
    seed: int = 1
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00Z; the CLI passes "now"
    speed: float = 1.0
    """Time compression: virtual seconds per real second."""
    onset_s: float = 60.0
    """Virtual second at which scenario behaviour begins."""
    prefix: str = "fw"
    smoke_interval_s: float | None = None
    """None: each detector draws 4, 6, 12 or 24 h."""
    electrical_interval_s: float = 60.0
    controlroom_interval_s: float = 60.0
    garbage_interval_s: float = 10.0
    max_payload_bytes: int = 8192


@dataclass(slots=True)
class _SmokeState:
    battery: float
    drain_per_day: float
    rsrp: float
    sinr: float
    temperature: float
    smoke: float = 0.0


@dataclass(slots=True)
class _ElectricalState:
    residual: float
    rated_a: float
    temperatures: dict[str, float]
    alarmed: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _RoomState:
    operators: int
    panel: str = "normal"


_State = _SmokeState | _ElectricalState | _RoomState
_Action = Callable[[float], list[SimMessage]]


class FleetSimulation:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        rng = random.Random(config.seed)
        self.fleet: Fleet = build_fleet(
            rng, smoke=config.smoke, electrical=config.electrical,
            controlrooms=config.controlrooms, sites=config.sites,
            smoke_interval_s=config.smoke_interval_s,
            electrical_interval_s=config.electrical_interval_s,
            controlroom_interval_s=config.controlroom_interval_s,
        )
        self.plan = ScenarioPlan.choose(self.fleet, config.scenarios, config.onset_s)
        self._rng = random.Random(rng.random())
        self._reply_rng = random.Random(config.seed * 7919 + 1)
        self._devices = {d.id: d for d in self.fleet.devices}
        self._states: dict[str, _State] = {d.id: self._initial_state(d) for d in self.fleet.devices}
        self._seq: dict[str, int] = dict.fromkeys(self._devices, 0)

    # --- the stream ------------------------------------------------------------------
    def messages(self) -> Iterator[SimMessage]:
        """Every message of the run, in virtual-time order; endless."""
        heap: list[tuple[float, int, _Action]] = []
        order = 0

        def schedule(at: float, action: _Action) -> None:
            nonlocal order
            order += 1
            heapq.heappush(heap, (at, order, action))

        for device in self.fleet.devices:
            # Devices come online during the first two minutes, then keep their interval.
            first = self._rng.uniform(0, min(device.interval_s, 120.0))
            schedule(first, self._ticker(device, schedule, device.interval_s))
        for at, action in self._scenario_events():
            schedule(at, action)
        if self.plan.flood is not None:
            flood = self.plan.flood
            schedule(self.plan.onset_s,
                     self._ticker(flood, schedule, max(flood.interval_s / FLOOD_FACTOR, 0.01),
                                  jitter=False))
        if self.plan.garbage:
            schedule(min(self.plan.onset_s, 5.0), self._garbage_source(schedule))

        while heap:
            at, _, action = heapq.heappop(heap)
            yield from action(at)

    def _ticker(self, device: SimDevice, schedule: Callable[[float, _Action], None],
                interval: float, *, jitter: bool = True) -> _Action:
        def tick(at: float) -> list[SimMessage]:
            if self.plan.is_offline(device.id, at):
                return []  # fallen silent: not rescheduled
            spread = self._rng.uniform(-0.1, 0.1) * interval if jitter else 0.0
            schedule(at + interval + spread, tick)
            return self._telemetry(device, at)
        return tick

    # --- telemetry ---------------------------------------------------------------------
    def _telemetry(self, device: SimDevice, at: float) -> list[SimMessage]:
        state = self._states[device.id]
        rng = self._rng
        if isinstance(state, _SmokeState):
            state.battery = max(0.0, state.battery - state.drain_per_day * device.interval_s
                                / 86_400)
            state.rsrp = min(-60.0, max(-125.0, state.rsrp + rng.gauss(0, 2)))
            state.sinr = min(30.0, max(-5.0, state.sinr + rng.gauss(0, 1)))
            return [self._send(device, Channel.TELEMETRY, at, {
                "battery_pct": round(state.battery, 1),
                "rsrp_dbm": round(state.rsrp),
                "sinr_db": round(state.sinr, 1),
                "smoke_db_per_m": round(state.smoke + abs(rng.gauss(0, 0.003)), 3),
                "temperature_c": round(state.temperature + rng.gauss(0, 0.3), 1),
            })]
        if isinstance(state, _ElectricalState):
            return self._electrical(device, state, at)
        operators = 1 if self.plan.understaffed is device and at >= self.plan.onset_s \
            else state.operators
        return [self._send(device, Channel.TELEMETRY, at, {
            "panel_state": state.panel,
            "main_power_ok": True,
            "backup_power_ok": True,
            "operators_on_duty": operators,
        })]

    def _electrical(self, device: SimDevice, state: _ElectricalState,
                    at: float) -> list[SimMessage]:
        rng, plan = self._rng, self.plan
        load = _daily_load(self.config.start_ms / 1000 + at)
        since = (at - plan.onset_s) / device.interval_s  # intervals since onset
        residual = state.residual + rng.gauss(0, 4)
        if plan.leakage is device and since >= 0:
            residual = state.residual + (450 - state.residual) * min(1.0, since / 10)
        if plan.flapping is device and since >= 0:
            residual = RESIDUAL_ALARM_MA + (25 if int(since) % 2 else -25) + rng.gauss(0, 2)
        temperatures = {ch: base + 15 * load + rng.gauss(0, 0.4)
                        for ch, base in state.temperatures.items()}
        if plan.overheat is device and since >= 0:
            temperatures["1"] += (95 - temperatures["1"]) * min(1.0, since / 10)
        currents = {ph: state.rated_a * load * rng.uniform(0.9, 1.1) for ph in "ABC"}
        voltages = {ph: 220 + rng.gauss(0, 2.5) for ph in "ABC"}
        residual = max(0.0, residual)
        messages = [self._send(device, Channel.TELEMETRY, at, {
            "residual_current_ma": round(residual, 1),
            "temperature_c": {k: round(v, 1) for k, v in temperatures.items()},
            "current_a": {k: round(v, 2) for k, v in currents.items()},
            "voltage_v": {k: round(v, 1) for k, v in voltages.items()},
            "power_kw": round(sum(currents.values()) * 0.22 * 0.9, 2),
        })]
        # The device raises its own alarms when a value crosses its setting.
        checks: list[tuple[str, str | None, float, float]] = [
            ("residual_current_alarm", None, residual, RESIDUAL_ALARM_MA)]
        checks += [("over_temperature", ch, t, TEMPERATURE_ALARM_C)
                   for ch, t in temperatures.items()]
        for event, channel, value, limit in checks:
            key = f"{event}:{channel}"
            if value >= limit and key not in state.alarmed:
                state.alarmed.add(key)
                messages.append(self._event(device, at, event, channel=channel,
                                            value=round(value, 1)))
            elif value < limit and key in state.alarmed:
                state.alarmed.discard(key)
                messages.append(self._event(device, at, "alarm_clear", channel=channel,
                                            value=round(value, 1)))
        return messages

    # --- one-off scenario events -----------------------------------------------------------
    def _scenario_events(self) -> list[tuple[float, _Action]]:
        plan, t0 = self.plan, self.plan.onset_s
        events: list[tuple[float, _Action]] = []

        def at(when: float, device: SimDevice, event: str, effect: Callable[[], None] | None = None,
               **fields: object) -> None:
            def action(moment: float) -> list[SimMessage]:
                if plan.is_offline(device.id, moment):
                    return []
                if effect is not None:
                    effect()
                return [self._event(device, moment, event, **fields)]
            events.append((when, action))

        if (d := plan.fire_smoke) is not None:
            smoke = self._states[d.id]
            assert isinstance(smoke, _SmokeState)
            at(t0, d, "smoke_alarm", lambda: setattr(smoke, "smoke", 0.35), smoke_db_per_m=0.35)
            at(t0 + 20, d, "silenced")
            at(t0 + 300, d, "smoke_clear", lambda: setattr(smoke, "smoke", 0.0))
        if (d := plan.fire_panel) is not None:
            room = self._states[d.id]
            assert isinstance(room, _RoomState)
            point = {"loop": 1, "address": 23, "zone": "3F 东侧走廊",
                     "description": "点型感烟探测器"}
            at(t0 + 5, d, "panel_fire", lambda: setattr(room, "panel", "fire"), point=point)
            at(t0 + 600, d, "panel_reset", lambda: setattr(room, "panel", "normal"),
               operator="值班员 张敏")
        if (d := plan.tamper) is not None:
            at(t0, d, "tamper")
            at(t0 + 600, d, "tamper_clear")
        if (d := plan.low_battery) is not None:
            weak = self._states[d.id]
            assert isinstance(weak, _SmokeState)
            at(t0, d, "low_battery", lambda: setattr(weak, "battery", 15.0), battery_pct=15.0)
        return events

    # --- duty checks --------------------------------------------------------------------------
    def answer_duty_check(self, device_id: str, payload: bytes, at: float) -> SimMessage | None:
        """The control room's answer to a duty check received at virtual time ``at``.

        The answer comes 2-30 virtual seconds later (someone walks to the panel).
        None when the device is not a control room of this fleet, the command is
        not a duty check, or the room ignores duty checks (``duty_lapse``).
        """
        device = self._devices.get(device_id)
        if device is None or device.kind is not DeviceKind.CONTROLROOM:
            return None
        if device is self.plan.ignores_duty_checks:
            return None
        try:
            command = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(command, dict) or command.get("cmd") != "duty_check" \
                or not isinstance(command.get("check_id"), str):
            return None
        answered_at = at + self._reply_rng.uniform(2.0, 30.0)
        return self._event(device, answered_at, "duty_check_ack", check_id=command["check_id"],
                           operator="值班员 " + device.installer)

    # --- garbage ------------------------------------------------------------------------------
    def _garbage_source(self, schedule: Callable[[float, _Action], None]) -> _Action:
        counter = 0

        def emit(at: float) -> list[SimMessage]:
            nonlocal counter
            reason = GARBAGE_REASONS[counter % len(GARBAGE_REASONS)]
            variant = counter // len(GARBAGE_REASONS)
            counter += 1
            schedule(at + self.config.garbage_interval_s, emit)
            return [self._garbage(reason, variant, at)]
        return emit

    def _garbage(self, reason: Reason, variant: int, at: float) -> SimMessage:
        device = self.fleet.devices[variant % len(self.fleet.devices)]
        prefix = self.config.prefix
        topic = topic_for(prefix, device.kind, device.id, Channel.TELEMETRY)
        good = self._good_example(device.kind)
        payload: bytes
        if reason is Reason.BAD_TOPIC:
            # Only topics an ingest subscription ({prefix}/+/+/telemetry) still receives.
            topic = (
                f"{prefix}/toaster/{device.id}/telemetry",
                f"{prefix}/{device.kind}/bad id!/telemetry",
                f"{prefix}/{device.kind}/{'9' * 65}/telemetry",
            )[variant % 3]
            payload = _dumps(good)
        elif reason is Reason.TOO_LARGE:
            payload = _dumps({**good, "padding": "x" * self.config.max_payload_bytes})
        elif reason is Reason.INVALID_JSON:
            payload = (b'{"battery_pct": 80, "rsrp_dbm": -9', b"not json", b"")[variant % 3]
        elif reason is Reason.INVALID_UTF8:
            payload = b'{"note": "\xff\xfe\xc3\x28"}'
        elif reason is Reason.SCHEMA:
            first = next(iter(good))
            payload = _dumps(({**good, first: "high"}, [good], {"unexpected": True})[variant % 3])
        else:  # clock skew: a telemetry timestamp 30 days old
            payload = _dumps({**good, "ts": self._ts_ms(at) - 30 * 86_400_000})
        return SimMessage(at, topic, payload, device.id, expect=reason)

    @staticmethod
    def _good_example(kind: DeviceKind) -> dict[str, object]:
        if kind is DeviceKind.SMOKE:
            return {"battery_pct": 80, "rsrp_dbm": -90}
        if kind is DeviceKind.ELECTRICAL:
            return {"residual_current_ma": 120.0}
        return {"panel_state": "normal", "main_power_ok": True, "backup_power_ok": True,
                "operators_on_duty": 2}

    # --- helpers --------------------------------------------------------------------------------
    def _initial_state(self, device: SimDevice) -> _State:
        rng = self._rng
        if device.kind is DeviceKind.SMOKE:
            return _SmokeState(battery=rng.uniform(60, 100), drain_per_day=rng.uniform(0.05, 0.1),
                               rsrp=rng.uniform(-110, -70), sinr=rng.uniform(0, 20),
                               temperature=rng.uniform(18, 28))
        if device.kind is DeviceKind.ELECTRICAL:
            return _ElectricalState(residual=rng.uniform(40, 180), rated_a=rng.uniform(20, 100),
                                    temperatures={ch: rng.uniform(22, 35) for ch in "1234"})
        return _RoomState(operators=rng.choice((2, 2, 3)))

    def _ts_ms(self, at: float) -> int:
        return self.config.start_ms + round(at * 1000 / self.config.speed)

    def _send(self, device: SimDevice, channel: Channel, at: float,
              fields: dict[str, object]) -> SimMessage:
        self._seq[device.id] += 1
        ts_ms = self._ts_ms(at)
        ts: int | str = ts_ms
        if device.kind is DeviceKind.CONTROLROOM:  # transmission devices send local RFC 3339 time
            ts = datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(CHINA_TZ) \
                .isoformat(timespec="milliseconds")
        body = {"ts": ts, "seq": self._seq[device.id], **fields}
        return SimMessage(at, topic_for(self.config.prefix, device.kind, device.id, channel),
                          _dumps(body), device.id)

    def _event(self, device: SimDevice, at: float, event: str, **fields: object) -> SimMessage:
        extra = {k: v for k, v in fields.items() if v is not None}
        return self._send(device, Channel.EVENT, at, {"event": event, **extra})


def _daily_load(epoch_s: float) -> float:
    """Share of rated current drawn at this local (UTC+8) time of day: low at night."""
    hour = ((epoch_s / 3600) + 8) % 24
    return 0.25 + 0.55 * max(0.0, math.sin(math.pi * (hour - 6) / 16)) if 6 <= hour <= 22 \
        else 0.25


def _dumps(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
