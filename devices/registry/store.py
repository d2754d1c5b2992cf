"""Registry queries and changes.  Every change to a device or site also appends to
the change log, in the same transaction, so that every process's cache sees it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from devices.kinds import DeviceKind
from devices.profiles import ProfileOverride, effective_profile
from devices.registry.schemas import (
    DeviceCreate,
    DevicePublic,
    DeviceStatus,
    DeviceUpdate,
    PendingRegister,
    SiteCreate,
    SitePublic,
    SiteUpdate,
)
from devices.registry.tables import (
    DeviceRow,
    DeviceStatusRow,
    PendingDeviceRow,
    RegistryChangeRow,
    SiteRow,
)
from firewarden.database import utcnow

MAX_MAINTENANCE = timedelta(days=30)


class RegistryError(Exception):
    """Base of the registry's own errors; the API maps each to a status code."""


class NotFound(RegistryError):
    pass


class Conflict(RegistryError):
    pass


class InvalidReference(RegistryError):
    """A field refers to something that does not exist (e.g. an unknown site)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# --- change log ------------------------------------------------------------------------------
async def record_changes(session: AsyncSession, *, device_ids: Sequence[str] = (),
                         site_ids: Sequence[str] = ()) -> None:
    rows: list[dict[str, Any]] = [{"device_id": d, "site_id": None, "changed_at": utcnow()}
                                  for d in device_ids]
    rows += [{"device_id": None, "site_id": s, "changed_at": utcnow()} for s in site_ids]
    if rows:
        await session.execute(insert(RegistryChangeRow), rows)


# --- sites -------------------------------------------------------------------------
def _site_values(site: SiteCreate | SiteUpdate, *, partial: bool) -> dict[str, Any]:
    values = site.model_dump(exclude_unset=partial, exclude={"id"})
    if "profiles" in values and values["profiles"] is not None:
        values["profiles"] = {str(kind): override.values()
                              for kind, override in (site.profiles or {}).items()}
    return values


async def create_site(session: AsyncSession, site: SiteCreate) -> SiteRow:
    if await session.get(SiteRow, site.id) is not None:
        raise Conflict(f"site {site.id} already exists")
    row = SiteRow(id=site.id, **_site_values(site, partial=False))
    session.add(row)
    await session.flush()
    return row


async def get_site(session: AsyncSession, site_id: str) -> SiteRow:
    row = await session.get(SiteRow, site_id)
    if row is None:
        raise NotFound(f"no site {site_id}")
    return row


async def update_site(session: AsyncSession, site_id: str, update: SiteUpdate) -> SiteRow:
    row = await get_site(session, site_id)
    values = _site_values(update, partial=True)
    for key, value in values.items():
        if value is None and key not in ("latitude", "longitude"):
            continue
        setattr(row, key, value)
    if "profiles" in values:
        await _refresh_offline_windows(session, site_id=site_id)
    await record_changes(session, site_ids=[site_id])
    await session.flush()
    return row


async def count_devices(session: AsyncSession, site_id: str) -> int:
    return await session.scalar(select(func.count()).where(DeviceRow.site_id == site_id)) or 0


async def delete_site(session: AsyncSession, site_id: str) -> None:
    await get_site(session, site_id)
    devices = await count_devices(session, site_id)
    if devices:
        raise Conflict(f"site {site_id} still has {devices} device(s); move or remove them first")
    await session.execute(delete(SiteRow).where(SiteRow.id == site_id))
    await record_changes(session, site_ids=[site_id])


async def list_sites(session: AsyncSession, *, jurisdiction: str | None = None,
                     category: str | None = None, q: str | None = None, offset: int = 0,
                     limit: int = 100) -> tuple[list[SitePublic], int]:
    query = select(SiteRow)
    if jurisdiction:
        query = query.where(SiteRow.jurisdiction == jurisdiction)
    if category:
        query = query.where(SiteRow.category == category)
    if q:
        pattern = f"%{q}%"
        query = query.where(or_(SiteRow.id.ilike(pattern), SiteRow.name.ilike(pattern),
                                SiteRow.address.ilike(pattern)))
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = (await session.scalars(query.order_by(SiteRow.id).offset(offset).limit(limit))).all()
    counts = dict((await session.execute(
        select(DeviceRow.site_id, func.count()).where(DeviceRow.site_id.in_([r.id for r in rows]))
        .group_by(DeviceRow.site_id))).all())
    return [site_public(r, counts.get(r.id, 0)) for r in rows], total


def site_public(row: SiteRow, device_count: int = 0) -> SitePublic:
    return SitePublic.model_validate({**_columns(row), "device_count": device_count})


# --- devices -----------------------------------------------------------------------
def offline_window(kind: str, site: SiteRow, device_profile: dict[str, Any]) -> int:
    kind_ = DeviceKind(kind)
    return effective_profile(kind_, site.profiles.get(kind_.value), device_profile).offline_after_s


async def _site_for(session: AsyncSession, site_id: str) -> SiteRow:
    site = await session.get(SiteRow, site_id)
    if site is None:
        raise InvalidReference("site_id", f"no site {site_id}")
    return site


async def create_device(session: AsyncSession, device: DeviceCreate | PendingRegister,
                        *, device_id: str | None = None, kind: str | None = None) -> DeviceRow:
    device_id = device_id or device.id  # type: ignore[union-attr]
    kind = kind or device.kind  # type: ignore[union-attr]
    if await session.get(DeviceRow, device_id) is not None:
        raise Conflict(f"device {device_id} is already registered")
    site = await _site_for(session, device.site_id)
    profile = device.profile.values()
    row = DeviceRow(id=device_id, kind=str(kind), site_id=site.id, location=device.location,
                    vendor=device.vendor, model=device.model, install_date=device.install_date,
                    installer=device.installer, profile=profile, state="active",
                    offline_after_s=offline_window(str(kind), site, profile))
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"device {device_id} is already registered") from None
    await session.execute(delete(PendingDeviceRow).where(PendingDeviceRow.device_id == device_id))
    await record_changes(session, device_ids=[device_id])
    return row


async def get_device_row(session: AsyncSession, device_id: str) -> DeviceRow:
    row = await session.get(DeviceRow, device_id)
    if row is None:
        raise NotFound(f"no device {device_id}")
    return row


async def update_device(session: AsyncSession, device_id: str,
                        update: DeviceUpdate) -> DeviceRow:
    row = await get_device_row(session, device_id)
    values = update.model_dump(exclude_unset=True)
    if values.get("site_id") is not None:
        await _site_for(session, values["site_id"])
    if "profile" in values:
        values["profile"] = update.profile.values() if update.profile else {}
    for key, value in values.items():
        if value is not None or key == "install_date":
            setattr(row, key, value)
    site = await _site_for(session, row.site_id)
    await _set_offline_window(session, row, offline_window(row.kind, site, row.profile))
    await record_changes(session, device_ids=[device_id])
    await session.flush()
    return row


async def set_maintenance(session: AsyncSession, device_id: str,
                          until: datetime | None) -> DeviceRow:
    row = await get_device_row(session, device_id)
    if row.state == "decommissioned":
        raise Conflict(f"device {device_id} is decommissioned")
    if until is not None:
        now = utcnow()
        if until <= now:
            raise InvalidReference("until", "must be in the future")
        if until - now > MAX_MAINTENANCE:
            raise InvalidReference("until", "maintenance may last at most 30 days")
        row.state, row.maintenance_until = "maintenance", until
    else:
        row.state, row.maintenance_until = "active", None
    await record_changes(session, device_ids=[device_id])
    await session.flush()
    return row


async def set_site_maintenance(session: AsyncSession, site_id: str,
                               until: datetime | None) -> int:
    """Every device of the site (not decommissioned) in maintenance until ``until``, or
    out of it (None); returns how many devices changed."""
    await get_site(session, site_id)
    now = utcnow()
    if until is not None and until <= now:
        raise InvalidReference("until", "must be in the future")
    if until is not None and until - now > MAX_MAINTENANCE:
        raise InvalidReference("until", "maintenance may last at most 30 days")
    values: dict[str, Any] = ({"state": "maintenance", "maintenance_until": until}
                              if until is not None
                              else {"state": "active", "maintenance_until": None})
    where = [DeviceRow.site_id == site_id, DeviceRow.state != "decommissioned"]
    if until is None:
        where.append(DeviceRow.state == "maintenance")
    result = await session.execute(update(DeviceRow).where(*where).values(**values)
                                   .execution_options(synchronize_session=False))
    await record_changes(session, site_ids=[site_id])
    return int(result.rowcount)  # type: ignore[attr-defined]


async def set_decommissioned(session: AsyncSession, device_id: str, decommissioned: bool
                             ) -> DeviceRow:
    row = await get_device_row(session, device_id)
    row.state = "decommissioned" if decommissioned else "active"
    row.maintenance_until = None
    await record_changes(session, device_ids=[device_id])
    await session.flush()
    return row


def effective_state(row: DeviceRow, now: datetime) -> str:
    """Maintenance ends by itself at its end time."""
    if row.state == "maintenance" and (row.maintenance_until is None
                                       or row.maintenance_until <= now):
        return "active"
    return row.state


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    site_id: str | None = None
    kind: str | None = None
    state: str | None = None
    status: str | None = None
    """online, offline or never_seen."""
    jurisdiction: str | None = None
    q: str | None = None


_DeviceQuery = Select[DeviceRow, SiteRow, DeviceStatusRow]


def _filtered(query: _DeviceQuery, f: DeviceFilter, now: datetime) -> _DeviceQuery:
    if f.site_id:
        query = query.where(DeviceRow.site_id == f.site_id)
    if f.kind:
        query = query.where(DeviceRow.kind == f.kind)
    if f.jurisdiction:
        query = query.where(SiteRow.jurisdiction == f.jurisdiction)
    if f.state == "maintenance":
        query = query.where(DeviceRow.state == "maintenance", DeviceRow.maintenance_until > now)
    elif f.state == "active":
        query = query.where(or_(DeviceRow.state == "active",
                                (DeviceRow.state == "maintenance")
                                & (DeviceRow.maintenance_until <= now)))
    elif f.state:
        query = query.where(DeviceRow.state == f.state)
    if f.status == "never_seen":
        query = query.where(DeviceStatusRow.last_seen_at.is_(None))
    elif f.status == "online":
        query = query.where(DeviceStatusRow.offline_at > now)
    elif f.status == "offline":
        query = query.where(DeviceStatusRow.offline_at <= now)
    if f.q:
        pattern = f"%{f.q}%"
        query = query.where(or_(DeviceRow.id.ilike(pattern), DeviceRow.location.ilike(pattern),
                                SiteRow.name.ilike(pattern), DeviceRow.vendor.ilike(pattern),
                                DeviceRow.model.ilike(pattern)))
    return query


async def list_devices(session: AsyncSession, f: DeviceFilter, *, offset: int = 0,
                       limit: int = 100) -> tuple[list[DevicePublic], int]:
    now = utcnow()
    query = (select(DeviceRow, SiteRow, DeviceStatusRow)
             .join(SiteRow, SiteRow.id == DeviceRow.site_id)
             .outerjoin(DeviceStatusRow, DeviceStatusRow.device_id == DeviceRow.id))
    query = _filtered(query, f, now)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = (await session.execute(query.order_by(DeviceRow.id).offset(offset).limit(limit))
            ).all()
    return [device_public(*r, now=now) for r in rows], total


def _online(status: DeviceStatusRow | None, now: datetime) -> bool | None:
    return None if status is None else status.offline_at > now


async def get_device(session: AsyncSession, device_id: str) -> DevicePublic:
    row = await get_device_row(session, device_id)
    site = await _site_for(session, row.site_id)
    status = await session.get(DeviceStatusRow, device_id)
    return device_public(row, site, status, now=utcnow())


def device_public(row: DeviceRow, site: SiteRow, status: DeviceStatusRow | None, *,
                  now: datetime) -> DevicePublic:
    kind = DeviceKind(row.kind)
    return DevicePublic(
        id=row.id, kind=kind, site_id=row.site_id, site_name=site.name,
        jurisdiction=site.jurisdiction, location=row.location, vendor=row.vendor,
        model=row.model, install_date=row.install_date, installer=row.installer,
        state=effective_state(row, now),
        maintenance_until=row.maintenance_until if effective_state(row, now) == "maintenance"
        else None,
        profile=ProfileOverride.model_validate(row.profile),
        effective_profile=effective_profile(kind, site.profiles.get(kind.value), row.profile),
        status=DeviceStatus(
            last_seen_at=status.last_seen_at if status else None,
            online=_online(status, now),
            battery_pct=status.battery_pct if status else None,
            rsrp_dbm=status.rsrp_dbm if status else None,
            last_values=status.last_values if status else {},
        ),
        created_at=row.created_at, updated_at=row.updated_at,
    )


async def _refresh_offline_windows(session: AsyncSession, *, site_id: str) -> None:
    site = await get_site(session, site_id)
    devices = (await session.scalars(select(DeviceRow).where(DeviceRow.site_id == site_id))).all()
    for device in devices:
        await _set_offline_window(session, device, offline_window(device.kind, site,
                                                                   device.profile))
    await record_changes(session, device_ids=[d.id for d in devices])


async def _set_offline_window(session: AsyncSession, device: DeviceRow, window_s: int) -> None:
    """Keep the device's window, and its status's offline_at, in step with its profile."""
    device.offline_after_s = window_s
    status = await session.get(DeviceStatusRow, device.id)
    if status is not None:
        status.offline_at = status.last_seen_at + timedelta(seconds=window_s)


# --- pending devices -----------------------------------------------------------------------------
async def list_pending(session: AsyncSession, *, offset: int = 0, limit: int = 100
                       ) -> tuple[list[PendingDeviceRow], int]:
    total = await session.scalar(select(func.count()).select_from(PendingDeviceRow)) or 0
    rows = (await session.scalars(select(PendingDeviceRow)
                                  .order_by(PendingDeviceRow.last_seen_at.desc())
                                  .offset(offset).limit(limit))).all()
    return list(rows), total


async def register_pending(session: AsyncSession, device_id: str, request: PendingRegister
                           ) -> DeviceRow:
    pending = await session.get(PendingDeviceRow, device_id)
    if pending is None:
        raise NotFound(f"no pending device {device_id}")
    return await create_device(session, request, device_id=device_id, kind=pending.kind)


async def dismiss_pending(session: AsyncSession, device_id: str) -> None:
    pending = await session.get(PendingDeviceRow, device_id)
    if pending is None:
        raise NotFound(f"no pending device {device_id}")
    await session.delete(pending)


def _columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


def as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
