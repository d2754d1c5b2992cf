"""Topic + bytes -> a typed :class:`Reading`, or a :class:`Rejection` with a reason code.

This is the boundary of the system: everything after it passes typed objects.
It returns rejections instead of raising them because it runs once per message
on the ingest hot path and most callers only count and dead-letter them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec

from devices.kinds import DEVICE_ID_RE, Channel, DeviceKind
from devices.messages import (
    Body,
    ControlRoomEvent,
    ControlRoomTelemetry,
    ElectricalEvent,
    ElectricalTelemetry,
    SmokeEvent,
    SmokeTelemetry,
)

KEPT_PAYLOAD_BYTES = 1024
"""How much of a rejected payload is kept for inspection."""


class Reason(StrEnum):
    """Stable reason codes for rejected messages (metrics labels and dead letters)."""

    BAD_TOPIC = "bad_topic"
    TOO_LARGE = "too_large"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    SCHEMA = "schema"
    CLOCK_SKEW = "clock_skew"
    # After decoding, against the registry:
    UNREGISTERED = "unregistered"
    """The device id is not registered (the message is kept on the pending list)."""
    KIND_MISMATCH = "kind_mismatch"
    """The device is registered as another kind than its topic says."""


DECODE_REASONS = tuple(r for r in Reason if r not in (Reason.UNREGISTERED, Reason.KIND_MISMATCH))
"""The reasons :class:`MessageDecoder` itself can give."""


class Reading(msgspec.Struct, frozen=True, gc=False):
    """A validated uplink message."""

    kind: DeviceKind
    device_id: str
    channel: Channel
    body: Body
    ts_ms: int
    """When it happened, epoch ms: the device's ``ts``, or the receive time."""
    received_ms: int
    seq: int | None = None
    clock_corrected: bool = False
    """True when the device's ``ts`` was untrusted and replaced by the receive time."""


class Rejection(msgspec.Struct, frozen=True, gc=False):
    """A message that was not accepted, with what is kept of it for inspection."""

    reason: Reason
    detail: str
    topic: str
    received_ms: int
    payload: bytes
    """The first :data:`KEPT_PAYLOAD_BYTES` of the payload."""
    kind: str | None = None
    device_id: str | None = None


_MODELS: dict[tuple[DeviceKind, Channel], type[Body]] = {
    (DeviceKind.SMOKE, Channel.TELEMETRY): SmokeTelemetry,
    (DeviceKind.SMOKE, Channel.EVENT): SmokeEvent,
    (DeviceKind.ELECTRICAL, Channel.TELEMETRY): ElectricalTelemetry,
    (DeviceKind.ELECTRICAL, Channel.EVENT): ElectricalEvent,
    (DeviceKind.CONTROLROOM, Channel.TELEMETRY): ControlRoomTelemetry,
    (DeviceKind.CONTROLROOM, Channel.EVENT): ControlRoomEvent,
}
# Keyed by the topic's own strings, so the hot path touches no enum machinery.
_ROUTES: dict[tuple[str, str], tuple[DeviceKind, Channel, msgspec.json.Decoder[Body]]] = {
    (kind.value, channel.value): (kind, channel, msgspec.json.Decoder(model))
    for (kind, channel), model in _MODELS.items()
}
_TELEMETRY = Channel.TELEMETRY
_BAD_TOPIC_DETAIL = "topic is not {prefix}/{kind}/{device_id}/{telemetry|event}"


class MessageDecoder:
    """Decodes uplink messages under one topic prefix and one set of limits.

    Timestamps more than ``max_ahead_s`` in the future or older than
    ``max_age_s`` are not trusted.  Telemetry with such a timestamp is rejected
    (``clock_skew``): stored at a wrong time it would corrupt the series.  An
    event with one is accepted at its receive time and marked
    ``clock_corrected``: a fire alarm must never be lost to a wrong device clock.
    """

    def __init__(
        self,
        prefix: str = "fw",
        *,
        max_payload_bytes: int = 8192,
        max_ahead_s: int = 300,
        max_age_s: int = 7 * 86_400,
    ) -> None:
        self.prefix = prefix
        self._prefix_slash = prefix + "/"
        self.max_payload_bytes = max_payload_bytes
        self.max_ahead_ms = max_ahead_s * 1000
        self.max_age_ms = max_age_s * 1000

    def decode(self, topic: str, payload: bytes, received_ms: int) -> Reading | Rejection:
        parts = topic[len(self._prefix_slash):].split("/") \
            if topic.startswith(self._prefix_slash) else []
        route = _ROUTES.get((parts[0], parts[2])) if len(parts) == 3 else None
        if route is None or DEVICE_ID_RE.fullmatch(parts[1]) is None:
            return _reject(Reason.BAD_TOPIC, _BAD_TOPIC_DETAIL, topic, payload, received_ms,
                           parts)
        kind, channel, decoder = route
        if len(payload) > self.max_payload_bytes:
            return _reject(Reason.TOO_LARGE, f"{len(payload)} bytes > {self.max_payload_bytes}",
                           topic, payload, received_ms, parts)
        if not payload.isascii():  # msgspec skips unknown fields without checking their UTF-8
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError as error:
                return _reject(Reason.INVALID_UTF8, str(error), topic, payload, received_ms,
                               parts)
        try:
            body = decoder.decode(payload)
        except msgspec.ValidationError as error:
            return _reject(Reason.SCHEMA, str(error), topic, payload, received_ms, parts)
        except msgspec.DecodeError as error:
            return _reject(Reason.INVALID_JSON, str(error), topic, payload, received_ms, parts)

        problem = _check_semantics(body)
        if problem is not None:
            return _reject(Reason.SCHEMA, problem, topic, payload, received_ms, parts)

        ts = body.ts
        if ts is None:
            ts_ms = received_ms
        elif isinstance(ts, int):
            ts_ms = ts
        else:
            parsed = _parse_rfc3339(ts)
            if parsed is None:
                return _reject(Reason.SCHEMA, "ts is not an RFC 3339 time - at `$.ts`", topic,
                               payload, received_ms, parts)
            ts_ms = parsed

        corrected = False
        if ts_ms > received_ms + self.max_ahead_ms or ts_ms < received_ms - self.max_age_ms:
            if channel is _TELEMETRY:
                return _reject(Reason.CLOCK_SKEW, f"ts {ts_ms} is {ts_ms - received_ms} ms from "
                               "receive time", topic, payload, received_ms, parts)
            ts_ms, corrected = received_ms, True

        if type(body) is SmokeTelemetry:
            body = _normalise_rsrp(body)
            if not -140 <= body.rsrp_dbm <= -44:
                return _reject(Reason.SCHEMA, "rsrp_dbm must be within -140..-44 dBm - at "
                               "`$.rsrp_dbm`", topic, payload, received_ms, parts)

        return Reading(kind, parts[1], channel, body, ts_ms, received_ms, body.seq, corrected)


def _reject(reason: Reason, detail: str, topic: str, payload: bytes, received_ms: int,
            parts: list[str]) -> Rejection:
    return Rejection(reason, detail, topic, received_ms, bytes(payload[:KEPT_PAYLOAD_BYTES]),
                     parts[0] if parts else None, parts[1] if len(parts) > 1 else None)


def _check_semantics(body: Body) -> str | None:
    """Rules that span fields and so cannot be expressed in the struct types."""
    if type(body) is ControlRoomEvent and body.event == "duty_check_ack" and not body.check_id:
        return "check_id is required with duty_check_ack - at `$.check_id`"
    return None


def _normalise_rsrp(body: SmokeTelemetry) -> SmokeTelemetry:
    """Some carrier platforms send RSRP as a positive number; RSRP is always negative."""
    if body.rsrp_dbm > 0:
        return msgspec.structs.replace(body, rsrp_dbm=-body.rsrp_dbm)
    return body


def _parse_rfc3339(text: str) -> int | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None or "T" not in text.upper():
        return None  # RFC 3339 requires a date, a time and an offset
    return int(moment.timestamp() * 1000)
