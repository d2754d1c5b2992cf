"""Statistics for supervisors (weekly and monthly reports) and the console's fleet view."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel
from sqlalchemy import func, select

from alerts import stats
from alerts.tables import UNRESOLVED, AlertRow
from dashboard_api.deps import Reader, SessionDep
from devices.registry.tables import DeviceRow, DeviceStatusRow, SiteRow

router = APIRouter(prefix="/api/v1/stats", tags=["statistics"])


@router.get("/summary", response_model=stats.Summary,
            responses={200: {"content": {"text/csv": {}}}})
async def summary(
    request: Request, session: SessionDep, _: Reader,
    from_: Annotated[datetime | None, Query(alias="from", description="default: 7 days ago")]
    = None,
    to: Annotated[datetime | None, Query(description="default: now")] = None,
    group_by: stats.GroupBy | None = None,
    format_: Annotated[Literal["json", "csv"] | None, Query(alias="format")] = None,
) -> Any:
    """Alerts by type and severity, fire alarms by outcome and the false-alarm rate, time
    to acknowledge and resolve, fleet availability, duty checks, the worst units.

    CSV with ``format=csv`` or ``Accept: text/csv``."""
    now = datetime.now(UTC)
    end = to or now
    start = from_ or end - timedelta(days=7)
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
                "loc": ["query", name], "type": "timezone",
                "msg": "give a time zone, e.g. 2026-11-22T00:00:00Z"}])
    if end <= start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["query", "to"], "type": "range", "msg": "to must be after from"}])
    result = await stats.summary(session, start, end, now, group_by)
    wants_csv = format_ == "csv" or (format_ is None and "text/csv" in request.headers.get(
        "accept", ""))
    if wants_csv:
        name = f"firewarden-{start:%Y%m%d}-{end:%Y%m%d}.csv"
        return Response(stats.to_csv(result), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return result


class Counts(BaseModel):
    devices: int = 0
    online: int = 0
    offline: int = 0
    never_seen: int = 0
    maintenance: int = 0


class SiteOpenAlerts(BaseModel):
    site_id: str
    name: str
    jurisdiction: str
    category: str
    devices: int
    open_alerts: int
    open_critical: int


class FleetStatus(BaseModel):
    total: Counts
    by_kind: dict[str, Counts]
    by_jurisdiction: dict[str, Counts]
    sites: list[SiteOpenAlerts]
    """Sites by open alerts, most first."""


@router.get("/fleet")
async def fleet(session: SessionDep, _: Reader) -> FleetStatus:
    """Online / offline / maintenance counts per kind and per jurisdiction (decommissioned
    devices left out), and the sites with their open alerts."""
    now = datetime.now(UTC)
    rows = (await session.execute(
        select(DeviceRow.kind, DeviceRow.state, DeviceRow.maintenance_until,
               DeviceStatusRow.offline_at, SiteRow.jurisdiction, SiteRow.id)
        .join(SiteRow, SiteRow.id == DeviceRow.site_id)
        .outerjoin(DeviceStatusRow, DeviceStatusRow.device_id == DeviceRow.id)
        .where(DeviceRow.state != "decommissioned"))).all()
    total = Counts()
    by_kind: dict[str, Counts] = defaultdict(Counts)
    by_jurisdiction: dict[str, Counts] = defaultdict(Counts)
    devices_per_site: Counter[str] = Counter()
    for kind, state, until, offline_at, jurisdiction, site_id in rows:
        if state == "maintenance" and until is not None and until > now:
            bucket = "maintenance"
        elif offline_at is None:
            bucket = "never_seen"
        else:
            bucket = "online" if offline_at > now else "offline"
        devices_per_site[site_id] += 1
        for counts in (total, by_kind[kind], by_jurisdiction[jurisdiction]):
            counts.devices += 1
            setattr(counts, bucket, getattr(counts, bucket) + 1)
    open_rows = (await session.execute(
        select(AlertRow.site_id, AlertRow.severity, func.count())
        .where(UNRESOLVED, AlertRow.suppressed.is_(False), AlertRow.site_id.is_not(None))
        .group_by(AlertRow.site_id, AlertRow.severity))).all()
    open_alerts: Counter[str] = Counter()
    open_critical: Counter[str] = Counter()
    for alert_site, severity, n in open_rows:
        open_alerts[str(alert_site)] += n
        if severity == "critical":
            open_critical[str(alert_site)] += n
    sites = (await session.scalars(select(SiteRow))).all()
    listed = [SiteOpenAlerts(site_id=s.id, name=s.name, jurisdiction=s.jurisdiction,
                             category=s.category, devices=devices_per_site[s.id],
                             open_alerts=open_alerts[s.id], open_critical=open_critical[s.id])
              for s in sites]
    listed.sort(key=lambda s: (-s.open_critical, -s.open_alerts, s.site_id))
    return FleetStatus(total=total, by_kind=dict(sorted(by_kind.items())),
                       by_jurisdiction=dict(sorted(by_jurisdiction.items())), sites=listed)
