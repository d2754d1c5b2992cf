"""Readings -> InfluxDB line protocol (docs/storage.md), injection-proof.

Whatever a device id, site id, jurisdiction or event string contains (spaces,
commas, ``=``, quotes, backslashes, newlines), it can only ever be the value it
is: never an extra tag, field, point or measurement.  Tag values and keys have
``,``, ``=`` and space escaped; line breaks become spaces and backslashes ``/``
(line protocol has no escape for a line break, and InfluxDB 1.x refuses a tag
value ending in a backslash however it is escaped).  String fields have ``\\``
and ``"`` escaped and keep every character.  Tags carry only registry values of low cardinality; payload strings
are fields.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from devices import Channel, DeviceKind, Reading
from devices.messages import (
    ControlRoomEvent,
    ControlRoomTelemetry,
    ElectricalEvent,
    ElectricalTelemetry,
    SmokeEvent,
    SmokeTelemetry,
)
from devices.registry.cache import DeviceInfo

EVENTS = "events"
MEASUREMENTS = {DeviceKind.SMOKE: "smoke", DeviceKind.ELECTRICAL: "electrical",
                DeviceKind.CONTROLROOM: "controlroom"}

_TAG_ESCAPES = str.maketrans({"\\": "/", ",": "\\,", "=": "\\=", " ": "\\ ",
                              "\n": "\\ ", "\r": "\\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


def escape_tag(value: str) -> str:
    """A tag key or value (also a field key)."""
    return value.translate(_TAG_ESCAPES)


def escape_string(value: str) -> str:
    """The inside of a string field's double quotes."""
    return value.translate(_STRING_ESCAPES)


FieldValue = float | int | bool | str


def format_field(key: str, value: FieldValue) -> str:
    if value is True or value is False:
        return f"{escape_tag(key)}={'true' if value else 'false'}"
    if isinstance(value, int):
        return f"{escape_tag(key)}={value}i"
    if isinstance(value, float):
        return f"{escape_tag(key)}={value!r}"
    return f'{escape_tag(key)}="{escape_string(value)}"'


def encode_point(measurement: str, tags: dict[str, str], fields: dict[str, FieldValue],
                 ts_ms: int) -> str:
    """One line; tags with empty values are left out (line protocol cannot hold them)."""
    if not fields:
        raise ValueError("a point needs at least one field")
    tag_part = "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags.items()) if v)
    field_part = ",".join(format_field(k, v) for k, v in fields.items())
    return f"{escape_tag(measurement)}{tag_part} {field_part} {ts_ms}"


def reading_fields(reading: Reading) -> dict[str, FieldValue]:
    """The typed fields of a reading: numbers stay numbers, integers stay integers."""
    body = reading.body
    fields: dict[str, FieldValue] = {}
    if isinstance(body, ElectricalTelemetry):
        fields["residual_current_ma"] = float(body.residual_current_ma)
        for name, channels in (("temperature_c", body.temperature_c),
                               ("current_a", body.current_a), ("voltage_v", body.voltage_v)):
            for channel, value in channels.items():
                fields[f"{name}_{channel}"] = float(value)
        for name in ("power_kw", "energy_kwh"):
            value = getattr(body, name)
            if value is not None:
                fields[name] = float(value)
    elif isinstance(body, SmokeTelemetry | ControlRoomTelemetry | SmokeEvent | ElectricalEvent
                    | ControlRoomEvent):
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


def device_tags(device: DeviceInfo) -> dict[str, str]:
    return {"device_id": device.id, "site_id": device.site_id,
            "jurisdiction": device.jurisdiction, "kind": device.kind.value}


def encode_reading(reading: Reading, device: DeviceInfo) -> str:
    tags = device_tags(device)
    if reading.channel is Channel.EVENT:
        tags["event"] = reading.body.event  # type: ignore[union-attr]  # a fixed vocabulary
        return encode_point(EVENTS, tags, reading_fields(reading), reading.ts_ms)
    return encode_point(MEASUREMENTS[reading.kind], tags, reading_fields(reading), reading.ts_ms)


def encode_batch(lines: Iterable[str]) -> bytes:
    return "\n".join(lines).encode()
