"""What kinds of alert exist: their category, severity, and how each may be closed.

The alert ``type`` is what deduplication keys on (with the device and a
``subject`` such as a temperature channel); the ``category`` is the class the
monitoring centre reports on (火警, 隐患, 故障, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Category(StrEnum):
    FIRE = "fire"
    HAZARD = "hazard"
    FAULT = "fault"
    POWER = "power"
    TAMPER = "tamper"
    LOW_BATTERY = "low_battery"
    OFFLINE = "offline"
    DUTY_LAPSE = "duty_lapse"
    TEST = "test"


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    INFO = "info"


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Outcome(StrEnum):
    """How a fire alarm ended (the false-alarm rate per site is built from these)."""

    REAL_FIRE = "real_fire"
    FALSE_ALARM = "false_alarm"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class AlertType:
    name: str
    category: Category
    severity: Severity
    auto_resolves: bool = True
    """False for fire alarms: only an operator closes them, with an outcome."""

    @property
    def needs_outcome(self) -> bool:
        return self.category is Category.FIRE


_TYPES = [
    AlertType("fire", Category.FIRE, Severity.CRITICAL, auto_resolves=False),
    AlertType("unregistered_device_alarm", Category.FIRE, Severity.CRITICAL,
              auto_resolves=False),
    AlertType("residual_current", Category.HAZARD, Severity.MAJOR),
    AlertType("over_temperature", Category.HAZARD, Severity.MAJOR),
    AlertType("over_current", Category.HAZARD, Severity.MAJOR),
    AlertType("over_voltage", Category.HAZARD, Severity.MAJOR),
    AlertType("under_voltage", Category.HAZARD, Severity.MINOR),
    AlertType("arc_fault", Category.HAZARD, Severity.CRITICAL),
    AlertType("short_circuit", Category.HAZARD, Severity.CRITICAL),
    AlertType("power_loss", Category.POWER, Severity.MAJOR),
    AlertType("main_power_fault", Category.POWER, Severity.MAJOR),
    AlertType("backup_power_fault", Category.POWER, Severity.MINOR),
    AlertType("fault", Category.FAULT, Severity.MINOR),
    AlertType("panel_fault", Category.FAULT, Severity.MAJOR),
    AlertType("tamper", Category.TAMPER, Severity.MAJOR),
    AlertType("low_battery", Category.LOW_BATTERY, Severity.MINOR),
    AlertType("offline", Category.OFFLINE, Severity.MINOR),
    AlertType("duty_lapse", Category.DUTY_LAPSE, Severity.MAJOR),
    AlertType("self_test", Category.TEST, Severity.INFO),
]

ALERT_TYPES: dict[str, AlertType] = {t.name: t for t in _TYPES}

DEVICE_ALARMS = frozenset({"residual_current_alarm", "over_temperature", "over_current",
                           "over_voltage", "under_voltage", "arc_fault", "short_circuit"})
"""Alarms an electrical monitor reports itself; ``alarm_clear`` clears them."""

ALARM_EVENTS = frozenset({"smoke_alarm", "panel_fire", "manual_alarm"})
"""Events that mean a possible fire: raised even from an unregistered device."""


def alert_type(name: str) -> AlertType:
    return ALERT_TYPES[name]
