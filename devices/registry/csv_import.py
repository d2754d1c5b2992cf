"""Bulk registration from CSV (docs/registry-csv.md), and export in the same format.

Files may be UTF-8, UTF-8 with BOM, or GBK/GB18030 (what Excel writes on Chinese
systems).  Every bad row is reported with its line number and the reason.
Two modes:

- ``atomic`` (default): any bad row and nothing is written;
- ``partial``: the good rows are written, in one transaction, and the bad ones listed.

Importing the same file again changes nothing (rows equal to what is stored are
counted as unchanged).  ``dry_run`` validates and counts without writing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from devices.kinds import DEVICE_ID_PATTERN, DeviceKind
from devices.profiles import DEFAULT_PROFILES, ProfileOverride, effective_profile
from devices.registry.store import record_changes
from devices.registry.tables import DeviceRow, SiteRow
from firewarden.database import utcnow

SITE_COLUMNS = ("site_name", "site_category", "jurisdiction", "site_address", "min_operators",
                "contact_name", "contact_phone", "latitude", "longitude")
DEVICE_COLUMNS = ("location", "vendor", "model", "installer", "install_date", "report_interval_s")
REQUIRED = ("device_id", "kind", "site_id")
COLUMNS = (*REQUIRED, *SITE_COLUMNS, *DEVICE_COLUMNS)
CHUNK = 500

_SITE_COLUMN_FOR = {"site_name": "name", "site_category": "category",
                    "jurisdiction": "jurisdiction", "site_address": "address",
                    "min_operators": "min_operators", "contact_name": "contact_name",
                    "contact_phone": "contact_phone", "latitude": "latitude",
                    "longitude": "longitude"}
"""CSV column -> site table column."""

ImportMode = Literal["atomic", "partial"]
Progress = Callable[[int, int], None]


class CsvImportError(Exception):
    """The file as a whole cannot be read (encoding, header)."""


class ImportRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    device_id: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
    kind: DeviceKind
    site_id: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
    site_name: Annotated[str, Field(max_length=200)] | None = None
    site_category: Literal["key_unit", "small_venue", "residential", "other"] | None = None
    jurisdiction: Annotated[str, Field(max_length=100)] | None = None
    site_address: Annotated[str, Field(max_length=300)] | None = None
    min_operators: Annotated[int, Field(ge=0, le=20)] | None = None
    contact_name: Annotated[str, Field(max_length=100)] | None = None
    contact_phone: Annotated[str, Field(max_length=40)] | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    location: Annotated[str, Field(max_length=200)] = ""
    vendor: Annotated[str, Field(max_length=100)] = ""
    model: Annotated[str, Field(max_length=100)] = ""
    installer: Annotated[str, Field(max_length=100)] = ""
    install_date: date | None = None
    report_interval_s: int | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_missing(cls, value: object) -> object:
        return None if value == "" else value

    def site_values(self) -> dict[str, Any]:
        """Site columns the row sets (blank cells leave stored values alone)."""
        return {column: getattr(self, name) for name, column in _SITE_COLUMN_FOR.items()
                if getattr(self, name) is not None}

    def device_profile(self) -> dict[str, Any]:
        default = DEFAULT_PROFILES[self.kind].report_interval_s
        if self.report_interval_s is None or self.report_interval_s == default:
            return {}
        return ProfileOverride(report_interval_s=self.report_interval_s).values()


@dataclass(slots=True)
class RowError:
    line: int
    message: str
    device_id: str | None = None
    field: str | None = None


@dataclass(slots=True)
class ImportResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    sites_created: int = 0
    sites_updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    applied: bool = False
    dry_run: bool = False
    mode: ImportMode = "atomic"
    encoding: str = "utf-8"


def decode_csv(data: bytes) -> tuple[str, str]:
    """The text of the file and the encoding it was read with."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "strict"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise CsvImportError(f"line {line}: the file is neither UTF-8 nor GBK/GB18030") from None


def parse_rows(text: str) -> tuple[list[tuple[int, ImportRow]], list[RowError]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise CsvImportError(f"line 1: malformed header: {error}") from None
    if header is None:
        raise CsvImportError("line 1: the file is empty; expected a header row")
    names = [h.strip().lower() for h in header]
    while names and names[-1] == "":  # Excel sometimes adds empty trailing columns
        names.pop()
    missing = [c for c in REQUIRED if c not in names]
    unknown = [n for n in names if n not in COLUMNS]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if missing or unknown or duplicated:
        problems = []
        if missing:
            problems.append("missing column(s) " + ", ".join(missing))
        if unknown:
            problems.append("unknown column(s) " + ", ".join(unknown))
        if duplicated:
            problems.append("repeated column(s) " + ", ".join(duplicated))
        raise CsvImportError(f"line 1: {'; '.join(problems)}; columns are: {', '.join(COLUMNS)}")

    rows: list[tuple[int, ImportRow]] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    line = reader.line_num
    while True:
        start = line + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            errors.append(RowError(reader.line_num, f"malformed CSV: {error}"))
            break  # the reader cannot resynchronise after broken quoting
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue  # blank line
        extra = record[len(names):]
        if any(cell.strip() for cell in extra):
            errors.append(RowError(start, f"{len(record)} cells but the header has {len(names)}"))
            continue
        values = dict(zip(names, record, strict=False))
        try:
            row = ImportRow.model_validate(values)
        except ValidationError as error:
            first = error.errors()[0]
            name = str(first["loc"][0]) if first["loc"] else None
            errors.append(RowError(start, f"{name}: {first['msg']}" if name else first["msg"],
                                   values.get("device_id") or None, name))
            continue
        if row.device_id in seen:
            errors.append(RowError(start, f"device_id {row.device_id} is also on line "
                                   f"{seen[row.device_id]}", row.device_id, "device_id"))
            continue
        seen[row.device_id] = start
        rows.append((start, row))
    return rows, errors


async def import_csv(session: AsyncSession, data: bytes, *, mode: ImportMode = "atomic",
                     dry_run: bool = False, progress: Progress | None = None) -> ImportResult:
    """Validate and (unless dry_run, or atomic with errors) write; the caller commits."""
    text, encoding = decode_csv(data)
    rows, errors = parse_rows(text)
    result = ImportResult(rows=len(rows) + len(errors), errors=errors, dry_run=dry_run,
                          mode=mode, encoding=encoding)

    sites = await _load(session, SiteRow, {r.site_id for _, r in rows})
    devices = await _load(session, DeviceRow, {r.device_id for _, r in rows})
    site_plan = _plan_sites(rows, sites, errors)
    good: list[ImportRow] = []
    for line, row in rows:
        if line in site_plan.bad_lines:
            continue
        existing = devices.get(row.device_id)
        if existing is not None and existing.kind != row.kind.value:
            errors.append(RowError(line, f"kind: device is registered as {existing.kind}",
                                   row.device_id, "kind"))
            continue
        good.append(row)
    errors.sort(key=lambda e: e.line)
    if errors and mode == "atomic":
        return result

    now = utcnow()
    site_rows = {**{k: _site_dict(v) for k, v in sites.items()}, **site_plan.values}
    new_devices: list[dict[str, Any]] = []
    changed_devices: list[dict[str, Any]] = []
    for row in good:
        site = site_rows[row.site_id]
        profile = row.device_profile()
        kind = row.kind
        wanted = {"id": row.device_id, "kind": kind.value, "site_id": row.site_id,
                  "location": row.location, "vendor": row.vendor, "model": row.model,
                  "installer": row.installer, "install_date": row.install_date,
                  "profile": profile,
                  "offline_after_s": effective_profile(
                      kind, (site.get("profiles") or {}).get(kind.value), profile
                  ).offline_after_s}
        existing = devices.get(row.device_id)
        if existing is None:
            new_devices.append({**wanted, "state": "active", "created_at": now,
                                "updated_at": now})
        elif any(getattr(existing, k) != v for k, v in wanted.items()):
            changed_devices.append({**wanted, "updated_at": now})
        else:
            result.unchanged += 1
    result.created, result.updated = len(new_devices), len(changed_devices)
    result.sites_created, result.sites_updated = len(site_plan.created), len(site_plan.updated)
    if dry_run:
        return result

    total = len(new_devices) + len(changed_devices)
    done = 0
    for site_id in site_plan.created:
        session.add(SiteRow(id=site_id, **{k: v for k, v in site_plan.values[site_id].items()
                                           if k != "id"}, created_at=now, updated_at=now))
    await session.flush()
    if site_plan.updated:
        await session.execute(update(SiteRow), [
            {"id": s, **{k: v for k, v in site_plan.values[s].items()
                         if k in _SITE_COLUMN_FOR.values()},
             "updated_at": now} for s in site_plan.updated])
    for statement, rows_ in ((insert(DeviceRow), new_devices),
                             (update(DeviceRow), changed_devices)):
        for chunk_start in range(0, len(rows_), CHUNK):
            chunk = rows_[chunk_start:chunk_start + CHUNK]
            await session.execute(statement, chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    await record_changes(session, device_ids=[d["id"] for d in new_devices + changed_devices],
                         site_ids=list(site_plan.updated))
    result.applied = True
    return result


@dataclass(slots=True)
class _SitePlan:
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    bad_lines: set[int] = field(default_factory=set)


def _plan_sites(rows: list[tuple[int, ImportRow]], stored: dict[str, SiteRow],
                errors: list[RowError]) -> _SitePlan:
    """What each site should become; rows that disagree about a site are errors."""
    plan = _SitePlan()
    wanted: dict[str, tuple[int, dict[str, Any]]] = {}
    for line, row in rows:
        values = row.site_values()
        first = wanted.get(row.site_id)
        if first is None:
            wanted[row.site_id] = (line, values)
            continue
        clash = [k for k, v in values.items() if k in first[1] and first[1][k] != v]
        if clash:
            errors.append(RowError(line, f"site {row.site_id}: {clash[0]} differs from line "
                                   f"{first[0]}", row.device_id, clash[0]))
            plan.bad_lines.add(line)
        else:
            first[1].update(values)
    for site_id, (_line, values) in wanted.items():
        site = stored.get(site_id)
        if site is None:
            if not values.get("name") or not values.get("jurisdiction"):
                for row_line, row in rows:
                    if row.site_id == site_id:
                        errors.append(RowError(row_line, f"unknown site {site_id}: give "
                                               "site_name and jurisdiction to create it",
                                               row.device_id, "site_id"))
                        plan.bad_lines.add(row_line)
                continue
            plan.values[site_id] = {"address": "", "category": "other", "contact_name": "",
                                    "contact_phone": "", "min_operators": 2, "profiles": {},
                                    "latitude": None, "longitude": None, **values}
            plan.created.append(site_id)
        else:
            current = _site_dict(site)
            if any(current.get(k) != v for k, v in values.items()):
                plan.values[site_id] = {**current, **values}
                plan.updated.append(site_id)
    return plan


def _site_dict(site: SiteRow) -> dict[str, Any]:
    return {c.key: getattr(site, c.key) for c in SiteRow.__table__.columns}


async def _load(session: AsyncSession, table: Any, ids: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start:start + CHUNK]
        found.update({r.id: r for r in (await session.scalars(
            select(table).where(table.id.in_(chunk)))).all()})
    return found


async def export_csv(session: AsyncSession) -> bytes:
    """All devices with their sites, UTF-8 with BOM (so Excel shows Chinese text)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    result = await session.execute(select(DeviceRow, SiteRow)
                                   .join(SiteRow, SiteRow.id == DeviceRow.site_id)
                                   .order_by(DeviceRow.id))
    for device, site in result:
        interval = (device.profile or {}).get("report_interval_s")
        writer.writerow((
            device.id, device.kind, site.id, site.name, site.category, site.jurisdiction,
            site.address, site.min_operators, site.contact_name, site.contact_phone,
            "" if site.latitude is None else site.latitude,
            "" if site.longitude is None else site.longitude,
            device.location, device.vendor, device.model, device.installer,
            device.install_date.isoformat() if device.install_date else "",
            "" if interval is None else interval,
        ))
    return out.getvalue().encode("utf-8-sig")
