"""What operators do to alerts: acknowledge, resolve with an outcome, add notes.

``open -> acknowledged -> resolved``; a fire alarm is resolved only with an
outcome (real fire, false alarm, test).  A change that the state does not
allow raises :class:`TransitionError` with the reason (the API's 409).  Each
change adds a history row; the caller commits and announces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.catalog import Outcome, Status, alert_type
from alerts.store import AlertEvent, add_event
from alerts.tables import AlertEventRow, AlertRow


class TransitionError(Exception):
    """The alert's state does not allow this change."""


class AlertNotFound(LookupError):
    pass


@dataclass(slots=True)
class AlertFilter:
    status: Sequence[str] | None = None
    type: Sequence[str] | None = None
    category: Sequence[str] | None = None
    severity: Sequence[str] | None = None
    site_id: str | None = None
    jurisdiction: str | None = None
    kind: str | None = None
    device_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_suppressed: bool = True


async def list_alerts(session: AsyncSession, f: AlertFilter, *, limit: int, offset: int
                      ) -> tuple[list[AlertRow], int]:
    where: list[ColumnElement[bool]] = []
    for column, values in ((AlertRow.status, f.status), (AlertRow.type, f.type),
                           (AlertRow.category, f.category), (AlertRow.severity, f.severity)):
        if values:
            where.append(column.in_(values))
    column_: Any
    for column_, value in ((AlertRow.site_id, f.site_id), (AlertRow.jurisdiction, f.jurisdiction),
                          (AlertRow.kind, f.kind), (AlertRow.device_id, f.device_id)):
        if value is not None:
            where.append(column_ == value)
    if f.since is not None:
        where.append(AlertRow.opened_at >= f.since)
    if f.until is not None:
        where.append(AlertRow.opened_at < f.until)
    if not f.include_suppressed:
        where.append(AlertRow.suppressed.is_(False))
    count = await session.scalar(select(func.count()).select_from(AlertRow).where(*where))
    rows = (await session.scalars(select(AlertRow).where(*where)
                                  .order_by(AlertRow.opened_at.desc(), AlertRow.id.desc())
                                  .limit(limit).offset(offset))).all()
    return list(rows), count or 0


async def get_alert(session: AsyncSession, alert_id: int, *, for_update: bool = False
                    ) -> AlertRow:
    query = select(AlertRow).where(AlertRow.id == alert_id)
    if for_update:
        query = query.with_for_update()
    row = await session.scalar(query.execution_options(populate_existing=True))
    if row is None:
        raise AlertNotFound(f"no alert {alert_id}")
    return row


async def history(session: AsyncSession, alert_id: int) -> list[AlertEventRow]:
    return list((await session.scalars(select(AlertEventRow)
                                       .where(AlertEventRow.alert_id == alert_id)
                                       .order_by(AlertEventRow.id))).all())


async def acknowledge(session: AsyncSession, alert_id: int, actor: str, note: str = ""
                      ) -> AlertEvent:
    row = await get_alert(session, alert_id, for_update=True)
    if row.status == Status.ACKNOWLEDGED:
        raise TransitionError(f"alert {alert_id} is already acknowledged "
                              f"(by {row.acknowledged_by})")
    if row.status == Status.RESOLVED:
        raise TransitionError(f"alert {alert_id} is resolved; it cannot be acknowledged")
    now = datetime.now(UTC)
    row.status, row.acknowledged_at, row.acknowledged_by = Status.ACKNOWLEDGED, now, actor
    row.next_reminder_at = None
    return await add_event(session, alert_id, "acknowledged", now, actor=actor, note=note)


async def resolve(session: AsyncSession, alert_id: int, actor: str, outcome: Outcome | None,
                  note: str = "") -> AlertEvent:
    row = await get_alert(session, alert_id, for_update=True)
    if row.status == Status.RESOLVED:
        raise TransitionError(f"alert {alert_id} is already resolved")
    if alert_type(row.type).needs_outcome and outcome is None:
        raise TransitionError(f"alert {alert_id} is a fire alarm: resolving it needs an "
                              "outcome (real_fire, false_alarm or test)")
    now = datetime.now(UTC)
    row.status, row.resolved_at, row.resolved_by = Status.RESOLVED, now, actor
    row.outcome = outcome.value if outcome else None
    row.auto_resolved, row.next_reminder_at = False, None
    return await add_event(session, alert_id, "resolved", now, actor=actor, note=note,
                           details={"outcome": row.outcome} if row.outcome else {})


async def add_note(session: AsyncSession, alert_id: int, actor: str, note: str
                   ) -> AlertEvent:
    await get_alert(session, alert_id)
    return await add_event(session, alert_id, "note", datetime.now(UTC), actor=actor, note=note)
