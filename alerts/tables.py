"""Alert tables: alerts and their history, rule progress, duty checks, webhooks.

The database, not process memory, enforces "at most one open alert per device,
type and subject": a partial unique index over the unresolved rows, which two
ingest workers sharing PostgreSQL both run into.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from firewarden.database import Base, UtcDateTime, utcnow

ID = String(64)
SERIAL = BigInteger().with_variant(Integer, "sqlite")
UNRESOLVED = text("status != 'resolved'")


class AlertRow(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ID)
    """No foreign key: an unregistered device's fire alarm is an alert too."""
    type: Mapped[str] = mapped_column(String(40), index=True)
    subject: Mapped[str] = mapped_column(String(40), default="")
    """Which part of the device: a temperature channel, ``staffing``, ``duty_check``."""
    category: Mapped[str] = mapped_column(String(20), index=True)
    severity: Mapped[str] = mapped_column(String(10), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    site_id: Mapped[str | None] = mapped_column(ID, index=True)
    jurisdiction: Mapped[str] = mapped_column(String(100), default="", index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
    """Raised while the device was in maintenance: recorded, never paged."""
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    count: Mapped[int] = mapped_column(Integer, default=1)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    outcome: Mapped[str | None] = mapped_column(String(20))
    auto_resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    escalation: Mapped[int] = mapped_column(Integer, default=0)
    next_reminder_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("uq_alerts_open", "device_id", "type", "subject", unique=True,
              sqlite_where=UNRESOLVED, postgresql_where=UNRESOLVED),
        Index("ix_alerts_device_type", "device_id", "type", "subject", "resolved_at"),
    )


class AlertEventRow(Base):
    """One change of one alert (who, when, what, note); ids order the live stream."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"),
                                          index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    action: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(100), default="system")
    note: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RuleStateRow(Base):
    """Progress of a rule for one device (a duration under way, a hysteresis band)."""

    __tablename__ = "rule_states"

    device_id: Mapped[str] = mapped_column(ID, primary_key=True)
    rule: Mapped[str] = mapped_column(String(60), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class DutyCheckRow(Base):
    """One duty check (查岗) sent to one control room."""

    __tablename__ = "duty_checks"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    """The ``check_id`` sent to the device and echoed in its ``duty_check_ack``."""
    batch_id: Mapped[str] = mapped_column(ID, index=True)
    """All checks started by one request share it."""
    device_id: Mapped[str] = mapped_column(ID, index=True)
    site_id: Mapped[str] = mapped_column(ID, index=True)
    jurisdiction: Mapped[str] = mapped_column(String(100), index=True)
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    deadline_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    """pending, answered, missed."""
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    operator: Mapped[str | None] = mapped_column(String(200))


class WebhookRow(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(200))
    """Signs each delivery (HMAC-SHA256); kept because the receiver checks with it."""
    types: Mapped[list[str]] = mapped_column(JSON, default=list)
    severities: Mapped[list[str]] = mapped_column(JSON, default=list)
    jurisdictions: Mapped[list[str]] = mapped_column(JSON, default=list)
    changes: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Empty lists match everything."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WebhookDeliveryRow(Base):
    """One alert change to send to one webhook, written with the change itself."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"),
                                            index=True)
    event_id: Mapped[int] = mapped_column(BigInteger)
    alert_id: Mapped[int] = mapped_column(BigInteger)
    change: Mapped[str] = mapped_column(String(30))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)
    """pending, delivered, failed (gave up)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    response_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
