"""Statistics and reports from a known history: JSON, CSV, the CLI; fleet status; charts."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from alerts.actions import Clear, Raise
from alerts.tables import AlertRow, DutyCheckRow
from firewarden.keys import Role
from ingest.points import point_for
from ingest.sql_store import SqlTelemetrySink
from tests.alerts.helpers import reading
from tests.alerts.test_alert_api import alerts, send
from tests.devices.registry.test_api import make_device, make_site
from tests.support.api import ApiHarness, api_harness

NOW = datetime.now(UTC)
DAY = {"from": (NOW - timedelta(days=1)).isoformat(),
       "to": (NOW + timedelta(hours=1)).isoformat()}  # the period ends after the test's alerts


@pytest.fixture
async def api(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with api_harness(f"sqlite+aiosqlite:///{tmp_path / 'fw.db'}") as harness:
        await make_site(harness)
        await make_site(harness, id="S2", name="汽车站", jurisdiction="城西派出所",
                        category="small_venue")
        for device_id in ("sd-1", "sd-2", "sd-3"):
            await make_device(harness, device_id, "smoke")
        await make_device(harness, "em-1", "electrical", site_id="S2")
        await harness.registry.refresh()
        harness.db_path = tmp_path / "fw.db"  # type: ignore[attr-defined]
        yield harness


async def history(api: ApiHarness) -> None:
    """Three fire alarms closed as real, false and test; one open hazard at S2; a device
    offline for 30 minutes; one duty check answered in 20 s and one missed."""
    operator = api.as_(Role.OPERATOR)
    for device_id in ("sd-1", "sd-2", "sd-3"):
        await send(api, "smoke", device_id, "event", event="smoke_alarm")
    for alert, outcome in zip(await alerts(api, type="fire"), ("real_fire", "false_alarm",
                                                                "test"), strict=True):
        await api.client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={},
                              headers=operator)
        await api.client.post(f"/api/v1/alerts/{alert['id']}/resolve",
                              json={"outcome": outcome}, headers=operator)
    await send(api, "electrical", "em-1", "event", event="arc_fault")
    now_ms = int(NOW.timestamp() * 1000)
    api.recorder.submit([Raise(device_id="sd-3", type="offline", at_ms=now_ms - 3_600_000,
                               kind="smoke", site_id="S1", jurisdiction="城东派出所")])
    api.recorder.submit([Clear(device_id="sd-3", types=("offline",), at_ms=now_ms - 1_800_000)])
    while api.recorder.pending:
        await api.recorder.flush_once()
    async with api.sessions() as session:
        # Acknowledged 60 s and resolved 120 s after opening, for exact handling times.
        await session.execute(update(AlertRow).where(AlertRow.type == "fire").values(
            opened_at=NOW - timedelta(hours=2),
            acknowledged_at=NOW - timedelta(hours=2) + timedelta(seconds=60),
            resolved_at=NOW - timedelta(hours=2) + timedelta(seconds=120)))
        for check_id, status, answered in (("dc-1", "answered", 20), ("dc-2", "missed", None)):
            session.add(DutyCheckRow(
                id=check_id, batch_id="b", device_id="cr", site_id="S1", jurisdiction="城东派出所",
                requested_by="op", requested_at=NOW - timedelta(hours=1),
                deadline_at=NOW - timedelta(minutes=50), status=status,
                answered_at=(NOW - timedelta(hours=1) + timedelta(seconds=answered))
                if answered else None))
        await session.commit()


async def test_summary_figures(api: ApiHarness) -> None:
    await history(api)
    response = await api.client.get("/api/v1/stats/summary", params=DAY,
                                    headers=api.as_(Role.VIEWER))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["by_type"] == {"arc_fault": 1, "fire": 3, "offline": 1}
    assert body["fire_alarms"] == {"total": 3, "real_fire": 1, "false_alarm": 1, "test": 1,
                                   "open": 0, "false_alarm_rate": 0.5}
    assert body["time_to_acknowledge"] == {"count": 3, "median_s": 60.0, "p90_s": 60.0}
    assert body["time_to_resolve"] == {"count": 3, "median_s": 120.0, "p90_s": 120.0}
    assert body["fleet"]["devices"] == 4
    # 30 minutes offline of 4 devices over the day up to now (the period's future is not counted)
    assert body["fleet"]["availability"] == round(1 - 1800 / (4 * 86_400), 4)
    assert body["duty_checks"]["sent"] == 2 and body["duty_checks"]["answered_rate"] == 0.5
    assert body["duty_checks"]["response"]["median_s"] == 20.0
    assert body["ranking"] == [{"site_id": "S2", "name": "汽车站", "jurisdiction": "城西派出所",
                                "open_hazards": 1}]

    grouped = (await api.client.get("/api/v1/stats/summary",
                                    params={**DAY, "group_by": "category"},
                                    headers=api.as_(Role.VIEWER))).json()
    by_key = {g["key"]: g for g in grouped["groups"]}
    assert by_key["small_venue"]["open_hazards"] == 1
    assert by_key["key_unit"]["fire_alarms"] == 3


async def test_csv_for_a_weekly_report_and_the_cli(api: ApiHarness) -> None:
    await history(api)
    for kwargs in ({"params": {**DAY, "format": "csv", "group_by": "jurisdiction"}},
                   {"params": {**DAY, "group_by": "jurisdiction"},
                    "headers_extra": {"Accept": "text/csv"}}):
        headers = {**api.as_(Role.VIEWER), **kwargs.get("headers_extra", {})}
        response = await api.client.get("/api/v1/stats/summary", params=kwargs["params"],
                                        headers=headers)
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.text.removeprefix("\ufeff"))))
        header, total = rows[1], dict(zip(rows[1], rows[2], strict=True))
        assert header[0] == "group" and total["group"] == "all"
        assert (total["fire_alarms"], total["false_alarm_rate"], total["open_hazards"]) == (
            "3", "0.5", "1")
        assert {r[0] for r in rows[3:]} == {"城东派出所", "城西派出所"}

    env = {**os.environ, "FIREWARDEN_DATABASE_URL":
           f"sqlite+aiosqlite:///{api.db_path}"}  # type: ignore[attr-defined]
    out = await asyncio.to_thread(report, env, "--period", "week", "--format", "csv")
    total = dict(zip(*list(csv.reader(io.StringIO(out.removeprefix("\ufeff"))))[1:3],
                     strict=True))
    assert (total["alerts"], total["real_fire"]) == ("5", "1")
    text = await asyncio.to_thread(report, env)
    assert "false-alarm rate 50.0 %" in text and "汽车站 (城西派出所) 1" in text


def report(env: dict[str, str], *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "firewarden.cli", "report", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=True).stdout


async def test_bad_periods_name_the_parameter(api: ApiHarness) -> None:
    viewer = api.as_(Role.VIEWER)
    backwards = await api.client.get("/api/v1/stats/summary", headers=viewer,
                                     params={"from": DAY["to"], "to": DAY["from"]})
    assert backwards.status_code == 422 and backwards.json()["detail"][0]["loc"] == [
        "query", "to"]
    naive = await api.client.get("/api/v1/stats/summary", headers=viewer,
                                 params={"from": "2026-11-01T00:00:00"})
    assert naive.status_code == 422 and naive.json()["detail"][0]["loc"] == ["query", "from"]
    bad_group = await api.client.get("/api/v1/stats/summary", headers=viewer,
                                     params={"group_by": "weather"})
    assert bad_group.status_code == 422


async def test_fleet_counts_and_sites_with_open_alerts(api: ApiHarness) -> None:
    await send(api, "smoke", "sd-1", "telemetry", battery_pct=90, rsrp_dbm=-80)
    await api.status.flush()
    await send(api, "electrical", "em-1", "event", event="short_circuit")
    fleet = (await api.client.get("/api/v1/stats/fleet", headers=api.as_(Role.VIEWER))).json()
    assert fleet["total"] == {"devices": 4, "online": 1, "offline": 0, "never_seen": 3,
                              "maintenance": 0}
    assert fleet["by_kind"]["smoke"]["online"] == 1
    assert fleet["by_jurisdiction"]["城西派出所"]["devices"] == 1
    assert fleet["sites"][0] == {"site_id": "S2", "name": "汽车站", "jurisdiction": "城西派出所",
                                 "category": "small_venue", "devices": 1, "open_alerts": 1,
                                 "open_critical": 1}


async def test_device_telemetry_downsampled_for_charts(api: ApiHarness) -> None:
    device = api.registry.get("em-1")
    assert device is not None
    start = int(time.time() * 1000) - 600_000
    points = [point_for(reading(device, "telemetry", start + i * 60_000,
                                residual_current_ma=100 + i * 10,
                                temperature_c={"1": 40 + i}), device) for i in range(10)]
    await SqlTelemetrySink(api.sessions).write(points)
    response = await api.client.get(
        "/api/v1/devices/em-1/telemetry", headers=api.as_(Role.VIEWER),
        params={"from": datetime.fromtimestamp(start / 1000, UTC).isoformat(),
                "to": datetime.now(UTC).isoformat(), "step": 120})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["step_s"] == 120 and body["kind"] == "electrical"
    values = [p["values"]["residual_current_ma"] for p in body["points"]]
    assert len(values) in (5, 6) and values == sorted(values)
    assert sum(len(p["values"]) for p in body["points"]) > 0
    missing = await api.client.get("/api/v1/devices/nope/telemetry",
                                   headers=api.as_(Role.VIEWER))
    assert missing.status_code == 404
    too_fine = await api.client.get("/api/v1/devices/em-1/telemetry",
                                    headers=api.as_(Role.VIEWER),
                                    params={"step": 1, "from": "2026-01-01T00:00:00Z"})
    assert too_fine.status_code == 422 and too_fine.json()["detail"][0]["loc"] == [
        "query", "step"]
