"""Device kinds, the message contract and (later) the device registry."""

from devices.decode import (
    DECODE_REASONS,
    KEPT_PAYLOAD_BYTES,
    MessageDecoder,
    Reading,
    Reason,
    Rejection,
)
from devices.kinds import Channel, DeviceKind, is_valid_device_id, topic_for, uplink_filters

__all__ = [
    "DECODE_REASONS",
    "KEPT_PAYLOAD_BYTES",
    "Channel",
    "DeviceKind",
    "MessageDecoder",
    "Reading",
    "Reason",
    "Rejection",
    "is_valid_device_id",
    "topic_for",
    "uplink_filters",
]
