"""Registry tables: sites, devices, their live status, pending (unregistered) devices,
and the change log other processes follow to keep their lookup caches fresh."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from firewarden.database import Base, UtcDateTime, utcnow

ID = String(64)


class SiteRow(Base):
    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")
    category: Mapped[str] = mapped_column(String(20), index=True)
    jurisdiction: Mapped[str] = mapped_column(String(100), index=True)
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    min_operators: Mapped[int] = mapped_column(Integer, default=2)
    profiles: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Profile overrides per device kind: {"electrical": {"residual_current_ma": 400}}."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class DeviceRow(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    location: Mapped[str] = mapped_column(String(200), default="")
    vendor: Mapped[str] = mapped_column(String(100), default="")
    model: Mapped[str] = mapped_column(String(100), default="")
    install_date: Mapped[date | None] = mapped_column(Date)
    installer: Mapped[str] = mapped_column(String(100), default="")
    state: Mapped[str] = mapped_column(String(20), default="active", index=True)
    maintenance_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """This device's profile overrides."""
    offline_after_s: Mapped[int] = mapped_column(Integer)
    """Effective offline window (kept in step with the profile, for SQL filters)."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class DeviceStatusRow(Base):
    """What the device last said; written by ingest in batches."""

    __tablename__ = "device_status"

    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"),
                                           primary_key=True)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    offline_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    """last_seen_at + the device's offline window: online while now < offline_at."""
    battery_pct: Mapped[float | None] = mapped_column(Float)
    rsrp_dbm: Mapped[float | None] = mapped_column(Float)
    last_values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PendingDeviceRow(Base):
    """A device id that sends messages but is not registered."""

    __tablename__ = "pending_devices"

    device_id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    message_count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_topic: Mapped[str] = mapped_column(String(300), default="")
    last_payload: Mapped[str] = mapped_column(Text, default="")


class RegistryChangeRow(Base):
    """Append-only log of changed devices and sites; caches in every process follow it."""

    __tablename__ = "registry_changes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    device_id: Mapped[str | None] = mapped_column(ID)
    site_id: Mapped[str | None] = mapped_column(ID)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (Index("ix_registry_changes_changed_at", "changed_at"),)
