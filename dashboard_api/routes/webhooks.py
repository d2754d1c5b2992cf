"""Outbound webhooks (admin): where alert changes are forwarded, and the delivery log."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from alerts.catalog import ALERT_TYPES, Category, Severity
from alerts.tables import WebhookDeliveryRow, WebhookRow
from dashboard_api.deps import Admin, Limit, Offset, RowId, SessionDep

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

Change = Literal["raised", "repeated", "reopened", "auto_resolved", "acknowledged", "resolved",
                 "note", "reminded", "escalated", "device_cleared", "silenced", "panel_reset",
                 "recorded"]
TypeOrCategory = Annotated[str, Field(max_length=40, json_schema_extra={
    "enum": sorted({*ALERT_TYPES, *(c.value for c in Category)})})]


class WebhookFilters(BaseModel):
    types: list[TypeOrCategory] = Field(default_factory=list,
                                        description="Alert types or categories; empty: all")
    severities: list[Severity] = Field(default_factory=list)
    jurisdictions: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list)
    changes: list[Change] = Field(default_factory=list,
                                  description="e.g. ['resolved'] for confirmed outcomes")


class WebhookCreate(WebhookFilters):
    name: str = Field(min_length=1, max_length=100)
    url: AnyHttpUrl
    secret: str | None = Field(None, min_length=16, max_length=200,
                               description="Signing secret; generated when omitted")


class WebhookUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=100)
    url: AnyHttpUrl | None = None
    active: bool | None = None
    types: list[TypeOrCategory] | None = None
    severities: list[Severity] | None = None
    jurisdictions: list[Annotated[str, Field(max_length=100)]] | None = None
    changes: list[Change] | None = None


class WebhookPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    url: str
    active: bool
    types: list[str]
    severities: list[str]
    jurisdictions: list[str]
    changes: list[str]
    created_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str
    """Shown here once; the receiver verifies X-Firewarden-Signature with it."""


class DeliveryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: int
    alert_id: int
    change: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str
    response_code: int | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveriesPublic(BaseModel):
    data: list[DeliveryPublic]
    count: int


def _unknown_types(types: list[str] | None) -> None:
    known = {*ALERT_TYPES, *(c.value for c in Category)}
    for index, name in enumerate(types or []):
        if name not in known:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
                "loc": ["body", "types", index], "type": "unknown_alert_type",
                "msg": f"unknown alert type or category {name!r}"}])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_webhook(request: WebhookCreate, session: SessionDep, _: Admin) -> WebhookCreated:
    _unknown_types(request.types)
    row = WebhookRow(name=request.name, url=str(request.url),
                     secret=request.secret or secrets.token_urlsafe(32), types=request.types,
                     severities=[s.value for s in request.severities],
                     jurisdictions=request.jurisdictions, changes=list(request.changes),
                     active=True)
    session.add(row)
    await session.commit()
    return WebhookCreated(**WebhookPublic.model_validate(row).model_dump(), secret=row.secret)


@router.get("")
async def list_webhooks(session: SessionDep, _: Admin) -> list[WebhookPublic]:
    rows = (await session.scalars(select(WebhookRow).order_by(WebhookRow.id))).all()
    return [WebhookPublic.model_validate(r) for r in rows]


async def _get(session: SessionDep, webhook_id: RowId) -> WebhookRow:
    row = await session.get(WebhookRow, webhook_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no webhook {webhook_id}")
    return row


@router.patch("/{webhook_id}")
async def update_webhook(webhook_id: RowId, request: WebhookUpdate, session: SessionDep,
                         _: Admin) -> WebhookPublic:
    _unknown_types(request.types)
    row = await _get(session, webhook_id)
    for name, value in request.model_dump(exclude_unset=True).items():
        setattr(row, name, str(value) if name == "url" else value)
    await session.commit()
    return WebhookPublic.model_validate(row)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: RowId, session: SessionDep, _: Admin) -> Response:
    await session.delete(await _get(session, webhook_id))
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries")
async def list_deliveries(
    webhook_id: RowId, session: SessionDep, _: Admin,
    status_: Annotated[Literal["pending", "delivered", "failed"] | None,
                       Query(alias="status")] = None,
    offset: Offset = 0, limit: Limit = 100,
) -> DeliveriesPublic:
    """The delivery log, newest first: attempts, last response, last error."""
    await _get(session, webhook_id)
    where = [WebhookDeliveryRow.webhook_id == webhook_id]
    if status_:
        where.append(WebhookDeliveryRow.status == status_)
    count = await session.scalar(select(func.count()).select_from(WebhookDeliveryRow)
                                 .where(*where))
    rows = (await session.scalars(select(WebhookDeliveryRow).where(*where)
                                  .order_by(WebhookDeliveryRow.id.desc())
                                  .limit(limit).offset(offset))).all()
    return DeliveriesPublic(data=[DeliveryPublic.model_validate(r) for r in rows],
                            count=count or 0)
