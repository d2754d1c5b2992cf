"""API and notification shapes of alerts, their history and duty checks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from alerts.catalog import Outcome


class AlertPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: str
    type: str
    subject: str
    category: str
    severity: str
    kind: str
    site_id: str | None
    jurisdiction: str
    status: str
    suppressed: bool
    opened_at: datetime
    last_seen_at: datetime
    count: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    outcome: str | None
    auto_resolved: bool
    reopened: int
    reminders: int
    escalation: int
    details: dict[str, Any]


class AlertEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    alert_id: int
    at: datetime
    action: str
    actor: str
    note: str
    details: dict[str, Any]


class AlertDetail(AlertPublic):
    history: list[AlertEventPublic]


class AlertsPublic(BaseModel):
    data: list[AlertPublic]
    count: int


class AlertChange(BaseModel):
    """One change of one alert, as announced live and sent to webhooks."""

    id: int
    """The history row's id: increasing, so a stream can resume after it."""
    action: str
    at: datetime
    actor: str
    note: str
    alert: AlertPublic


class AcknowledgeRequest(BaseModel):
    note: str = Field("", max_length=2000)


class ResolveRequest(BaseModel):
    outcome: Outcome | None = Field(
        None, description="Required for fire alarms: real_fire, false_alarm or test.")
    note: str = Field("", max_length=2000)


class NoteRequest(BaseModel):
    note: str = Field(min_length=1, max_length=2000)


class BulkAcknowledgeRequest(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=1000)
    note: str = Field("", max_length=2000)


class BulkResult(BaseModel):
    acknowledged: list[int]
    skipped: dict[int, str]
    """Alert id -> why it was not acknowledged (not found, already acknowledged, resolved)."""
