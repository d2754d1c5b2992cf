"""Rejected messages (the dead-letter store), for installers and admins."""

from __future__ import annotations

import base64
from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel

from dashboard_api.deps import Installer, Limit, Offset, ServicesDep, SessionDep

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])


class RejectedMessage(BaseModel):
    id: int
    received_at: datetime
    reason: str
    detail: str
    topic: str
    kind: str | None
    device_id: str | None
    payload: str
    """The first 1 KiB of the payload, as UTF-8 text where it is valid, else base64."""
    payload_encoding: str


class RejectedMessages(BaseModel):
    data: list[RejectedMessage]
    count: int
    counts_since_start: dict[str, int]
    """Rejections by reason since this process started (the Prometheus counters)."""


@router.get("/rejected")
async def list_rejected(
    session: SessionDep, services: ServicesDep, _: Installer,
    reason: str | None = None,
    offset: Offset = 0, limit: Limit = 100,
) -> RejectedMessages:
    """Rejected messages, newest first: topic, reason, time and the start of the payload."""
    if services.dead_letters is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no ingest in this process")
    await services.dead_letters.flush()
    rows, count = await services.dead_letters.list(session, reason=reason, limit=limit,
                                                   offset=offset)
    data = []
    for row in rows:
        try:
            text, encoding = row.payload.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(row.payload).decode(), "base64"
        data.append(RejectedMessage(
            id=row.id, received_at=row.received_at, reason=row.reason, detail=row.detail,
            topic=row.topic, kind=row.kind, device_id=row.device_id, payload=text,
            payload_encoding=encoding))
    counts = services.pipeline.metrics.snapshot()["rejected"]
    return RejectedMessages(data=data, count=count,
                            counts_since_start=counts)
