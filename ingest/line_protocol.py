"""Points -> InfluxDB line protocol (docs/storage.md), injection-proof.

Whatever a device id, site id, jurisdiction or event string contains (spaces,
commas, ``=``, quotes, backslashes, newlines), it can only ever be the value it
is: never an extra tag, field, point or measurement.  Tag values and keys have
``,``, ``=`` and space escaped; line breaks become (escaped) spaces and
backslashes ``/`` (line protocol has no escape for a line break, and InfluxDB
1.x refuses a tag value ending in a backslash however it is escaped).  String
fields have ``\\`` and ``"`` escaped and keep every character.  Tags carry only
registry values of low cardinality; payload strings are fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from ingest.points import FieldValue, Point

_TAG_ESCAPES = str.maketrans({"\\": "/", ",": "\\,", "=": "\\=", " ": "\\ ",
                              "\n": "\\ ", "\r": "\\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


def escape_tag(value: str) -> str:
    """A tag key or value (also a field key or measurement name)."""
    return value.translate(_TAG_ESCAPES)


def escape_string(value: str) -> str:
    """The inside of a string field's double quotes."""
    return value.translate(_STRING_ESCAPES)


@lru_cache(maxsize=1024)
def _field_key(key: str) -> str:
    return escape_tag(key)


def format_field(key: str, value: FieldValue) -> str:
    if value is True or value is False:
        return f"{_field_key(key)}={'true' if value else 'false'}"
    if isinstance(value, int):
        return f"{_field_key(key)}={value}i"
    if isinstance(value, float):
        return f"{_field_key(key)}={value!r}"
    return f'{_field_key(key)}="{escape_string(value)}"'


@lru_cache(maxsize=1 << 18)
def _series_key(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    """Measurement and tags, escaped: the same for every point of a device, so cached."""
    escaped = "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags) if v)
    return escape_tag(measurement) + escaped


def encode_point(point: Point) -> str:
    """One line; tags with empty values are left out (line protocol cannot hold them)."""
    if not point.fields:
        raise ValueError("a point needs at least one field")
    fields = []
    for key, value in point.fields.items():  # format_field inlined for the common types
        kind = type(value)
        if kind is float:
            fields.append(f"{_field_key(key)}={value!r}")
        elif kind is int:
            fields.append(f"{_field_key(key)}={value}i")
        else:
            fields.append(format_field(key, value))
    return (f"{_series_key(point.measurement, tuple(point.tags.items()))} {','.join(fields)} "
            f"{point.ts_ms}")


def encode_batch(points: Iterable[Point]) -> bytes:
    return "\n".join(encode_point(p) for p in points).encode()
