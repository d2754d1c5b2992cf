"""Alerts for the monitoring centre: list, inspect, acknowledge, resolve, annotate.

Operators change alerts; every role with read access may list them.  Each
change is stored with who made it and announced live after it commits.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, HTTPException, Query, status

from alerts import lifecycle
from alerts.catalog import Category, Severity, Status
from alerts.schemas import (
    AcknowledgeRequest,
    AlertDetail,
    AlertEventPublic,
    AlertPublic,
    AlertsPublic,
    BulkAcknowledgeRequest,
    BulkResult,
    NoteRequest,
    ResolveRequest,
)
from alerts.store import AlertEvent
from dashboard_api.deps import Limit, Offset, Operator, Reader, RowId, ServicesDep, SessionDep
from devices.kinds import DeviceKind

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


@router.get("")
async def list_alerts(
    session: SessionDep, _: Reader,
    status_: Annotated[list[Status] | None, Query(alias="status")] = None,
    type_: Annotated[list[str] | None, Query(alias="type", max_length=20)] = None,
    category: Annotated[list[Category] | None, Query()] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
    jurisdiction: Annotated[str | None, Query(max_length=100)] = None,
    kind: DeviceKind | None = None,
    device_id: Annotated[str | None, Query(max_length=64)] = None,
    from_: Annotated[datetime | None, Query(alias="from", description="opened at or after")] = None,
    to: Annotated[datetime | None, Query(description="opened before")] = None,
    include_suppressed: bool = True,
    offset: Offset = 0, limit: Limit = 100,
) -> AlertsPublic:
    """Newest first.  Repeat ``status``, ``type``, ``category`` or ``severity`` to match any."""
    rows, count = await lifecycle.list_alerts(session, lifecycle.AlertFilter(
        status=status_, type=type_, category=category, severity=severity, site_id=site_id,
        jurisdiction=jurisdiction, kind=kind.value if kind else None, device_id=device_id,
        since=from_, until=to, include_suppressed=include_suppressed),
        limit=limit, offset=offset)
    return AlertsPublic(data=[AlertPublic.model_validate(r) for r in rows], count=count)


@router.get("/{alert_id}")
async def get_alert(alert_id: RowId, session: SessionDep, _: Reader) -> AlertDetail:
    """One alert with its whole history (who, when, what, note)."""
    row = await _found(lifecycle.get_alert(session, alert_id))
    events = await lifecycle.history(session, alert_id)
    return AlertDetail(**AlertPublic.model_validate(row).model_dump(),
                       history=[AlertEventPublic.model_validate(e) for e in events])


@router.post("/{alert_id}/acknowledge")
async def acknowledge(alert_id: RowId, request: AcknowledgeRequest, session: SessionDep,
                      services: ServicesDep, principal: Operator) -> AlertPublic:
    """``open -> acknowledged``; stops reminders.  409 if already acknowledged or resolved."""
    event = await _transition(lifecycle.acknowledge(session, alert_id, principal.name,
                                                    request.note))
    return await _commit(session, services, [event], alert_id)


@router.post("/{alert_id}/resolve")
async def resolve(alert_id: RowId, request: ResolveRequest, session: SessionDep,
                  services: ServicesDep, principal: Operator) -> AlertPublic:
    """Close the alert.  A fire alarm needs an ``outcome`` (409 without one)."""
    event = await _transition(lifecycle.resolve(session, alert_id, principal.name,
                                                request.outcome, request.note))
    return await _commit(session, services, [event], alert_id)


@router.post("/{alert_id}/notes")
async def add_note(alert_id: RowId, request: NoteRequest, session: SessionDep,
                   services: ServicesDep, principal: Operator) -> AlertPublic:
    event = await _found(lifecycle.add_note(session, alert_id, principal.name, request.note))
    return await _commit(session, services, [event], alert_id)


@router.post("/acknowledge")
async def bulk_acknowledge(request: BulkAcknowledgeRequest, session: SessionDep,
                           services: ServicesDep, principal: Operator) -> BulkResult:
    """Acknowledge many at once; alerts that cannot be are listed with the reason."""
    events: list[AlertEvent] = []
    skipped: dict[int, str] = {}
    for alert_id in dict.fromkeys(request.ids):
        try:
            events.append(await lifecycle.acknowledge(session, alert_id, principal.name,
                                                      request.note))
        except (lifecycle.TransitionError, lifecycle.AlertNotFound) as error:
            skipped[alert_id] = str(error)
    changes = await services.announcer.prepare(session, events)
    await session.commit()
    services.announcer.announce(changes)
    return BulkResult(acknowledged=[e.alert_id for e in events], skipped=skipped)


T = TypeVar("T")


async def _found(work: Awaitable[T]) -> T:
    try:
        return await work
    except lifecycle.AlertNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None


async def _transition(work: Awaitable[AlertEvent]) -> AlertEvent:
    try:
        return await _found(work)
    except lifecycle.TransitionError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None


async def _commit(session: SessionDep, services: ServicesDep, events: list[AlertEvent],
                  alert_id: int) -> AlertPublic:
    changes = await services.announcer.prepare(session, events)
    await session.commit()
    services.announcer.announce(changes)
    return AlertPublic.model_validate(await lifecycle.get_alert(session, alert_id))
