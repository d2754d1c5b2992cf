"""What the rules decide, as data: the alert store applies these in one transaction.

Rules run on the ingest thread and only return actions; everything that
touches the database happens later, in :mod:`alerts.recorder`.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Raise(msgspec.Struct, frozen=True, kw_only=True):
    """Open an alert, or count a repeat on the open one (same device, type, subject)."""

    device_id: str
    type: str
    at_ms: int
    subject: str = ""
    details: dict[str, Any] = {}
    kind: str = ""
    site_id: str | None = None
    jurisdiction: str = ""
    suppressed: bool = False
    """The device is in maintenance: recorded, never paged or pushed live."""


class Clear(msgspec.Struct, frozen=True, kw_only=True):
    """The device reports the condition gone: auto-resolve the open alerts of these types."""

    device_id: str
    types: tuple[str, ...]
    at_ms: int
    subject: str | None = ""
    """None clears every subject (a device's ``alarm_clear`` without a channel)."""
    reason: str = ""


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """Note something on the open alert of a type (``smoke_clear`` on a fire alarm)."""

    device_id: str
    type: str
    action: str
    at_ms: int
    subject: str = ""
    details: dict[str, Any] = {}


class SaveState(msgspec.Struct, frozen=True, kw_only=True):
    """Persist a rule's progress for one device (None forgets it)."""

    device_id: str
    rule: str
    state: dict[str, Any] | None


class AnswerDutyCheck(msgspec.Struct, frozen=True, kw_only=True):
    device_id: str
    check_id: str
    at_ms: int
    operator: str | None = None


Action = Raise | Clear | Record | SaveState | AnswerDutyCheck
