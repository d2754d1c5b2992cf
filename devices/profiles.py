"""Device profiles: what each device should report, and the thresholds its alerts use.

One default per kind (below), overridable per site (for one kind) and per
device.  Values outside sane ranges are refused with the field named, so a
typo cannot silence a fire monitor (e.g. residual current outside 20-1000 mA).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from devices.kinds import DeviceKind

ReportInterval = Annotated[int, Field(ge=10, le=7 * 86_400, description="seconds")]
MissedIntervals = Annotated[int, Field(ge=1, le=100)]
Grace = Annotated[int, Field(ge=0, le=86_400, description="seconds")]
ResidualCurrent = Annotated[float, Field(ge=20, le=1000, description="mA (GB 50116: 300-500)")]
ResidualHysteresis = Annotated[float, Field(ge=0, le=200, description="mA")]
CableTemperature = Annotated[float, Field(ge=45, le=140, description="°C")]
TemperatureHysteresis = Annotated[float, Field(ge=0, le=30, description="°C")]
LowBattery = Annotated[float, Field(ge=5, le=50, description="%")]
BatteryHysteresis = Annotated[float, Field(ge=0, le=20, description="%")]
MinDuration = Annotated[int, Field(ge=0, le=3600, description="seconds")]
DutyDeadline = Annotated[int, Field(ge=60, le=86_400, description="seconds")]


class Profile(BaseModel):
    """Effective settings of one device (defaults merged with its overrides)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    report_interval_s: ReportInterval
    missed_intervals: MissedIntervals
    grace_s: Grace = 0
    residual_current_ma: ResidualCurrent = 300.0
    residual_hysteresis_ma: ResidualHysteresis = 30.0
    cable_temperature_c: CableTemperature = 70.0
    temperature_hysteresis_c: TemperatureHysteresis = 5.0
    low_battery_pct: LowBattery = 20.0
    battery_hysteresis_pct: BatteryHysteresis = 5.0
    min_duration_s: MinDuration = 60
    understaffed_grace_s: Grace = 300
    duty_check_deadline_s: DutyDeadline = 600

    @property
    def offline_after_s(self) -> int:
        """Silence longer than this means offline."""
        return self.report_interval_s * self.missed_intervals + self.grace_s


class ProfileOverride(BaseModel):
    """Any subset of profile fields, each within the same sane range."""

    model_config = ConfigDict(extra="forbid")

    report_interval_s: ReportInterval | None = None
    missed_intervals: MissedIntervals | None = None
    grace_s: Grace | None = None
    residual_current_ma: ResidualCurrent | None = None
    residual_hysteresis_ma: ResidualHysteresis | None = None
    cable_temperature_c: CableTemperature | None = None
    temperature_hysteresis_c: TemperatureHysteresis | None = None
    low_battery_pct: LowBattery | None = None
    battery_hysteresis_pct: BatteryHysteresis | None = None
    min_duration_s: MinDuration | None = None
    understaffed_grace_s: Grace | None = None
    duty_check_deadline_s: DutyDeadline | None = None

    def values(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


DEFAULT_PROFILES: dict[DeviceKind, Profile] = {
    # NB-IoT detectors report daily: offline after one missed report plus an hour.
    DeviceKind.SMOKE: Profile(report_interval_s=86_400, missed_intervals=1, grace_s=3600),
    DeviceKind.ELECTRICAL: Profile(report_interval_s=60, missed_intervals=3),
    DeviceKind.CONTROLROOM: Profile(report_interval_s=60, missed_intervals=3),
}

_interned: dict[tuple[DeviceKind, str, str], Profile] = {}


def effective_profile(kind: DeviceKind, site_override: dict[str, Any] | None,
                      device_override: dict[str, Any] | None) -> Profile:
    """Default for the kind, then the site's override for that kind, then the device's.

    Results are interned: the many devices that share a profile share one object.
    """
    key = (kind, repr(sorted((site_override or {}).items())),
           repr(sorted((device_override or {}).items())))
    profile = _interned.get(key)
    if profile is None:
        merged = {**DEFAULT_PROFILES[kind].model_dump(), **(site_override or {}),
                  **(device_override or {})}
        profile = _interned.setdefault(key, Profile(**merged))
    return profile
