"""Readings and devices for rule tests, built through the real decoder."""

from __future__ import annotations

import json
from typing import Any

from devices import DeviceKind, MessageDecoder, Reading
from devices.profiles import effective_profile
from devices.registry.cache import DeviceInfo

NOW_MS = 1_790_000_000_000
DECODER = MessageDecoder("fw")


def device(kind: DeviceKind, device_id: str = "dev-1", *, state: str = "active",
           maintenance_until_ms: int = 0, min_operators: int = 2,
           **overrides: Any) -> DeviceInfo:
    return DeviceInfo(device_id, kind, "site-1", "Xihu", state, maintenance_until_ms,
                      effective_profile(kind, None, overrides or None), min_operators)


def reading(info: DeviceInfo, channel: str, at_ms: int, **body: Any) -> Reading:
    topic = f"fw/{info.kind}/{info.id}/{channel}"
    result = DECODER.decode(topic, json.dumps({"ts": at_ms, **body}).encode(), at_ms)
    assert isinstance(result, Reading), result
    return result
