"""Applying rule actions to the alert tables, inside the caller's transaction.

Deduplication is the database's job: the partial unique index ``uq_alerts_open``
admits one unresolved alert per (device, type, subject), and a raise is an
``INSERT ... ON CONFLICT DO UPDATE`` against it, so two ingest workers raising
the same alert at the same moment end with one alert counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, TextClause, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.actions import Action, AnswerDutyCheck, Clear, Raise, Record, SaveState
from alerts.catalog import Category, Outcome, Severity, Status, alert_type
from alerts.tables import UNRESOLVED, AlertEventRow, AlertRow, DutyCheckRow, RuleStateRow
from firewarden.database import upsert


@dataclass(frozen=True, slots=True)
class Policy:
    """Lifecycle settings (FIREWARDEN_ALERT_*)."""

    reminder_interval_s: float = 120.0
    reminders_per_escalation: int = 3
    flap_cooldown_s: float = 600.0


def dialect_name(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind else "sqlite"


def at_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One stored history row of an alert (what gets announced)."""

    id: int
    alert_id: int
    action: str
    at: datetime
    actor: str
    note: str
    details: dict[str, Any]


_INSERT_EVENT = insert(AlertEventRow).returning(AlertEventRow.id)


async def add_event(session: AsyncSession, alert_id: int, action: str, at: datetime, *,
                    actor: str = "system", note: str = "",
                    details: dict[str, Any] | None = None) -> AlertEvent:
    # A Core insert, not session.add + flush: a flush per row walks the whole session,
    # which made a batch of raises quadratic.
    values = {"alert_id": alert_id, "action": action, "at": at, "actor": actor, "note": note,
              "details": details or {}}
    event_id = (await session.execute(_INSERT_EVENT, values)).scalar_one()
    return AlertEvent(id=event_id, **values)  # type: ignore[arg-type]


async def apply(session: AsyncSession, actions: list[Action], policy: Policy
                ) -> list[AlertEvent]:
    """Apply actions in order; returns the alert history rows they added."""
    events: list[AlertEvent] = []
    for action in actions:
        if isinstance(action, Raise):
            events.append(await raise_alert(session, action, policy))
        elif isinstance(action, Clear):
            events += await clear_alerts(session, action)
        elif isinstance(action, Record):
            event = await record_on_open(session, action)
            if event is not None:
                events.append(event)
        elif isinstance(action, SaveState):
            await save_state(session, action)
        elif isinstance(action, AnswerDutyCheck):
            events += await answer_duty_check(session, action)
    return events


def _reminder_at(row_type: str, suppressed: bool, at: datetime, policy: Policy
                 ) -> datetime | None:
    critical = alert_type(row_type).severity is Severity.CRITICAL
    return at + timedelta(seconds=policy.reminder_interval_s) if critical and not suppressed \
        else None


async def raise_alert(session: AsyncSession, action: Raise, policy: Policy) -> AlertEvent:
    kind = alert_type(action.type)
    at = at_ms(action.at_ms)
    details = {k: v for k, v in action.details.items() if v is not None}
    if kind.category is Category.TEST:  # a self-test is recorded as a test, never paged
        row = AlertRow(device_id=action.device_id, type=action.type, subject=action.subject,
                       category=kind.category, severity=kind.severity, kind=action.kind,
                       site_id=action.site_id, jurisdiction=action.jurisdiction,
                       status=Status.RESOLVED, suppressed=action.suppressed, opened_at=at,
                       last_seen_at=at, resolved_at=at, resolved_by="device",
                       outcome=Outcome.TEST, auto_resolved=True, details=details)
        session.add(row)
        await session.flush()
        return await add_event(session, row.id, "recorded", at, actor="device", details=details)
    key = (AlertRow.device_id == action.device_id, AlertRow.type == action.type,
           AlertRow.subject == action.subject)

    # The open alert, or else the latest auto-resolved one within the flap cool-down.
    since = at - timedelta(seconds=policy.flap_cooldown_s)
    previous = (await session.execute(
        select(AlertRow.id, AlertRow.status, AlertRow.details).where(
            *key, or_(UNRESOLVED, and_(AlertRow.auto_resolved.is_(True),
                                       AlertRow.resolved_at >= since)))
        .order_by((AlertRow.status == Status.RESOLVED).asc(), AlertRow.resolved_at.desc())
        .limit(1))).first()
    if previous is not None and previous[1] != Status.RESOLVED:  # a repeat, counted on it
        await session.execute(update(AlertRow).where(AlertRow.id == previous[0]).values(
            count=AlertRow.count + 1, last_seen_at=func.max(AlertRow.last_seen_at, at)
            if dialect_name(session) == "sqlite" else func.greatest(AlertRow.last_seen_at, at),
            details={**previous[2], **details}))
        return await add_event(session, previous[0], "repeated", at, actor="device",
                               details=details)
    if previous is not None and kind.auto_resolves:  # flap suppression: reopen it
        await session.execute(update(AlertRow).where(AlertRow.id == previous[0]).values(
            status=Status.OPEN, resolved_at=None, resolved_by=None, auto_resolved=False,
            outcome=None, acknowledged_at=None, acknowledged_by=None,
            reopened=AlertRow.reopened + 1, count=AlertRow.count + 1, last_seen_at=at,
            suppressed=action.suppressed, details=details,
            next_reminder_at=_reminder_at(action.type, action.suppressed, at, policy)))
        return await add_event(session, previous[0], "reopened", at, actor="device",
                               details=details)

    insert_ = postgresql_insert if dialect_name(session) == "postgresql" else sqlite_insert
    statement = insert_(AlertRow).values(
        device_id=action.device_id, type=action.type, subject=action.subject,
        category=kind.category, severity=kind.severity, kind=action.kind,
        site_id=action.site_id, jurisdiction=action.jurisdiction, status=Status.OPEN,
        suppressed=action.suppressed, opened_at=at, last_seen_at=at, count=1, details=details,
        next_reminder_at=_reminder_at(action.type, action.suppressed, at, policy),
        updated_at=datetime.now(UTC))
    upsert_statement = statement.on_conflict_do_update(
        index_elements=["device_id", "type", "subject"], index_where=UNRESOLVED,
        # Another worker opened it a moment ago: count the repeat on its alert.
        set_={"count": AlertRow.count + 1, "updated_at": statement.excluded.updated_at},
    ).returning(AlertRow.id, AlertRow.count)
    alert_id, count = (await session.execute(upsert_statement)).one()
    action_name = "raised" if count == 1 else "repeated"
    return await add_event(session, alert_id, action_name, at, actor="device", details=details)


async def clear_alerts(session: AsyncSession, action: Clear) -> list[AlertEvent]:
    at = at_ms(action.at_ms)
    where: list[ColumnElement[bool] | TextClause] = [
        AlertRow.device_id == action.device_id, AlertRow.type.in_(action.types), UNRESOLVED]
    if action.subject is not None:
        where.append(AlertRow.subject == action.subject)
    cleared = (await session.execute(
        update(AlertRow).where(*where).values(
            status=Status.RESOLVED, resolved_at=at, resolved_by="device", auto_resolved=True,
            next_reminder_at=None).returning(AlertRow.id)
        .execution_options(synchronize_session=False))).scalars().all()
    return [await add_event(session, alert_id, "auto_resolved", at, actor="device",
                            note=action.reason) for alert_id in cleared]


async def record_on_open(session: AsyncSession, action: Record) -> AlertEvent | None:
    alert_id = await session.scalar(select(AlertRow.id).where(
        AlertRow.device_id == action.device_id, AlertRow.type == action.type,
        AlertRow.subject == action.subject, UNRESOLVED))
    if alert_id is None:
        return None
    at = at_ms(action.at_ms)
    await session.execute(update(AlertRow).where(AlertRow.id == alert_id)
                          .values(last_seen_at=func.coalesce(AlertRow.last_seen_at, at)))
    return await add_event(session, alert_id, action.action, at, actor="device",
                           details=action.details)


async def save_state(session: AsyncSession, action: SaveState) -> None:
    if action.state is None:
        await session.execute(delete(RuleStateRow).where(RuleStateRow.device_id == action.device_id,
                                                         RuleStateRow.rule == action.rule))
        return
    await upsert(session, RuleStateRow,
                 [{"device_id": action.device_id, "rule": action.rule, "state": action.state,
                   "updated_at": datetime.now(UTC)}],
                 key=["device_id", "rule"],
                 update={"state": lambda excluded, _c: excluded.state,
                         "updated_at": lambda excluded, _c: excluded.updated_at})


async def load_states(session: AsyncSession) -> list[tuple[str, str, dict[str, Any]]]:
    rows = await session.execute(select(RuleStateRow.device_id, RuleStateRow.rule,
                                        RuleStateRow.state))
    return [(r[0], r[1], r[2]) for r in rows]


async def answer_duty_check(session: AsyncSession, action: AnswerDutyCheck
                            ) -> list[AlertEvent]:
    """An answer in time marks the check answered and clears a lapse from an earlier
    missed check; a late answer is noted on the check but does not undo the lapse."""
    at = at_ms(action.at_ms)
    answered = (await session.execute(
        update(DutyCheckRow).where(DutyCheckRow.id == action.check_id,
                                   DutyCheckRow.device_id == action.device_id,
                                   DutyCheckRow.answered_at.is_(None))
        .values(answered_at=at, operator=action.operator)
        .returning(DutyCheckRow.status, DutyCheckRow.deadline_at)
        .execution_options(synchronize_session=False))).first()
    if answered is None:
        return []
    status, deadline = answered
    if status != "pending" or at > deadline:
        return []
    await session.execute(update(DutyCheckRow).where(DutyCheckRow.id == action.check_id)
                          .values(status="answered"))
    return await clear_alerts(session, Clear(device_id=action.device_id, types=("duty_lapse",),
                                             at_ms=action.at_ms, subject="duty_check",
                                             reason=f"duty check {action.check_id} answered"))
