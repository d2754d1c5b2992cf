"""Registry models at the API boundary: XCreate, XUpdate, XPublic, XsPublic."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from devices.kinds import DEVICE_ID_PATTERN, DeviceKind
from devices.profiles import Profile, ProfileOverride

Identifier = Annotated[str, Field(pattern=DEVICE_ID_PATTERN, examples=["861234567890123"])]
SiteCategory = Literal["key_unit", "small_venue", "residential", "other"]
DeviceState = Literal["active", "maintenance", "decommissioned"]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Text100 = Annotated[str, Field(max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- sites -------------------------------------------------------------------------------
class SiteFields(_Strict):
    name: Name
    address: Annotated[str, Field(max_length=300)] = ""
    category: SiteCategory = "other"
    jurisdiction: Annotated[str, Field(min_length=1, max_length=100)]
    """The police station (派出所) or grid (网格) that follows up."""
    contact_name: Text100 = ""
    contact_phone: Annotated[str, Field(max_length=40)] = ""
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    min_operators: Annotated[int, Field(ge=0, le=20)] = 2
    """People required on duty in the site's fire control room (GB 25506: 2)."""
    profiles: dict[DeviceKind, ProfileOverride] = {}
    """Profile overrides for this site's devices, per kind."""


class SiteCreate(SiteFields):
    id: Identifier


class SiteUpdate(_Strict):
    name: Name | None = None
    address: Annotated[str, Field(max_length=300)] | None = None
    category: SiteCategory | None = None
    jurisdiction: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    contact_name: Text100 | None = None
    contact_phone: Annotated[str, Field(max_length=40)] | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    min_operators: Annotated[int, Field(ge=0, le=20)] | None = None
    profiles: dict[DeviceKind, ProfileOverride] | None = None


class SitePublic(SiteFields):
    model_config = ConfigDict(extra="ignore")

    id: str
    device_count: int = 0
    created_at: datetime
    updated_at: datetime


class SitesPublic(BaseModel):
    data: list[SitePublic]
    count: int


# --- devices -------------------------------------------------------------------------------
class DeviceFields(_Strict):
    location: Annotated[str, Field(max_length=200)] = ""
    """Building / floor / room, free text."""
    vendor: Text100 = ""
    model: Text100 = ""
    install_date: date | None = None
    installer: Text100 = ""
    profile: ProfileOverride = ProfileOverride()


class DeviceCreate(DeviceFields):
    id: Identifier
    kind: DeviceKind
    site_id: Identifier


class DeviceUpdate(_Strict):
    site_id: Identifier | None = None
    """Set to move the device to another site."""
    location: Annotated[str, Field(max_length=200)] | None = None
    vendor: Text100 | None = None
    model: Text100 | None = None
    install_date: date | None = None
    installer: Text100 | None = None
    profile: ProfileOverride | None = None


class MaintenanceRequest(_Strict):
    until: datetime
    """When maintenance ends by itself (at most 30 days ahead)."""
    note: Annotated[str, Field(max_length=300)] = ""

    @field_validator("until")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must include a UTC offset, e.g. 2026-11-23T08:00:00+08:00")
        return value


class DeviceStatus(BaseModel):
    last_seen_at: datetime | None = None
    online: bool | None = None
    """None: never seen; otherwise seen within the profile's offline window."""
    battery_pct: float | None = None
    rsrp_dbm: float | None = None
    last_values: dict[str, Any] = {}


class DevicePublic(BaseModel):
    id: str
    kind: DeviceKind
    site_id: str
    site_name: str
    jurisdiction: str
    location: str
    vendor: str
    model: str
    install_date: date | None
    installer: str
    state: DeviceState
    maintenance_until: datetime | None
    profile: ProfileOverride
    effective_profile: Profile
    status: DeviceStatus
    created_at: datetime
    updated_at: datetime


class DevicesPublic(BaseModel):
    data: list[DevicePublic]
    count: int


# --- pending (unregistered) devices -----------------------------------------------------------
class PendingDevicePublic(BaseModel):
    device_id: str
    kind: str
    first_seen_at: datetime
    last_seen_at: datetime
    message_count: int
    last_topic: str
    last_payload: str


class PendingDevicesPublic(BaseModel):
    data: list[PendingDevicePublic]
    count: int


class PendingRegister(DeviceFields):
    """Adopt a pending device: its id and kind come from what it sent."""

    site_id: Identifier
