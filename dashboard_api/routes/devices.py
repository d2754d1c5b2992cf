"""Devices: registration, maintenance, decommissioning, bulk import/export, and
pending (unregistered) devices waiting to be adopted."""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from dashboard_api.deps import Installer, Limit, Offset, Reader, Services, ServicesDep, SessionDep
from devices.kinds import DeviceKind
from devices.registry import store
from devices.registry.csv_import import CsvImportError, export_csv, import_csv
from devices.registry.schemas import (
    DeviceCreate,
    DevicePublic,
    DevicesPublic,
    DeviceState,
    DeviceUpdate,
    MaintenanceRequest,
    PendingDevicePublic,
    PendingDevicesPublic,
    PendingRegister,
)
from ingest.points import MEASUREMENTS

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


class ImportRowError(BaseModel):
    line: int
    message: str
    device_id: str | None = None
    field: str | None = None


class ImportReport(BaseModel):
    rows: int
    created: int
    updated: int
    unchanged: int
    sites_created: int
    sites_updated: int
    errors: list[ImportRowError]
    applied: bool
    dry_run: bool
    mode: Literal["atomic", "partial"]
    encoding: str


async def _committed(session: AsyncSession, services: Services, device_id: str) -> DevicePublic:
    """Commit a change, bring this process's registry cache up to date, answer the device."""
    await session.commit()
    await services.registry.refresh()
    return await store.get_device(session, device_id)


# --- bulk import / export (declared before /{device_id}) ------------------------------------
_IMPORT_REFUSED = {"description": "atomic import with bad rows (the report), an unreadable "
                   "file, or invalid parameters", "content": {"application/json": {"schema": {
                       "anyOf": [{"$ref": "#/components/schemas/ImportReport"},
                                 {"$ref": "#/components/schemas/HTTPValidationError"},
                                 {"type": "object", "properties": {"detail": {"type": "string"}},
                                  "required": ["detail"]}]}}}}


@router.post("/import", responses={422: _IMPORT_REFUSED, 413: {}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string", "format": "binary"}}}}})
async def import_devices(
    request: Request, session: SessionDep, services: ServicesDep, _: Installer,
    dry_run: bool = False,
    mode: Annotated[Literal["atomic", "partial"], Query(
        description="atomic: any bad row and nothing is written; partial: good rows are "
        "written in one transaction")] = "atomic",
) -> ImportReport:
    """Register sites and devices from a CSV body (UTF-8, UTF-8 with BOM, or GBK/GB18030)."""
    data = await _read_limited(request, services.settings.MAX_IMPORT_BYTES)
    try:
        result = await import_csv(session, data, mode=mode, dry_run=dry_run)
    except CsvImportError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
    if result.applied:
        await session.commit()
        await services.registry.refresh()
    report = ImportReport.model_validate(asdict(result))
    if result.errors and mode == "atomic":
        return JSONResponse(report.model_dump(), status_code=422)  # type: ignore[return-value]
    return report


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the upload is larger than "
                            f"{limit} bytes (FIREWARDEN_MAX_IMPORT_BYTES)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the upload is larger than "
                                f"{limit} bytes (FIREWARDEN_MAX_IMPORT_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


@router.get("/export", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
async def export_devices(session: SessionDep, _: Reader) -> Response:
    """Every device with its site, in the import format (UTF-8 with BOM, for Excel)."""
    return Response(await export_csv(session), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="devices.csv"'})


# --- pending devices ----------------------------------------------------------------------------
@router.get("/pending")
async def list_pending(
    session: SessionDep, _: Reader,
    offset: Offset = 0, limit: Limit = 100,
) -> PendingDevicesPublic:
    """Devices that send messages but are not registered, most recently seen first."""
    rows, count = await store.list_pending(session, offset=offset, limit=limit)
    return PendingDevicesPublic(
        data=[PendingDevicePublic.model_validate(r, from_attributes=True) for r in rows],
        count=count)


@router.post("/pending/{device_id}/register", status_code=status.HTTP_201_CREATED)
async def register_pending(device_id: str, request: PendingRegister, session: SessionDep,
                           services: ServicesDep, _: Installer) -> DevicePublic:
    """Adopt a pending device in one call: it keeps the id and kind it reported with."""
    await store.register_pending(session, device_id, request)
    return await _committed(session, services, device_id)


@router.delete("/pending/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
async def dismiss_pending(device_id: str, session: SessionDep, _: Installer) -> Response:
    await store.dismiss_pending(session, device_id)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- devices ----------------------------------------------------------------------

@router.post("", status_code=status.HTTP_201_CREATED)
async def register_device(device: DeviceCreate, session: SessionDep, services: ServicesDep,
                          _: Installer) -> DevicePublic:
    await store.create_device(session, device)
    return await _committed(session, services, device.id)


@router.get("")
async def list_devices(
    session: SessionDep, _: Reader,
    site_id: str | None = None, kind: DeviceKind | None = None, state: DeviceState | None = None,
    status_: Annotated[Literal["online", "offline", "never_seen"] | None,
                       Query(alias="status")] = None,
    jurisdiction: str | None = None,
    q: Annotated[str | None, Query(
        max_length=100, description="id, location, site name, vendor or model")] = None,
    offset: Offset = 0, limit: Limit = 100,
) -> DevicesPublic:
    data, count = await store.list_devices(session, store.DeviceFilter(
        site_id=site_id, kind=kind.value if kind else None, state=state, status=status_,
        jurisdiction=jurisdiction, q=q), offset=offset, limit=limit)
    return DevicesPublic(data=data, count=count)


@router.get("/{device_id}")
async def get_device(device_id: str, session: SessionDep, _: Reader) -> DevicePublic:
    """The device with its live status: last seen, online, battery, signal, last values."""
    return await store.get_device(session, device_id)


class TelemetryPoint(BaseModel):
    ts: datetime
    values: dict[str, float | int | bool | str | None]


class TelemetrySeries(BaseModel):
    device_id: str
    kind: str
    step_s: int
    points: list[TelemetryPoint]
    """Mean of each numeric field per step (steps without data are left out)."""


@router.get("/{device_id}/telemetry")
async def device_telemetry(
    device_id: str, session: SessionDep, services: ServicesDep, _: Reader,
    from_: Annotated[datetime | None, Query(alias="from", description="default: 24 h ago")]
    = None,
    to: Annotated[datetime | None, Query(description="default: now")] = None,
    step: Annotated[int | None, Query(ge=1, le=86_400,
                                      description="seconds; default: about 300 steps")] = None,
) -> TelemetrySeries:
    """Recent telemetry for charts, downsampled from InfluxDB (or the local store)."""
    device = await store.get_device(session, device_id)
    if services.telemetry is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no telemetry store here")
    end = to or datetime.now(UTC)
    start = from_ or end - timedelta(hours=24)
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["query", "from" if start.tzinfo is None else "to"], "type": "timezone",
            "msg": "give a time zone, e.g. 2026-11-22T08:00:00Z"}])
    span_s = (end - start).total_seconds()
    step_s = step or max(1, math.ceil(span_s / 300))
    try:
        series = await services.telemetry.series(
            MEASUREMENTS[DeviceKind(device.kind)], device_id, int(start.timestamp() * 1000),
            int(end.timestamp() * 1000), step_s)
    except ValueError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["query", "to" if "after" in str(error) else "step"], "type": "range",
            "msg": str(error)}]) from None
    return TelemetrySeries(device_id=device_id, kind=device.kind, step_s=step_s, points=[
        TelemetryPoint(ts=datetime.fromtimestamp(ts / 1000, UTC), values=values)
        for ts, values in series])


@router.patch("/{device_id}")
async def update_device(device_id: str, update: DeviceUpdate, session: SessionDep,
                        services: ServicesDep, _: Installer) -> DevicePublic:
    """Edit a device; setting ``site_id`` moves it to another site."""
    await store.update_device(session, device_id, update)
    return await _committed(session, services, device_id)


@router.post("/{device_id}/maintenance")
async def start_maintenance(device_id: str, request: MaintenanceRequest, session: SessionDep,
                            services: ServicesDep, _: Installer) -> DevicePublic:
    """Put the device in maintenance until ``until``, when it ends by itself."""
    await store.set_maintenance(session, device_id, request.until)
    return await _committed(session, services, device_id)


@router.delete("/{device_id}/maintenance")
async def end_maintenance(device_id: str, session: SessionDep, services: ServicesDep,
                          _: Installer) -> DevicePublic:
    await store.set_maintenance(session, device_id, None)
    return await _committed(session, services, device_id)


@router.post("/{device_id}/decommission")
async def decommission(device_id: str, session: SessionDep, services: ServicesDep,
                       _: Installer) -> DevicePublic:
    """The device is kept for the record but no longer tracked."""
    await store.set_decommissioned(session, device_id, True)
    return await _committed(session, services, device_id)


@router.post("/{device_id}/reactivate")
async def reactivate(device_id: str, session: SessionDep, services: ServicesDep,
                     _: Installer) -> DevicePublic:
    await store.set_decommissioned(session, device_id, False)
    return await _committed(session, services, device_id)
