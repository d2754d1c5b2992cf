"""Ingest's tables: telemetry kept in SQL when no InfluxDB is configured, and the
dead-letter store of rejected messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from firewarden.database import Base, UtcDateTime


class TelemetryPointRow(Base):
    """One point; the primary key makes a redelivered message overwrite itself."""

    __tablename__ = "telemetry_points"

    measurement: Mapped[str] = mapped_column(String(20), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event: Mapped[str] = mapped_column(String(40), primary_key=True, default="")
    site_id: Mapped[str] = mapped_column(String(64), default="")
    jurisdiction: Mapped[str] = mapped_column(String(100), default="")
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)


class RejectedMessageRow(Base):
    """A message (or a point the store refused) kept for inspection; bounded in size."""

    __tablename__ = "rejected_messages"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    reason: Mapped[str] = mapped_column(String(40), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    topic: Mapped[str] = mapped_column(String(300), default="")
    kind: Mapped[str | None] = mapped_column(String(40))
    device_id: Mapped[str | None] = mapped_column(String(300))
    payload: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
