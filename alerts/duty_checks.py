"""Duty checks (查岗): the centre asks control rooms to answer, and notes who did, when.

A request names one control room, a site, or a whole jurisdiction.  Each
control room gets its own check id in a ``{"cmd": "duty_check", ...}`` command
on its ``cmd`` topic; its ``duty_check_ack`` with that id before the deadline
answers the check (see :func:`alerts.store.answer_duty_check`).  A check still
unanswered at its deadline is marked missed and raises a duty lapse
(see :mod:`alerts.timers`).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import msgspec
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.tables import DutyCheckRow
from devices.kinds import DeviceKind, topic_for
from devices.messages import DutyCheckCommand
from devices.profiles import DEFAULT_PROFILES
from devices.registry.cache import DeviceInfo
from devices.registry.tables import DeviceRow, SiteRow


class DutyCheckRequest(BaseModel):
    """Exactly one of ``device_id``, ``site_id`` or ``jurisdiction``."""

    device_id: str | None = Field(None, max_length=64)
    site_id: str | None = Field(None, max_length=64)
    jurisdiction: str | None = Field(None, max_length=100)
    deadline_s: int | None = Field(
        None, ge=60, le=86_400,
        description="Seconds to answer; default: the control room's profile (600).")

    @model_validator(mode="after")
    def _one_target(self) -> DutyCheckRequest:
        given = [n for n in ("device_id", "site_id", "jurisdiction") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError("give exactly one of device_id, site_id, jurisdiction")
        return self


class DutyCheckPublic(BaseModel):
    model_config = {"from_attributes": True}

    id: str
    batch_id: str
    device_id: str
    site_id: str
    jurisdiction: str
    requested_by: str
    requested_at: datetime
    deadline_at: datetime
    status: str
    answered_at: datetime | None
    response_s: float | None = None
    operator: str | None

    @model_validator(mode="after")
    def _response_time(self) -> DutyCheckPublic:
        if self.answered_at is not None:
            self.response_s = round((self.answered_at - self.requested_at).total_seconds(), 3)
        return self


class DutyCheckBatch(BaseModel):
    batch_id: str
    checks: list[DutyCheckPublic]


class DutyChecksPublic(BaseModel):
    data: list[DutyCheckPublic]
    count: int


async def control_rooms(session: AsyncSession, request: DutyCheckRequest
                        ) -> list[tuple[str, str, str]]:
    """(device id, site id, jurisdiction) of the active control rooms the request names."""
    query = (select(DeviceRow.id, DeviceRow.site_id, SiteRow.jurisdiction)
             .join(SiteRow, SiteRow.id == DeviceRow.site_id)
             .where(DeviceRow.kind == DeviceKind.CONTROLROOM.value,
                    DeviceRow.state != "decommissioned"))
    if request.device_id:
        query = query.where(DeviceRow.id == request.device_id)
    elif request.site_id:
        query = query.where(DeviceRow.site_id == request.site_id)
    else:
        query = query.where(SiteRow.jurisdiction == request.jurisdiction)
    return [(r[0], r[1], r[2]) for r in await session.execute(query.order_by(DeviceRow.id))]


def new_checks(rooms: list[tuple[str, str, str]], request: DutyCheckRequest, requested_by: str,
               now: datetime, device: dict[str, DeviceInfo | None]) -> list[DutyCheckRow]:
    batch_id = "dcb-" + secrets.token_hex(6)
    checks = []
    for device_id, site_id, jurisdiction in rooms:
        info = device.get(device_id)
        profile = info.profile if info else DEFAULT_PROFILES[DeviceKind.CONTROLROOM]
        deadline_s = request.deadline_s or profile.duty_check_deadline_s
        checks.append(DutyCheckRow(
            id="dc-" + secrets.token_hex(8), batch_id=batch_id, device_id=device_id,
            site_id=site_id, jurisdiction=jurisdiction, requested_by=requested_by,
            requested_at=now, deadline_at=now + timedelta(seconds=deadline_s), status="pending"))
    return checks


def command_for(prefix: str, check: DutyCheckRow) -> tuple[str, bytes]:
    deadline_s = int((check.deadline_at - check.requested_at).total_seconds())
    command = DutyCheckCommand(cmd="duty_check", check_id=check.id,
                               ts=int(check.requested_at.timestamp() * 1000),
                               deadline_s=deadline_s)
    return (topic_for(prefix, DeviceKind.CONTROLROOM, check.device_id, "cmd"),
            msgspec.json.encode(command))


async def list_checks(session: AsyncSession, *, batch_id: str | None = None,
                      device_id: str | None = None, site_id: str | None = None,
                      jurisdiction: str | None = None, status: str | None = None,
                      since: datetime | None = None, until: datetime | None = None,
                      limit: int = 100, offset: int = 0) -> tuple[list[DutyCheckRow], int]:
    where = []
    for column, value in ((DutyCheckRow.batch_id, batch_id), (DutyCheckRow.device_id, device_id),
                          (DutyCheckRow.site_id, site_id),
                          (DutyCheckRow.jurisdiction, jurisdiction),
                          (DutyCheckRow.status, status)):
        if value is not None:
            where.append(column == value)
    if since is not None:
        where.append(DutyCheckRow.requested_at >= since)
    if until is not None:
        where.append(DutyCheckRow.requested_at < until)
    count = await session.scalar(select(func.count()).select_from(DutyCheckRow).where(*where))
    rows = (await session.scalars(select(DutyCheckRow).where(*where)
                                  .order_by(DutyCheckRow.requested_at.desc(), DutyCheckRow.id)
                                  .limit(limit).offset(offset))).all()
    return list(rows), count or 0

