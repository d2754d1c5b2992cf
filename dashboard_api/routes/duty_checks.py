"""Duty checks (查岗): operators start them; answers and misses are listed with response times."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status

from alerts import duty_checks
from alerts.duty_checks import DutyCheckBatch, DutyCheckPublic, DutyCheckRequest, DutyChecksPublic
from dashboard_api.deps import Limit, Offset, Operator, Reader, ServicesDep, SessionDep
from ingest.commands import CommandError

router = APIRouter(prefix="/api/v1/duty-checks", tags=["duty checks"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def start_duty_checks(request: DutyCheckRequest, session: SessionDep,
                            services: ServicesDep, principal: Operator) -> DutyCheckBatch:
    """Send a duty check to one control room, every one at a site, or a whole jurisdiction.

    The checks are stored only once the broker has accepted every command (503 if it
    cannot be reached), so no check waits for an answer to a command never sent.
    """
    if services.commands is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "this process has no MQTT connection to send commands")
    rooms = await duty_checks.control_rooms(session, request)
    if not rooms:
        field = next(n for n in ("device_id", "site_id", "jurisdiction") if getattr(request, n))
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["body", field], "type": "no_control_rooms",
            "msg": f"no active control room matches {field}={getattr(request, field)!r}"}])
    checks = duty_checks.new_checks(rooms, request, principal.name, datetime.now(UTC),
                                    {room[0]: services.registry.get(room[0]) for room in rooms})
    session.add_all(checks)
    await session.flush()
    prefix = services.settings.TOPIC_PREFIX
    try:
        await asyncio.to_thread(services.commands.publish,
                                [duty_checks.command_for(prefix, c) for c in checks])
    except CommandError as error:
        await session.rollback()
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from None
    await session.commit()
    return DutyCheckBatch(batch_id=checks[0].batch_id,
                          checks=[DutyCheckPublic.model_validate(c) for c in checks])


@router.get("")
async def list_duty_checks(
    session: SessionDep, _: Reader,
    batch_id: Annotated[str | None, Query(max_length=64)] = None,
    device_id: Annotated[str | None, Query(max_length=64)] = None,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
    jurisdiction: Annotated[str | None, Query(max_length=100)] = None,
    status_: Annotated[Literal["pending", "answered", "missed"] | None,
                       Query(alias="status")] = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    offset: Offset = 0, limit: Limit = 100,
) -> DutyChecksPublic:
    """Newest first, with each answer's response time."""
    rows, count = await duty_checks.list_checks(
        session, batch_id=batch_id, device_id=device_id, site_id=site_id,
        jurisdiction=jurisdiction, status=status_, since=from_, until=to, limit=limit,
        offset=offset)
    return DutyChecksPublic(data=[DutyCheckPublic.model_validate(r) for r in rows], count=count)
