"""Outbound webhooks: alert changes POSTed to other systems (e.g. a 119 dispatch gateway).

Deliveries are rows written in the same transaction as the change they carry,
so none is lost to a crash; a dispatcher in each process sends the due ones.
A delivery is claimed with a conditional update (a lease) before it is sent,
so two processes never send the same one at the same time.  Failures are
retried with exponential backoff up to ``MAX_ATTEMPTS``; every attempt's result
is kept on the delivery (the delivery log).

Each request carries ``X-Firewarden-Signature: sha256=<hex>``, the HMAC-SHA256
of ``<X-Firewarden-Timestamp>.<body>`` under the webhook's secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.schemas import AlertChange
from alerts.tables import WebhookDeliveryRow, WebhookRow
from firewarden.aio import wait_any

_LOGGER = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
LEASE = timedelta(seconds=30)
CLAIM_BATCH = 50


def matches(hook: WebhookRow, change: AlertChange) -> bool:
    alert = change.alert
    return (not alert.suppressed
            and (not hook.types or alert.type in hook.types or alert.category in hook.types)
            and (not hook.severities or alert.severity in hook.severities)
            and (not hook.jurisdictions or alert.jurisdiction in hook.jurisdictions)
            and (not hook.changes or change.action in hook.changes))


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s ... capped at 10 minutes."""
    return timedelta(seconds=min(600, 2 ** max(0, attempts - 1)))


async def queue_deliveries(session: AsyncSession, changes: list[AlertChange]) -> None:
    if not changes:
        return
    hooks = (await session.scalars(select(WebhookRow).where(WebhookRow.active.is_(True)))).all()
    now = datetime.now(UTC)
    for change in changes:
        for hook in hooks:
            if matches(hook, change):
                session.add(WebhookDeliveryRow(
                    webhook_id=hook.id, event_id=change.id, alert_id=change.alert.id,
                    change=change.action, body=change.model_dump_json(), status="pending",
                    attempts=0, next_attempt_at=now))


class WebhookDispatcher:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *,
                 client: httpx.AsyncClient | None = None, timeout_s: float = 5.0) -> None:
        self._sessions = sessions
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                try:
                    sent = await self.send_due()
                except Exception:
                    _LOGGER.exception("webhook dispatch failed; retrying")
                    sent = 0
                if sent == 0:
                    await wait_any(self._wake, stop, seconds=1.0)
                    self._wake.clear()
        finally:
            await self._client.aclose()

    async def send_due(self) -> int:
        """Claim and send the due deliveries; returns how many were attempted."""
        now = datetime.now(UTC)
        async with self._sessions() as session:
            due = (await session.execute(
                select(WebhookDeliveryRow.id, WebhookDeliveryRow.next_attempt_at)
                .where(WebhookDeliveryRow.status == "pending",
                       WebhookDeliveryRow.next_attempt_at <= now)
                .order_by(WebhookDeliveryRow.id).limit(CLAIM_BATCH))).all()
            claimed: list[int] = []
            for delivery_id, next_at in due:
                result = await session.execute(
                    update(WebhookDeliveryRow)
                    .where(WebhookDeliveryRow.id == delivery_id,
                           WebhookDeliveryRow.next_attempt_at == next_at,
                           WebhookDeliveryRow.status == "pending")
                    .values(next_attempt_at=now + LEASE))
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(delivery_id)
            await session.commit()
            if not claimed:
                return 0
            rows = (await session.execute(
                select(WebhookDeliveryRow, WebhookRow)
                .join(WebhookRow, WebhookRow.id == WebhookDeliveryRow.webhook_id)
                .where(WebhookDeliveryRow.id.in_(claimed))
                .order_by(WebhookDeliveryRow.id))).all()
        results = await asyncio.gather(*(self._send(hook, delivery) for delivery, hook in rows))
        async with self._sessions() as session:
            for (delivery, _hook), (code, error) in zip(rows, results, strict=True):
                attempts = delivery.attempts + 1
                values: dict[str, object]
                if error is None:
                    values = {"status": "delivered", "delivered_at": datetime.now(UTC)}
                elif attempts >= MAX_ATTEMPTS:
                    values = {"status": "failed"}
                    _LOGGER.warning("webhook delivery %d gave up after %d attempts: %s",
                                    delivery.id, attempts, error)
                else:
                    values = {"next_attempt_at": datetime.now(UTC) + backoff(attempts)}
                await session.execute(update(WebhookDeliveryRow)
                                      .where(WebhookDeliveryRow.id == delivery.id)
                                      .values(attempts=attempts, response_code=code,
                                              last_error=error or "", **values))
            await session.commit()
        return len(rows)

    async def _send(self, hook: WebhookRow, delivery: WebhookDeliveryRow
                    ) -> tuple[int | None, str | None]:
        body = delivery.body.encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json",
                   "X-Firewarden-Event": delivery.change,
                   "X-Firewarden-Delivery": str(delivery.id),
                   "X-Firewarden-Timestamp": timestamp,
                   "X-Firewarden-Signature": sign(hook.secret, timestamp, body)}
        try:
            response = await self._client.post(hook.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return None, f"{type(error).__name__}: {error}"[:500]
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}: {response.text[:300]}"
