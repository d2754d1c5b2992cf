"""``GET /api/v1/alerts/stream``: alert changes as Server-Sent Events.

Each event has the change's id; reconnect with ``Last-Event-ID`` (header, or the
``last_event_id`` query parameter) to receive what was missed, in order.  Events:

- ``alert``: one change (raised, repeated, reopened, auto_resolved, acknowledged,
  resolved, note, reminded, escalated, ...), the JSON of ``AlertChange``;
- ``reset``: the gap is too old to replay (or the id unknown): reload, then
  reconnect without ``Last-Event-ID``; the stream ends;
- ``resync``: this client fell too far behind; reconnect with its last id;
- ``unauthorized``: the key was revoked; the stream ends.

A comment line is sent every ``FIREWARDEN_STREAM_KEEPALIVE_S`` so proxies keep
the connection open (and the key is checked again).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse

from alerts.catalog import Category, Severity
from alerts.schemas import AlertChange
from dashboard_api.deps import Reader, ServicesDep
from firewarden.keys import authenticate

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


def _sse(event: str, data: str, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


@router.get("/stream", response_class=StreamingResponse, responses={
    200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}})
async def alert_stream(
    request: Request, services: ServicesDep, principal: Reader,
    jurisdiction: Annotated[str | None, Query(max_length=100)] = None,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    category: Annotated[list[Category] | None, Query()] = None,
    type_: Annotated[list[str] | None, Query(alias="type", max_length=20)] = None,
    last_event_id: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Live alert changes, filtered per connection; suppressed alerts are never sent."""
    hub = services.stream
    if hub is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no alert stream here")
    if last_event_id is None and last_event_id_header:
        try:
            last_event_id = int(last_event_id_header)
        except ValueError:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
                "loc": ["header", "Last-Event-ID"], "type": "int_parsing",
                "msg": "Last-Event-ID must be an event id (an integer)"}]) from None
    severities = {s.value for s in severity or ()}
    categories = {c.value for c in category or ()}
    types = set(type_ or ())

    def accepts(change: AlertChange) -> bool:
        alert = change.alert
        return ((jurisdiction is None or alert.jurisdiction == jurisdiction)
                and (site_id is None or alert.site_id == site_id)
                and (not severities or alert.severity in severities)
                and (not categories or alert.category in categories)
                and (not types or alert.type in types))

    keepalive = services.settings.STREAM_KEEPALIVE_S
    key = request.headers.get("authorization", "").removeprefix("Bearer ").strip()

    async def events() -> AsyncIterator[str]:
        client = hub.connect(accepts)
        try:
            yield "retry: 2000\n\n"
            last = hub.last_id
            if last_event_id is not None:
                missed = await hub.replay(last_event_id, accepts)
                if missed is None:
                    yield _sse("reset", json.dumps({
                        "reason": "the changes since this id are no longer kept: reload"}))
                    return
                last = last_event_id
                for change in missed:
                    last = change.id
                    yield _sse("alert", change.model_dump_json(), change.id)
            while True:
                if client.overflowed:
                    yield _sse("resync", json.dumps({"reason": "fell behind", "last_id": last}))
                    return
                try:
                    change = await asyncio.wait_for(client.queue.get(), keepalive)
                except TimeoutError:
                    async with services.sessions() as session:
                        if await authenticate(session, key) is None:
                            yield _sse("unauthorized", json.dumps({"reason": "key revoked"}))
                            return
                    yield ": keepalive\n\n"
                    continue
                if change.id <= last:
                    continue  # already replayed
                last = change.id
                yield _sse("alert", change.model_dump_json(), change.id)
        finally:
            hub.disconnect(client)

    _ = principal
    return StreamingResponse(events(), media_type="text/event-stream", headers={
        "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
