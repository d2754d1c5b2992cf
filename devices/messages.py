"""Payload models of the device message contract (docs/messages.md).

One frozen msgspec ``Struct`` per (kind, channel).  msgspec validates types
and ranges while it parses, which keeps decoding cheap on the ingest hot path;
unknown fields are ignored so newer firmware is never rejected for adding one.
Every number has finite bounds so that ``1e999`` (infinity) cannot slip in.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

# --- shared field types --------------------------------------------------------
Timestamp = int | Annotated[str, Meta(max_length=40)]
"""Epoch milliseconds (integer) or an RFC 3339 string."""
Seq = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Percent = Annotated[float, Meta(ge=0, le=100)]
Celsius = Annotated[float, Meta(ge=-60, le=400)]
NonNegative = Annotated[float, Meta(ge=0, le=1e9)]
Finite = Annotated[float, Meta(ge=-1e9, le=1e9)]
ChannelName = Literal["1", "2", "3", "4", "A", "B", "C", "N"]
"""A measuring channel of an electrical monitor: ``1``..``4`` or phase ``A``/``B``/``C``/``N``."""
ShortText = Annotated[str, Meta(max_length=200)]
CheckId = Annotated[str, Meta(min_length=1, max_length=64)]


class _Message(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    ts: Timestamp | None = None
    seq: Seq | None = None


# --- smoke detector ------------------------------------------------------------
SmokeEventName = Literal[
    "smoke_alarm", "smoke_clear", "tamper", "tamper_clear", "low_battery",
    "fault", "fault_clear", "self_test", "silenced",
]


class SmokeTelemetry(_Message, frozen=True, kw_only=True):
    battery_pct: Percent
    rsrp_dbm: Annotated[float, Meta(ge=-140, le=140)]
    """Checked against -140..-44 after sign normalisation (see decode)."""
    sinr_db: Annotated[float, Meta(ge=-30, le=60)] | None = None
    smoke_db_per_m: Annotated[float, Meta(ge=0, le=100)] | None = None
    temperature_c: Celsius | None = None


class SmokeEvent(_Message, frozen=True, kw_only=True):
    event: SmokeEventName
    smoke_db_per_m: Annotated[float, Meta(ge=0, le=100)] | None = None
    battery_pct: Percent | None = None


# --- electrical fire monitor ------------------------------------------------------
ElectricalEventName = Literal[
    "residual_current_alarm", "over_temperature", "over_current", "over_voltage",
    "under_voltage", "arc_fault", "short_circuit", "power_loss", "alarm_clear",
    "fault", "fault_clear",
]


class ElectricalTelemetry(_Message, frozen=True, kw_only=True):
    residual_current_ma: Annotated[float, Meta(ge=0, le=100_000)]
    temperature_c: dict[ChannelName, Celsius] = {}
    current_a: dict[ChannelName, NonNegative] = {}
    voltage_v: dict[ChannelName, Annotated[float, Meta(ge=0, le=100_000)]] = {}
    power_kw: NonNegative | None = None
    energy_kwh: NonNegative | None = None


class ElectricalEvent(_Message, frozen=True, kw_only=True):
    event: ElectricalEventName
    channel: ChannelName | None = None
    value: Finite | None = None


# --- fire control room -------------------------------------------------------------
PanelState = Literal["normal", "fire", "fault", "supervisory", "disabled"]
ControlRoomEventName = Literal[
    "panel_fire", "panel_fault", "panel_fault_clear", "panel_reset", "manual_alarm",
    "duty_check_ack", "operator_login", "operator_logout",
]


class PanelPoint(msgspec.Struct, frozen=True, kw_only=True):
    """Where on the fire alarm control panel an alarm came from."""

    loop: Annotated[int, Meta(ge=0, le=65535)] | None = None
    address: Annotated[int, Meta(ge=0, le=65535)] | None = None
    zone: ShortText | None = None
    description: ShortText | None = None


class ControlRoomTelemetry(_Message, frozen=True, kw_only=True):
    """The transmission device's heartbeat (every 60 s by default)."""

    panel_state: PanelState
    main_power_ok: bool
    backup_power_ok: bool
    operators_on_duty: Annotated[int, Meta(ge=0, le=1000)]


class ControlRoomEvent(_Message, frozen=True, kw_only=True):
    event: ControlRoomEventName
    point: PanelPoint | None = None
    operator: ShortText | None = None
    check_id: CheckId | None = None


class DutyCheckCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Downlink on ``{prefix}/controlroom/{id}/cmd``: the centre's duty check (查岗)."""

    cmd: Literal["duty_check"]
    check_id: CheckId
    ts: int
    deadline_s: Annotated[int, Meta(ge=1, le=86_400)] = 600


Telemetry = SmokeTelemetry | ElectricalTelemetry | ControlRoomTelemetry
Event = SmokeEvent | ElectricalEvent | ControlRoomEvent
Body = Telemetry | Event
