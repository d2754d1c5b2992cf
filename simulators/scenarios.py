"""Scenarios: which simulated devices misbehave, how, and from when.

A :class:`ScenarioPlan` is chosen once from the fleet and the seed; the
generator then asks it what each device should do at each moment.
Scenarios combine freely; each takes its own target devices where the fleet is
big enough and shares them where it is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from devices import DeviceKind
from simulators.fleet import Fleet, SimDevice


class Scenario(StrEnum):
    NORMAL = "normal"
    """Every device reports on its interval, nothing goes wrong."""
    FIRE = "fire"
    """A smoke detector alarms (and clears); a control-room panel reports fire (and resets)."""
    LEAKAGE = "leakage"
    """Residual current of an electrical monitor climbs past 300 mA."""
    OVERHEAT = "overheat"
    """A cable temperature climbs past 70 °C."""
    TAMPER = "tamper"
    """A smoke detector is removed from its base, then put back."""
    LOW_BATTERY = "low_battery"
    """A smoke detector's battery falls below 20 %."""
    OFFLINE = "offline"
    """About a tenth of each kind (at least one) falls silent."""
    DUTY_LAPSE = "duty_lapse"
    """A control room ignores duty checks; one (the same if only one) has a single operator."""
    FLAPPING = "flapping"
    """Residual current oscillating around the 300 mA threshold."""
    GARBAGE = "garbage"
    """Malformed messages of every reason code, in rotation."""
    FLOOD = "flood"
    """One device reports a thousand times faster than its interval."""


@dataclass(slots=True)
class ScenarioPlan:
    onset_s: float
    fire_smoke: SimDevice | None = None
    fire_panel: SimDevice | None = None
    leakage: SimDevice | None = None
    overheat: SimDevice | None = None
    flapping: SimDevice | None = None
    tamper: SimDevice | None = None
    low_battery: SimDevice | None = None
    flood: SimDevice | None = None
    ignores_duty_checks: SimDevice | None = None
    understaffed: SimDevice | None = None
    offline: frozenset[str] = field(default_factory=frozenset)
    garbage: bool = False

    @classmethod
    def choose(cls, fleet: Fleet, scenarios: frozenset[Scenario], onset_s: float) -> ScenarioPlan:
        plan = cls(onset_s=onset_s)
        smoke = fleet.of_kind(DeviceKind.SMOKE)
        electrical = fleet.of_kind(DeviceKind.ELECTRICAL)
        rooms = fleet.of_kind(DeviceKind.CONTROLROOM)

        def pick(devices: list[SimDevice], index: int) -> SimDevice | None:
            return devices[index % len(devices)] if devices else None

        if Scenario.FIRE in scenarios:
            plan.fire_smoke, plan.fire_panel = pick(smoke, 0), pick(rooms, 0)
        if Scenario.TAMPER in scenarios:
            plan.tamper = pick(smoke, 1)
        if Scenario.LOW_BATTERY in scenarios:
            plan.low_battery = pick(smoke, 2)
        if Scenario.LEAKAGE in scenarios:
            plan.leakage = pick(electrical, 0)
        if Scenario.OVERHEAT in scenarios:
            plan.overheat = pick(electrical, 1)
        if Scenario.FLAPPING in scenarios:
            plan.flapping = pick(electrical, 2)
        if Scenario.FLOOD in scenarios:
            plan.flood = pick(electrical, 3) or pick(smoke, 3) or pick(rooms, 3)
        if Scenario.DUTY_LAPSE in scenarios:
            plan.ignores_duty_checks = pick(rooms, -1)
            plan.understaffed = pick(rooms, -2)
        plan.garbage = Scenario.GARBAGE in scenarios
        if Scenario.OFFLINE in scenarios:
            plan.offline = frozenset(_offline_devices(plan, (smoke, electrical, rooms)))
        return plan

    def targets(self) -> set[str]:
        """Ids of devices that another scenario already uses."""
        chosen = (self.fire_smoke, self.fire_panel, self.leakage, self.overheat, self.flapping,
                  self.tamper, self.low_battery, self.flood, self.ignores_duty_checks,
                  self.understaffed)
        return {d.id for d in chosen if d is not None}

    def is_offline(self, device_id: str, at: float) -> bool:
        return at >= self.onset_s and device_id in self.offline


def _offline_devices(plan: ScenarioPlan, groups: tuple[list[SimDevice], ...]) -> list[str]:
    """The last tenth (at least one) of each kind, preferring devices no other scenario uses."""
    busy = plan.targets()
    chosen: list[str] = []
    for devices in groups:
        if not devices:
            continue
        count = max(1, len(devices) // 10)
        free = [d.id for d in reversed(devices) if d.id not in busy]
        chosen.extend((free or [devices[-1].id])[:count])
    return chosen
