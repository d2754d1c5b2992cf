"""Device kinds, topic channels and the topic grammar of the message contract.

Topics are ``{prefix}/{kind}/{device_id}/{channel}`` (see docs/messages.md).
"""

from __future__ import annotations

import re
from enum import StrEnum


class DeviceKind(StrEnum):
    SMOKE = "smoke"
    """NB-IoT smoke detector (独立式感烟火灾探测报警器)."""
    ELECTRICAL = "electrical"
    """Smart-electricity / electrical fire monitor (电气火灾监控探测器)."""
    CONTROLROOM = "controlroom"
    """User information transmission device of a fire control room (消控室)."""


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    """Periodic readings, uplink; every one is also a sign of life."""
    EVENT = "event"
    """State changes, uplink, sent at once."""
    CMD = "cmd"
    """Commands to the device, downlink."""


DEVICE_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)



def is_valid_device_id(device_id: str) -> bool:
    return DEVICE_ID_RE.fullmatch(device_id) is not None


def topic_for(prefix: str, kind: DeviceKind | str, device_id: str, channel: Channel | str) -> str:
    return f"{prefix}/{kind}/{device_id}/{channel}"


def uplink_filters(prefix: str) -> list[str]:
    """The subscriptions an ingest worker needs (telemetry and event of every device)."""
    return [f"{prefix}/+/+/{Channel.TELEMETRY}", f"{prefix}/+/+/{Channel.EVENT}"]
