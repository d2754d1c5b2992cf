"""Applying rule actions to the alert tables, inside the caller's transaction.

Deduplication is the database's job: the partial unique index ``uq_alerts_open``
admits one unresolved alert per (device, type, subject), and a raise is an
``INSERT ... ON CONFLICT DO UPDATE`` against it, so two ingest workers raising
the same alert at the same moment end with one alert counted twice.

A message the broker delivers again (the process died after the alert committed
but before the PUBACK) is recognised by its timestamp and changes nothing: a repeat
counts only if it is later than the alert's ``last_seen_at`` or, if not, when no
history row of that alert has its exact time and details.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    TextClause,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
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


async def add_event(session: AsyncSession, alert_id: int, action: str, at: datetime, *,
                    actor: str = "system", note: str = "",
                    details: dict[str, Any] | None = None) -> AlertEvent:
    [event] = await add_events(session, [{"alert_id": alert_id, "action": action, "at": at,
                                          "actor": actor, "note": note,
                                          "details": details or {}}])
    return event


async def apply(session: AsyncSession, actions: list[Action], policy: Policy
                ) -> list[AlertEvent]:
    """Apply actions in order; returns the alert history rows they added.

    Consecutive raises are applied together (see :func:`raise_alerts`): a burst of
    offline deadlines or a flood of alarms costs a few statements, not a few each.
    """
    events: list[AlertEvent] = []
    raises: list[Raise] = []
    for action in actions:
        if isinstance(action, Raise):
            if any(_key(r) == _key(action) for r in raises):  # same alert twice: in order
                events += await raise_alerts(session, raises, policy)
                raises = []
            raises.append(action)
            continue
        if raises:
            events += await raise_alerts(session, raises, policy)
            raises = []
        if isinstance(action, Clear):
            events += await clear_alerts(session, action)
        elif isinstance(action, Record):
            event = await record_on_open(session, action)
            if event is not None:
                events.append(event)
        elif isinstance(action, SaveState):
            await save_state(session, action)
        elif isinstance(action, AnswerDutyCheck):
            events += await answer_duty_check(session, action)
    if raises:
        events += await raise_alerts(session, raises, policy)
    return events


def _key(action: Raise) -> tuple[str, str, str]:
    return action.device_id, action.type, action.subject


def _reminder_at(row_type: str, suppressed: bool, at: datetime, policy: Policy
                 ) -> datetime | None:
    critical = alert_type(row_type).severity is Severity.CRITICAL
    return at + timedelta(seconds=policy.reminder_interval_s) if critical and not suppressed \
        else None


async def raise_alerts(session: AsyncSession, actions: list[Raise], policy: Policy
                       ) -> list[AlertEvent]:
    """Raise alerts with distinct keys: each opens an alert, counts a repeat on the open
    one, or reopens one auto-resolved within the flap cool-down.

    One query finds what exists for all of them, new alerts go in one INSERT (with
    ``ON CONFLICT`` against ``uq_alerts_open``: another worker may have opened the
    same alert a moment ago) and the history rows in another.
    """
    cooldown = timedelta(seconds=policy.flap_cooldown_s)
    previous = await _previous_alerts(session, actions, cooldown)
    outcome: list[tuple[Raise, str, int | None]] = []  # (action, history action, alert id)
    new: list[dict[str, Any]] = []
    not_later: list[tuple[Raise, _Prior]] = []  # repeats no later than the alert's last_seen
    for action in actions:
        kind = alert_type(action.type)
        at = at_ms(action.at_ms)
        details = _details(action)
        prior = previous.get(_key(action))
        if kind.category is Category.TEST:  # a self-test is recorded as a test, never paged
            new.append(_new_row(action, at, policy, status=Status.RESOLVED, resolved_at=at,
                                resolved_by="device", outcome=Outcome.TEST, auto_resolved=True))
            outcome.append((action, "recorded", None))
        elif prior is not None and prior.status != Status.RESOLVED:  # a repeat: counted
            # The WHERE makes this atomic: of two workers handed the same message, the
            # second finds last_seen_at already moved and updates nothing.
            result = await session.execute(update(AlertRow).where(
                AlertRow.id == prior.id, AlertRow.last_seen_at < at).values(
                count=AlertRow.count + 1, last_seen_at=at, details={**prior.details, **details}))
            if cast(CursorResult[Any], result).rowcount:
                outcome.append((action, "repeated", prior.id))
            else:
                not_later.append((action, prior))
        elif (prior is not None and kind.auto_resolves and prior.resolved_at is not None
              and at - cooldown <= prior.resolved_at < at):  # flap suppression: reopened
            await session.execute(update(AlertRow).where(AlertRow.id == prior.id).values(
                status=Status.OPEN, resolved_at=None, resolved_by=None, auto_resolved=False,
                outcome=None, acknowledged_at=None, acknowledged_by=None,
                reopened=AlertRow.reopened + 1, count=AlertRow.count + 1, last_seen_at=at,
                suppressed=action.suppressed, details=details,
                next_reminder_at=_reminder_at(action.type, action.suppressed, at, policy)))
            outcome.append((action, "reopened", prior.id))
        elif prior is not None and prior.resolved_at is not None and at <= prior.resolved_at:
            not_later.append((action, prior))  # from before the resolve: a redelivery?
        else:
            new.append(_new_row(action, at, policy, status=Status.OPEN))
            outcome.append((action, "raised", None))
    outcome += await _late_repeats(session, not_later)
    created = await _insert_alerts(session, new) if new else {}
    events = []
    for action, verb, known_id in outcome:
        if known_id is not None:
            alert_id, count = known_id, 0
        elif _key(action) in created:
            alert_id, count = created[_key(action)]
        else:  # another worker stored this very message a moment ago
            continue
        events.append({"alert_id": alert_id, "action": "repeated" if count > 1 else verb,
                       "at": at_ms(action.at_ms), "actor": "device", "note": "",
                       "details": _details(action)})
    return await add_events(session, events)


_RAISING = ("raised", "repeated", "reopened", "recorded")


async def _late_repeats(session: AsyncSession, candidates: list[tuple[Raise, _Prior]]
                        ) -> list[tuple[Raise, str, int | None]]:
    """Of raises no later than their alert's last sighting, count those not seen before
    (a late message from a device's buffer, or another message of the same moment); a
    redelivered message, the same time with the same details, changes nothing."""
    if not candidates:
        return []
    seen = {(alert_id, at, _canonical(details)) for alert_id, at, details in
            await session.execute(
                select(AlertEventRow.alert_id, AlertEventRow.at, AlertEventRow.details).where(
                    AlertEventRow.alert_id.in_({prior.id for _, prior in candidates}),
                    AlertEventRow.at.in_({at_ms(a.at_ms) for a, _ in candidates}),
                    AlertEventRow.action.in_(_RAISING)))}
    late: list[tuple[Raise, str, int | None]] = []
    for action, prior in candidates:
        if (prior.id, at_ms(action.at_ms), _canonical(_details(action))) in seen:
            continue
        await session.execute(update(AlertRow).where(AlertRow.id == prior.id).values(
            count=AlertRow.count + 1, details={**_details(action), **prior.details}))
        late.append((action, "repeated", prior.id))
    return late


def _canonical(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, default=str)


@dataclass(frozen=True, slots=True)
class _Prior:
    id: int
    status: str
    details: dict[str, Any]
    resolved_at: datetime | None


async def _previous_alerts(session: AsyncSession, actions: list[Raise], cooldown: timedelta
                           ) -> dict[tuple[str, str, str], _Prior]:
    """The open alert of each key, or else its latest auto-resolved one in the cool-down."""
    since = min(at_ms(a.at_ms) for a in actions) - cooldown
    wanted = {_key(a) for a in actions}
    devices = sorted({a.device_id for a in actions})
    found: dict[tuple[str, str, str], _Prior] = {}
    for start in range(0, len(devices), 500):
        rows = await session.execute(
            select(AlertRow.id, AlertRow.device_id, AlertRow.type, AlertRow.subject,
                   AlertRow.status, AlertRow.details, AlertRow.resolved_at)
            .where(AlertRow.device_id.in_(devices[start:start + 500]),
                   or_(UNRESOLVED, and_(AlertRow.auto_resolved.is_(True),
                                        AlertRow.resolved_at >= since))))
        for alert_id, device_id, type_, subject, status, details, resolved_at in rows:
            key = (device_id, type_, subject)
            if key not in wanted:
                continue
            prior = _Prior(alert_id, status, details, resolved_at)
            best = found.get(key)
            if (best is None or status != Status.RESOLVED
                    or (best.status == Status.RESOLVED and best.resolved_at is not None
                        and resolved_at is not None and resolved_at > best.resolved_at)):
                found[key] = prior
    return found


def _details(action: Raise) -> dict[str, Any]:
    return {k: v for k, v in action.details.items() if v is not None}


def _later(session: AsyncSession, at: datetime | ColumnElement[datetime]) -> Any:
    if dialect_name(session) == "sqlite":
        return func.max(AlertRow.last_seen_at, at)
    return func.greatest(AlertRow.last_seen_at, at)


def _new_row(action: Raise, at: datetime, policy: Policy, **values: Any) -> dict[str, Any]:
    kind = alert_type(action.type)
    return {"device_id": action.device_id, "type": action.type, "subject": action.subject,
            "category": kind.category.value, "severity": kind.severity.value,
            "kind": action.kind, "site_id": action.site_id, "jurisdiction": action.jurisdiction,
            "suppressed": action.suppressed, "opened_at": at, "last_seen_at": at, "count": 1,
            "details": _details(action), "updated_at": datetime.now(UTC),
            "next_reminder_at": (_reminder_at(action.type, action.suppressed, at, policy)
                                 if values["status"] == Status.OPEN else None),
            "resolved_at": None, "resolved_by": None, "outcome": None, "auto_resolved": False,
            **{k: (v.value if isinstance(v, Outcome | Status) else v)
               for k, v in values.items()}}


async def _insert_alerts(session: AsyncSession, rows: list[dict[str, Any]]
                         ) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(id, count) by key; count > 1 where another worker opened it first. A key is
    missing where that worker stored this very message (same time): nothing changes."""
    insert_ = postgresql_insert if dialect_name(session) == "postgresql" else sqlite_insert
    statement = insert_(AlertRow)
    upsert_ = statement.on_conflict_do_update(
        index_elements=["device_id", "type", "subject"], index_where=UNRESOLVED,
        set_={"count": AlertRow.count + 1, "updated_at": statement.excluded.updated_at,
              "last_seen_at": _later(session, statement.excluded.last_seen_at)},
        where=AlertRow.last_seen_at != statement.excluded.last_seen_at,
    ).returning(AlertRow.id, AlertRow.count, AlertRow.device_id, AlertRow.type,
                AlertRow.subject)
    result = await session.execute(upsert_, rows)
    return {(device, type_, subject): (alert_id, count)
            for alert_id, count, device, type_, subject in result}


async def add_events(session: AsyncSession, rows: list[dict[str, Any]]) -> list[AlertEvent]:
    """History rows by a Core insert (an ORM add + flush per row walks the whole session,
    which made a batch of raises quadratic)."""
    if not rows:
        return []
    result = await session.execute(
        insert(AlertEventRow).returning(AlertEventRow.id, sort_by_parameter_order=True), rows)
    return [AlertEvent(id=r[0], **row) for r, row in zip(result, rows, strict=True)]


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
