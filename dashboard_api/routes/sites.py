"""Sites (单位): installers create and edit them; every role reads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel

from dashboard_api.deps import Installer, Limit, Offset, Reader, ServicesDep, SessionDep
from devices.registry import store
from devices.registry.schemas import (
    MaintenanceRequest,
    SiteCategory,
    SiteCreate,
    SitePublic,
    SitesPublic,
    SiteUpdate,
)

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_site(site: SiteCreate, session: SessionDep, _: Installer) -> SitePublic:
    row = await store.create_site(session, site)
    await session.commit()
    return store.site_public(row)


@router.get("")
async def list_sites(
    session: SessionDep, _: Reader,
    jurisdiction: str | None = None, category: SiteCategory | None = None,
    q: Annotated[str | None, Query(max_length=100, description="id, name or address")] = None,
    offset: Offset = 0, limit: Limit = 100,
) -> SitesPublic:
    data, count = await store.list_sites(session, jurisdiction=jurisdiction, category=category,
                                         q=q, offset=offset, limit=limit)
    return SitesPublic(data=data, count=count)


@router.get("/{site_id}")
async def get_site(site_id: str, session: SessionDep, _: Reader) -> SitePublic:
    row = await store.get_site(session, site_id)
    return store.site_public(row, await store.count_devices(session, site_id))


@router.patch("/{site_id}")
async def update_site(site_id: str, update: SiteUpdate, session: SessionDep,
                      services: ServicesDep, _: Installer) -> SitePublic:
    row = await store.update_site(session, site_id, update)
    await session.commit()
    await services.registry.refresh()
    return store.site_public(row, await store.count_devices(session, site_id))


@router.delete("/{site_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_site(site_id: str, session: SessionDep, _: Installer) -> Response:
    await store.delete_site(session, site_id)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class SiteMaintenance(BaseModel):
    site_id: str
    devices: int
    """How many devices changed."""
    until: datetime | None


@router.post("/{site_id}/maintenance")
async def start_site_maintenance(site_id: str, request: MaintenanceRequest, session: SessionDep,
                                 services: ServicesDep, _: Installer) -> SiteMaintenance:
    """Every device of the site in maintenance until ``until`` (alerts recorded as
    suppressed, no offline tracking); it ends by itself then."""
    changed = await store.set_site_maintenance(session, site_id, request.until)
    await session.commit()
    await services.registry.refresh()
    return SiteMaintenance(site_id=site_id, devices=changed, until=request.until)


@router.delete("/{site_id}/maintenance")
async def end_site_maintenance(site_id: str, session: SessionDep, services: ServicesDep,
                               _: Installer) -> SiteMaintenance:
    changed = await store.set_site_maintenance(session, site_id, None)
    await session.commit()
    await services.registry.refresh()
    return SiteMaintenance(site_id=site_id, devices=changed, until=None)
