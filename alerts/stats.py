"""The figures fire departments report weekly and monthly (周汇报、月总结、排名).

Alerts opened in the period (suppressed ones left out) by type and severity;
fire alarms by outcome and the false-alarm rate; how fast alerts were
acknowledged and resolved; the fleet's state and availability; duty checks
answered in time; the units with the most open hazards.  Optionally the same
per site, jurisdiction, site category or device kind.  Computed in Python from
the period's rows: a week of a city's alerts is thousands of rows, not millions.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.catalog import ALERT_TYPES, Category, Outcome, Status
from alerts.tables import UNRESOLVED, AlertRow, DutyCheckRow
from devices.registry.tables import DeviceRow, DeviceStatusRow, SiteRow

GroupBy = Literal["site", "jurisdiction", "category", "kind"]


class Durations(BaseModel):
    count: int
    median_s: float | None
    p90_s: float | None


class FireAlarms(BaseModel):
    total: int
    real_fire: int
    false_alarm: int
    test: int
    open: int
    false_alarm_rate: float | None
    """false alarms / (real fires + false alarms) among those closed; None when none."""


class Fleet(BaseModel):
    devices: int
    online: int
    offline: int
    never_seen: int
    maintenance: int
    decommissioned: int
    availability: float | None
    """Share of device-time not offline over the period (offline alerts), active devices."""


class DutyChecks(BaseModel):
    sent: int
    answered_in_time: int
    missed: int
    pending: int
    answered_rate: float | None
    response: Durations


class RankedUnit(BaseModel):
    site_id: str
    name: str
    jurisdiction: str
    open_hazards: int


class GroupFigures(BaseModel):
    key: str
    alerts: int
    critical: int
    fire_alarms: int
    false_alarms: int
    false_alarm_rate: float | None
    hazards: int
    open_hazards: int


class Summary(BaseModel):
    start: datetime
    end: datetime
    alerts: int
    by_type: dict[str, int]
    by_severity: dict[str, int]
    fire_alarms: FireAlarms
    time_to_acknowledge: Durations
    time_to_resolve: Durations
    fleet: Fleet
    duty_checks: DutyChecks
    ranking: list[RankedUnit]
    """Units with the most open hazards, worst first (at most 10)."""
    group_by: GroupBy | None = None
    groups: list[GroupFigures] = []


def durations(values: Iterable[float]) -> Durations:
    data = sorted(values)
    if not data:
        return Durations(count=0, median_s=None, p90_s=None)
    p90 = data[min(len(data) - 1, round(0.9 * (len(data) - 1)))]
    return Durations(count=len(data), median_s=round(statistics.median(data), 1),
                     p90_s=round(p90, 1))


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def summary(session: AsyncSession, start: datetime, end: datetime, now: datetime,
                  group_by: GroupBy | None = None) -> Summary:
    sites = {s.id: s for s in (await session.scalars(select(SiteRow))).all()}
    alerts = (await session.scalars(select(AlertRow).where(
        AlertRow.opened_at >= start, AlertRow.opened_at < end,
        AlertRow.suppressed.is_(False)))).all()
    fires = [a for a in alerts if a.category == Category.FIRE]
    outcomes = Counter(a.outcome for a in fires if a.status == Status.RESOLVED)
    closed = outcomes[Outcome.REAL_FIRE] + outcomes[Outcome.FALSE_ALARM]
    fire = FireAlarms(total=len(fires), real_fire=outcomes[Outcome.REAL_FIRE],
                      false_alarm=outcomes[Outcome.FALSE_ALARM], test=outcomes[Outcome.TEST],
                      open=sum(1 for a in fires if a.status != Status.RESOLVED),
                      false_alarm_rate=_rate(outcomes[Outcome.FALSE_ALARM], closed))
    acknowledged = [(a.acknowledged_at - a.opened_at).total_seconds()
                    for a in alerts if a.acknowledged_at is not None]
    resolved = [(a.resolved_at - a.opened_at).total_seconds() for a in alerts
                if a.resolved_at is not None and not a.auto_resolved
                and a.category != Category.TEST]

    open_hazards = (await session.execute(
        select(AlertRow.site_id, func.count()).where(
            AlertRow.category == Category.HAZARD, UNRESOLVED, AlertRow.suppressed.is_(False),
            AlertRow.site_id.is_not(None)).group_by(AlertRow.site_id))).all()
    hazards_by_site = {site_id: n for site_id, n in open_hazards}
    ranking = [RankedUnit(site_id=site_id, name=sites[site_id].name if site_id in sites else "",
                          jurisdiction=sites[site_id].jurisdiction if site_id in sites else "",
                          open_hazards=n)
               for site_id, n in sorted(hazards_by_site.items(), key=lambda x: (-x[1], x[0]))
               if n > 0][:10]

    result = Summary(
        start=start, end=end, alerts=len(alerts),
        by_type=dict(sorted(Counter(a.type for a in alerts).items())),
        by_severity=dict(sorted(Counter(a.severity for a in alerts).items())),
        fire_alarms=fire, time_to_acknowledge=durations(acknowledged),
        time_to_resolve=durations(resolved), fleet=await _fleet(session, start, end, now),
        duty_checks=await _duty_checks(session, start, end), ranking=ranking,
        group_by=group_by)
    if group_by is not None:
        result.groups = _groups(alerts, sites, hazards_by_site, group_by)
    return result


def _group_key(alert: AlertRow, sites: dict[str, SiteRow], group_by: GroupBy) -> str:
    if group_by == "site":
        return alert.site_id or "(unregistered)"
    if group_by == "jurisdiction":
        return alert.jurisdiction or "(unregistered)"
    if group_by == "kind":
        return alert.kind
    site = sites.get(alert.site_id or "")
    return site.category if site else "(unregistered)"


def _groups(alerts: Iterable[AlertRow], sites: dict[str, SiteRow],
            hazards_by_site: dict[str | None, int], group_by: GroupBy) -> list[GroupFigures]:
    members: dict[str, list[AlertRow]] = defaultdict(list)
    for alert in alerts:
        members[_group_key(alert, sites, group_by)].append(alert)
    open_by_group: Counter[str] = Counter()
    for site_id, n in hazards_by_site.items():
        site = sites.get(site_id or "")
        key = {"site": site_id or "", "jurisdiction": site.jurisdiction if site else "",
               "category": site.category if site else "", "kind": ""}[group_by]
        if key:
            open_by_group[key] += n
    groups = []
    for key in sorted(set(members) | set(open_by_group)):
        rows = members.get(key, [])
        fires = [a for a in rows if a.category == Category.FIRE]
        false = sum(1 for a in fires if a.outcome == Outcome.FALSE_ALARM)
        real = sum(1 for a in fires if a.outcome == Outcome.REAL_FIRE)
        groups.append(GroupFigures(
            key=key, alerts=len(rows), critical=sum(1 for a in rows if a.severity == "critical"),
            fire_alarms=len(fires), false_alarms=false, false_alarm_rate=_rate(false, false + real),
            hazards=sum(1 for a in rows if a.category == Category.HAZARD),
            open_hazards=open_by_group.get(key, 0)))
    return sorted(groups, key=lambda g: (-g.alerts, g.key))


async def _fleet(session: AsyncSession, start: datetime, end: datetime, now: datetime) -> Fleet:
    rows = (await session.execute(
        select(DeviceRow.state, DeviceRow.maintenance_until, DeviceStatusRow.offline_at)
        .outerjoin(DeviceStatusRow, DeviceStatusRow.device_id == DeviceRow.id))).all()
    counts: Counter[str] = Counter()
    for state, until, offline_at in rows:
        if state == "decommissioned":
            counts["decommissioned"] += 1
        elif state == "maintenance" and until is not None and until > now:
            counts["maintenance"] += 1
        elif offline_at is None:
            counts["never_seen"] += 1
        elif offline_at > now:
            counts["online"] += 1
        else:
            counts["offline"] += 1
    active = len(rows) - counts["decommissioned"]
    period_end = min(end, now)
    span = (period_end - start).total_seconds()
    offline_s = 0.0
    if active and span > 0:
        for opened, closed in (await session.execute(
                select(AlertRow.opened_at, AlertRow.resolved_at).where(
                    AlertRow.type == "offline", AlertRow.opened_at < period_end,
                    or_(AlertRow.resolved_at.is_(None), AlertRow.resolved_at > start)))).all():
            offline_s += max(0.0, (min(closed or period_end, period_end)
                                   - max(opened, start)).total_seconds())
    availability = round(1 - offline_s / (active * span), 4) if active and span > 0 else None
    return Fleet(devices=len(rows), online=counts["online"], offline=counts["offline"],
                 never_seen=counts["never_seen"], maintenance=counts["maintenance"],
                 decommissioned=counts["decommissioned"], availability=availability)


async def _duty_checks(session: AsyncSession, start: datetime, end: datetime) -> DutyChecks:
    checks = (await session.execute(
        select(DutyCheckRow.status, DutyCheckRow.requested_at, DutyCheckRow.answered_at)
        .where(DutyCheckRow.requested_at >= start, DutyCheckRow.requested_at < end))).all()
    status = Counter(c[0] for c in checks)
    answered = status["answered"]
    return DutyChecks(sent=len(checks), answered_in_time=answered, missed=status["missed"],
                      pending=status["pending"],
                      answered_rate=_rate(answered, answered + status["missed"]),
                      response=durations((c[2] - c[1]).total_seconds() for c in checks
                                         if c[0] == "answered" and c[2] is not None))


CSV_COLUMNS = ["group", "alerts", "critical", "fire_alarms", "real_fire", "false_alarm",
               "test", "false_alarm_rate", "hazards", "open_hazards", "ack_median_s",
               "ack_p90_s", "resolve_median_s", "resolve_p90_s", "duty_checks_sent",
               "duty_checks_answered_in_time", "duty_checks_missed", "devices", "online",
               "offline", "maintenance", "availability"]


def to_csv(result: Summary) -> str:
    """One row for the whole period (``all``), then one per group; UTF-8 with a BOM so
    Excel shows Chinese names."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(["period", result.start.isoformat(), result.end.isoformat()])
    writer.writerow(CSV_COLUMNS)
    fire, fleet, duty = result.fire_alarms, result.fleet, result.duty_checks
    total: dict[str, Any] = {
        "group": "all", "alerts": result.alerts, "critical": result.by_severity.get("critical", 0),
        "fire_alarms": fire.total, "real_fire": fire.real_fire, "false_alarm": fire.false_alarm,
        "test": fire.test, "false_alarm_rate": fire.false_alarm_rate,
        "hazards": sum(n for t, n in result.by_type.items() if t in _HAZARD_TYPES),
        "open_hazards": sum(u.open_hazards for u in result.ranking),
        "ack_median_s": result.time_to_acknowledge.median_s,
        "ack_p90_s": result.time_to_acknowledge.p90_s,
        "resolve_median_s": result.time_to_resolve.median_s,
        "resolve_p90_s": result.time_to_resolve.p90_s, "duty_checks_sent": duty.sent,
        "duty_checks_answered_in_time": duty.answered_in_time, "duty_checks_missed": duty.missed,
        "devices": fleet.devices, "online": fleet.online, "offline": fleet.offline,
        "maintenance": fleet.maintenance, "availability": fleet.availability}
    writer.writerow(["" if total.get(c) is None else total[c] for c in CSV_COLUMNS])
    for group in result.groups:
        row = {"group": group.key, "alerts": group.alerts, "critical": group.critical,
               "fire_alarms": group.fire_alarms, "false_alarm": group.false_alarms,
               "false_alarm_rate": group.false_alarm_rate, "hazards": group.hazards,
               "open_hazards": group.open_hazards}
        writer.writerow(["" if row.get(c) is None else row[c] for c in CSV_COLUMNS])
    return out.getvalue()


_HAZARD_TYPES = frozenset(t.name for t in ALERT_TYPES.values()
                          if t.category is Category.HAZARD)


def to_text(result: Summary) -> str:
    """A plain summary for the terminal (``firewarden report``)."""
    fire, fleet, duty = result.fire_alarms, result.fleet, result.duty_checks

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.1f} %"

    def secs(d: Durations) -> str:
        return "-" if d.median_s is None else f"median {d.median_s:.0f} s, p90 {d.p90_s:.0f} s"

    lines = [f"Firewarden report {result.start:%Y-%m-%d %H:%M} to {result.end:%Y-%m-%d %H:%M} UTC",
             f"alerts: {result.alerts} ("
             + ", ".join(f"{k} {v}" for k, v in result.by_severity.items()) + ")",
             "  by type: " + (", ".join(f"{k} {v}" for k, v in result.by_type.items()) or "-"),
             f"fire alarms: {fire.total}: real {fire.real_fire}, false {fire.false_alarm}, "
             f"test {fire.test}, open {fire.open}; false-alarm rate {pct(fire.false_alarm_rate)}",
             f"time to acknowledge: {secs(result.time_to_acknowledge)}",
             f"time to resolve: {secs(result.time_to_resolve)}",
             f"devices: {fleet.devices}: online {fleet.online}, offline {fleet.offline}, "
             f"never seen {fleet.never_seen}, maintenance {fleet.maintenance}; availability "
             f"{pct(fleet.availability)}",
             f"duty checks: {duty.sent} sent, {duty.answered_in_time} answered in time, "
             f"{duty.missed} missed ({pct(duty.answered_rate)})"]
    if result.ranking:
        lines.append("most open hazards: " + ", ".join(
            f"{u.name or u.site_id} ({u.jurisdiction}) {u.open_hazards}" for u in result.ranking))
    for group in result.groups:
        lines.append(f"  {result.group_by} {group.key}: {group.alerts} alerts, "
                     f"{group.fire_alarms} fire alarms ({group.false_alarms} false), "
                     f"{group.open_hazards} open hazards")
    return "\n".join(lines)
