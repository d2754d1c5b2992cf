"""A point: one row of telemetry, whatever store it goes to.

Points are what the writer batches, spools and hands to a sink; each sink
encodes them its own way (line protocol for InfluxDB, rows for SQL).  Two points
with the same measurement, tags and timestamp are the same point: stores keep
the last one, which is what makes a redelivered message harmless.
"""

from __future__ import annotations

import msgspec

from devices import Channel, DeviceKind, Reading
from devices.messages import ElectricalTelemetry
from devices.registry.cache import DeviceInfo

EVENTS = "events"
MEASUREMENTS = {DeviceKind.SMOKE: "smoke", DeviceKind.ELECTRICAL: "electrical",
                DeviceKind.CONTROLROOM: "controlroom"}

FieldValue = float | int | bool | str


class Point(msgspec.Struct, frozen=True, gc=False, array_like=True):
    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    ts_ms: int

    @property
    def device_id(self) -> str:
        return self.tags.get("device_id", "")


def reading_fields(reading: Reading) -> dict[str, FieldValue]:
    """The typed fields of a reading: numbers stay numbers, integers stay integers."""
    body = reading.body
    fields: dict[str, FieldValue] = {}
    if isinstance(body, ElectricalTelemetry):
        fields["residual_current_ma"] = body.residual_current_ma
        for name, channels in (("temperature_c", body.temperature_c),
                               ("current_a", body.current_a), ("voltage_v", body.voltage_v)):
            for channel, value in channels.items():
                fields[f"{name}_{channel}"] = value
        if body.power_kw is not None:
            fields["power_kw"] = body.power_kw
        if body.energy_kwh is not None:
            fields["energy_kwh"] = body.energy_kwh
    else:
        for name, value in msgspec.structs.asdict(body).items():
            if value is None or name in ("ts", "seq", "event"):
                continue
            if name == "point":
                for part, inner in msgspec.structs.asdict(value).items():
                    if inner is not None:
                        fields[f"point_{part}"] = inner
            else:
                fields[name] = value  # msgspec already made declared floats floats
    if reading.seq is not None:
        fields["seq"] = reading.seq
    if reading.channel is Channel.EVENT:
        fields["clock_corrected"] = reading.clock_corrected
    return fields


def point_for(reading: Reading, device: DeviceInfo) -> Point:
    tags = {"device_id": device.id, "site_id": device.site_id,
            "jurisdiction": device.jurisdiction, "kind": device.kind.value}
    if reading.channel is Channel.EVENT:
        tags["event"] = reading.body.event  # type: ignore[union-attr]  # a fixed vocabulary
        return Point(EVENTS, tags, reading_fields(reading), reading.ts_ms)
    return Point(MEASUREMENTS[reading.kind], tags, reading_fields(reading), reading.ts_ms)
