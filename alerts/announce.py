"""Turning stored alert history rows into announced changes.

Whoever changes an alert (the recorder for device-driven changes, the API for
operators' actions, the reminder loop) does the same three steps: ``prepare``
inside its transaction (which also queues the webhook deliveries, so they are
durable with the change), commit, then ``announce`` to the live subscribers.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.bus import AlertBus
from alerts.schemas import AlertChange, AlertPublic
from alerts.store import AlertEvent
from alerts.tables import AlertRow
from alerts.webhooks import WebhookDispatcher, queue_deliveries


class Announcer:
    def __init__(self, bus: AlertBus, webhooks: WebhookDispatcher | None = None) -> None:
        self.bus = bus
        self.webhooks = webhooks

    async def prepare(self, session: AsyncSession, events: list[AlertEvent]
                      ) -> list[AlertChange]:
        if not events:
            return []
        ids = sorted({e.alert_id for e in events})
        rows = {row.id: row for row in (await session.scalars(
            select(AlertRow).where(AlertRow.id.in_(ids))
            .execution_options(populate_existing=True))).all()}
        changes = [AlertChange(id=e.id, action=e.action, at=e.at, actor=e.actor, note=e.note,
                               alert=AlertPublic.model_validate(rows[e.alert_id]))
                   for e in events]
        await queue_deliveries(session, changes)
        return changes

    def announce(self, changes: list[AlertChange]) -> None:
        if not changes:
            return
        self.bus.publish(changes)
        if self.webhooks is not None:
            self.webhooks.wake()
