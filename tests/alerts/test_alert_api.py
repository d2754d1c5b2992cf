"""The alert lifecycle through the real pipeline, store and API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import pytest

from alerts.actions import Raise
from alerts.store import Policy
from firewarden.keys import Role
from tests.devices.registry.test_api import make_device, make_site
from tests.support.api import ApiHarness, api_harness

SMOKE, METER, ROOM = "sd-1", "em-1", "cr-1"


@pytest.fixture
async def api(database_url: str):  # type: ignore[no-untyped-def]
    async with api_harness(database_url, policy=Policy(reminder_interval_s=120,
                                                       flap_cooldown_s=600)) as harness:
        await make_site(harness)
        await make_device(harness, SMOKE, "smoke")
        await make_device(harness, METER, "electrical", profile={"min_duration_s": 0})
        await make_device(harness, ROOM, "controlroom")
        await harness.registry.refresh()
        yield harness


_last_ms = [0]


def now_ms() -> int:
    """Strictly increasing: two messages in the same millisecond would look redelivered."""
    _last_ms[0] = max(_last_ms[0] + 1, int(time.time() * 1000))
    return _last_ms[0]


async def send(api: ApiHarness, kind: str, device_id: str, channel: str, **body: Any) -> None:
    body.setdefault("ts", now_ms())
    await api.handle(f"fw/{kind}/{device_id}/{channel}", json.dumps(body).encode())


async def alerts(api: ApiHarness, **params: Any) -> list[dict[str, Any]]:
    response = await api.client.get("/api/v1/alerts", params=params, headers=api.as_(Role.VIEWER))
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def detail(api: ApiHarness, alert_id: int) -> dict[str, Any]:
    response = await api.client.get(f"/api/v1/alerts/{alert_id}", headers=api.as_(Role.VIEWER))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_repeated_alarm_is_one_alert_counted_twice(api: ApiHarness) -> None:
    subscription = api.bus.subscribe()
    await send(api, "smoke", SMOKE, "event", event="smoke_alarm", smoke_db_per_m=0.3)
    await send(api, "smoke", SMOKE, "event", event="smoke_alarm")
    [fire] = await alerts(api)
    assert (fire["type"], fire["category"], fire["severity"], fire["status"], fire["count"]) == (
        "fire", "fire", "critical", "open", 2)
    assert (fire["site_id"], fire["jurisdiction"], fire["kind"]) == ("S1", "城东派出所", "smoke")
    assert [e["action"] for e in (await detail(api, fire["id"]))["history"]] == [
        "raised", "repeated"]
    announced = [subscription.queue.get_nowait().action for _ in range(2)]
    assert announced == ["raised", "repeated"]


async def test_a_redelivered_alarm_changes_nothing_but_a_late_one_counts(api: ApiHarness
                                                                          ) -> None:
    subscription = api.bus.subscribe()
    first = now_ms()
    for _ in range(3):  # the broker delivers the same message again after a crash
        await send(api, "smoke", SMOKE, "event", event="smoke_alarm", ts=first)
    [fire] = await alerts(api)
    assert fire["count"] == 1
    await send(api, "smoke", SMOKE, "event", event="smoke_alarm", ts=first + 5000)
    await send(api, "smoke", SMOKE, "event", event="smoke_alarm", ts=first + 2000)  # late
    await send(api, "smoke", SMOKE, "event", event="smoke_alarm", ts=first + 2000)  # again
    # Another message of the same moment, telling more: counted, its details kept.
    await send(api, "smoke", SMOKE, "event", event="smoke_alarm", ts=first + 5000,
               smoke_db_per_m=0.4)
    [fire] = await alerts(api)
    last_seen = datetime.fromisoformat(fire["last_seen_at"].replace("Z", "+00:00"))
    assert (fire["count"], last_seen.timestamp()) == (4, (first + 5000) / 1000)
    assert fire["details"]["smoke_db_per_m"] == 0.4
    assert [e["action"] for e in (await detail(api, fire["id"]))["history"]] == [
        "raised", "repeated", "repeated", "repeated"]
    assert [subscription.queue.get_nowait().action for _ in range(4)] == [
        "raised", "repeated", "repeated", "repeated"]
    assert subscription.queue.empty()


async def test_operators_work_a_fire_alarm_to_an_outcome(api: ApiHarness) -> None:
    await send(api, "smoke", SMOKE, "event", event="smoke_alarm")
    await send(api, "smoke", SMOKE, "event", event="smoke_clear")
    [fire] = await alerts(api)
    url = f"/api/v1/alerts/{fire['id']}"
    operator, viewer = api.as_(Role.OPERATOR), api.as_(Role.VIEWER)

    assert (await api.client.post(f"{url}/acknowledge", json={}, headers=viewer)).status_code \
        == 403
    acked = await api.client.post(f"{url}/acknowledge", json={"note": "called the site"},
                                  headers=operator)
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    again = await api.client.post(f"{url}/acknowledge", json={}, headers=operator)
    assert again.status_code == 409 and "already acknowledged" in again.json()["detail"]

    no_outcome = await api.client.post(f"{url}/resolve", json={}, headers=operator)
    assert no_outcome.status_code == 409 and "outcome" in no_outcome.json()["detail"]
    bad = await api.client.post(f"{url}/resolve", json={"outcome": "maybe"}, headers=operator)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "outcome"]
    note = await api.client.post(f"{url}/notes", json={"note": "厨房油烟"}, headers=operator)
    assert note.status_code == 200
    resolved = await api.client.post(f"{url}/resolve", json={"outcome": "false_alarm"},
                                     headers=operator)
    assert resolved.status_code == 200
    assert (resolved.json()["status"], resolved.json()["outcome"]) == ("resolved", "false_alarm")
    late = await api.client.post(f"{url}/acknowledge", json={}, headers=operator)
    assert late.status_code == 409 and "resolved" in late.json()["detail"]

    history = (await detail(api, fire["id"]))["history"]
    assert [(e["action"], e["actor"]) for e in history] == [
        ("raised", "device"), ("device_cleared", "device"), ("acknowledged", "test operator"),
        ("note", "test operator"), ("resolved", "test operator")]
    assert history[1]["note"] == "" and history[3]["note"] == "厨房油烟"
    assert (await api.client.post("/api/v1/alerts/999999/acknowledge", json={},
                                  headers=operator)).status_code == 404


async def test_a_new_alarm_after_resolution_is_a_new_alert(api: ApiHarness) -> None:
    await send(api, "smoke", SMOKE, "event", event="smoke_alarm")
    [first] = await alerts(api)
    await api.client.post(f"/api/v1/alerts/{first['id']}/resolve", json={"outcome": "test"},
                          headers=api.as_(Role.OPERATOR))
    await send(api, "smoke", SMOKE, "event", event="smoke_alarm")
    newest, _oldest = await alerts(api)
    assert newest["id"] != first["id"] and newest["status"] == "open"


async def test_device_clears_auto_resolve_and_flaps_reopen_the_same_alert(api: ApiHarness
                                                                         ) -> None:
    await send(api, "smoke", SMOKE, "event", event="tamper")
    await send(api, "smoke", SMOKE, "event", event="tamper_clear")
    [tamper] = await alerts(api)
    assert (tamper["status"], tamper["auto_resolved"], tamper["resolved_by"]) == (
        "resolved", True, "device")
    await send(api, "smoke", SMOKE, "event", event="tamper")  # back within the cool-down
    [again] = await alerts(api)
    assert (again["id"], again["status"], again["reopened"], again["count"]) == (
        tamper["id"], "open", 1, 2)
    assert [e["action"] for e in (await detail(api, tamper["id"]))["history"]] == [
        "raised", "auto_resolved", "reopened"]


async def test_hazard_with_hysteresis_through_the_pipeline(api: ApiHarness) -> None:
    t = now_ms() - 10_000
    for offset, value in ((0, 320), (1000, 290), (2000, 250)):
        await send(api, "electrical", METER, "telemetry", ts=t + offset,
                   residual_current_ma=value)
    [hazard] = await alerts(api)
    assert (hazard["type"], hazard["category"], hazard["status"]) == (
        "residual_current", "hazard", "resolved")
    assert hazard["details"]["residual_current_ma"] == 320


async def test_the_alert_is_acknowledged_to_the_broker_only_once_stored(api: ApiHarness
                                                                        ) -> None:
    acks: list[int] = []
    api.pipeline.handle(f"fw/smoke/{SMOKE}/event",
                        json.dumps({"event": "smoke_alarm", "ts": now_ms()}).encode(),
                        lambda: acks.append(1))
    assert acks == [] and api.recorder.pending == 1
    await api.recorder.flush_once()
    assert acks == [1]
    plain: list[int] = []  # a reading that raises nothing is acknowledged at once
    api.pipeline.handle(f"fw/smoke/{SMOKE}/telemetry",
                        json.dumps({"battery_pct": 90, "rsrp_dbm": -80}).encode(),
                        lambda: plain.append(1))
    assert plain == [1]


async def test_unregistered_alarm_raises_a_critical_alert(api: ApiHarness) -> None:
    await send(api, "smoke", "ghost-9", "event", event="smoke_alarm")
    await send(api, "smoke", "ghost-9", "event", event="tamper")  # not alarm-class: nothing
    [alert] = await alerts(api)
    assert (alert["type"], alert["severity"], alert["device_id"], alert["site_id"]) == (
        "unregistered_device_alarm", "critical", "ghost-9", None)


async def test_maintenance_records_suppressed_alerts_that_are_not_announced(api: ApiHarness
                                                                            ) -> None:
    until = "2099-01-01T00:00:00Z"
    response = await api.client.post(f"/api/v1/devices/{SMOKE}/maintenance",
                                     json={"until": until}, headers=api.as_(Role.INSTALLER))
    if response.status_code == 422:  # maintenance is capped: use the longest allowed
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86_400))
        response = await api.client.post(f"/api/v1/devices/{SMOKE}/maintenance",
                                         json={"until": until}, headers=api.as_(Role.INSTALLER))
    assert response.status_code == 200, response.text
    await api.registry.refresh()
    subscription = api.bus.subscribe()
    await send(api, "smoke", SMOKE, "event", event="smoke_alarm")
    [alert] = await alerts(api)
    assert alert["suppressed"] is True and alert["status"] == "open"
    assert subscription.queue.empty()
    assert await alerts(api, include_suppressed="false") == []


async def test_self_test_is_recorded_as_a_test_never_paged(api: ApiHarness) -> None:
    await send(api, "smoke", SMOKE, "event", event="self_test")
    [alert] = await alerts(api)
    assert (alert["type"], alert["status"], alert["outcome"], alert["severity"]) == (
        "self_test", "resolved", "test", "info")


async def test_filters_and_bulk_acknowledge(api: ApiHarness) -> None:
    await send(api, "smoke", SMOKE, "event", event="smoke_alarm")
    await send(api, "smoke", SMOKE, "event", event="fault")
    await send(api, "electrical", METER, "event", event="arc_fault")
    assert {a["type"] for a in await alerts(api, severity="critical")} == {"fire", "arc_fault"}
    assert [a["type"] for a in await alerts(api, category="fault")] == ["fault"]
    assert [a["type"] for a in await alerts(api, kind="electrical")] == ["arc_fault"]
    assert len(await alerts(api, jurisdiction="城东派出所", status="open")) == 3
    assert await alerts(api, site_id="elsewhere") == []
    page = await api.client.get("/api/v1/alerts", params={"limit": 1, "offset": 1},
                                headers=api.as_(Role.VIEWER))
    assert page.json()["count"] == 3 and len(page.json()["data"]) == 1
    ids = [a["id"] for a in await alerts(api)]
    response = await api.client.post("/api/v1/alerts/acknowledge",
                                     json={"ids": [*ids, 424242], "note": "shift start"},
                                     headers=api.as_(Role.OPERATOR))
    assert response.status_code == 200
    assert sorted(response.json()["acknowledged"]) == sorted(ids)
    assert list(response.json()["skipped"]) == ["424242"]
    assert await alerts(api, status="open") == []
    bad = await api.client.get("/api/v1/alerts", params={"status": "closed"},
                               headers=api.as_(Role.VIEWER))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][:2] == ["query", "status"]


async def test_reminders_repeat_and_escalate_until_acknowledged(api: ApiHarness) -> None:
    await send(api, "smoke", SMOKE, "event", event="smoke_alarm")
    await send(api, "smoke", SMOKE, "event", event="fault")  # minor: never reminded
    start = api.clock[0]
    for minutes in (1, 2.1, 4.2, 6.3):
        api.clock[0] = start + minutes * 60
        await api.timers.send_reminders()
    [fire] = await alerts(api, type="fire")
    assert (fire["reminders"], fire["escalation"]) == (3, 1)
    actions = [e["action"] for e in (await detail(api, fire["id"]))["history"]]
    assert actions == ["raised", "reminded", "reminded", "reminded", "escalated"]
    await api.client.post(f"/api/v1/alerts/{fire['id']}/acknowledge", json={},
                          headers=api.as_(Role.OPERATOR))
    api.clock[0] = start + 3600
    assert await api.timers.send_reminders() == 0
    [fault] = await alerts(api, type="fault")
    assert fault["reminders"] == 0


async def test_offline_is_raised_at_the_deadline_and_cleared_by_the_next_message(
        api: ApiHarness) -> None:
    await api.timers.load()
    start = api.clock[0]
    await send(api, "electrical", METER, "telemetry", residual_current_ma=50)
    await api.status.flush()
    api.clock[0] = start + 179
    assert await api.timers.check_offline() == 0
    api.clock[0] = start + 181  # 3 missed 60 s reports
    assert await api.timers.check_offline() >= 1
    await api.recorder.flush_once()
    offline = await alerts(api, type="offline", device_id=METER)
    assert [a["status"] for a in offline] == ["open"]
    await send(api, "electrical", METER, "telemetry", residual_current_ma=50)
    [cleared] = await alerts(api, type="offline", device_id=METER)
    assert (cleared["status"], cleared["auto_resolved"]) == ("resolved", True)


async def test_rule_progress_survives_a_restart(database_url: str) -> None:
    async with api_harness(database_url) as first:
        await make_site(first)
        await make_device(first, METER, "electrical")  # 60 s minimum duration
        await first.registry.refresh()
        await send(first, "electrical", METER, "telemetry", ts=now_ms() - 120_000,
                   residual_current_ma=400)
        assert await alerts(first) == []
    async with api_harness(database_url) as second:  # a new process: only the database
        from alerts.store import load_states
        async with second.sessions() as session:
            second.engine.load_states(await load_states(session))
        await send(second, "electrical", METER, "telemetry", ts=now_ms(),
                   residual_current_ma=410)
        [hazard] = await alerts(second)
        assert hazard["type"] == "residual_current"


async def test_site_maintenance_suppresses_every_device_of_the_site(api: ApiHarness) -> None:
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    installer = api.as_(Role.INSTALLER)
    started = await api.client.post("/api/v1/sites/S1/maintenance", json={"until": until},
                                    headers=installer)
    assert started.status_code == 200 and started.json()["devices"] == 3
    await send(api, "electrical", METER, "event", event="arc_fault")
    [suppressed] = await alerts(api)
    assert suppressed["suppressed"] is True
    ended = await api.client.delete("/api/v1/sites/S1/maintenance", headers=installer)
    assert ended.json()["devices"] == 3
    await send(api, "smoke", SMOKE, "event", event="tamper")
    [tamper] = await alerts(api, type="tamper")
    assert tamper["suppressed"] is False
    past = await api.client.post("/api/v1/sites/S1/maintenance",
                                 json={"until": "2020-01-01T00:00:00Z"}, headers=installer)
    assert past.status_code == 422 and past.json()["detail"][0]["loc"][-1] == "until"
    assert (await api.client.post("/api/v1/sites/nowhere/maintenance", json={"until": until},
                                  headers=installer)).status_code == 404


async def test_offline_skips_devices_in_maintenance_and_tracks_new_ones(api: ApiHarness
                                                                        ) -> None:
    await api.timers.load()
    start = api.clock[0]
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
    response = await api.client.post(f"/api/v1/devices/{METER}/maintenance",
                                     json={"until": until}, headers=api.as_(Role.INSTALLER))
    assert response.status_code == 200
    await make_device(api, "em-new", "electrical")  # registered after the start
    await api.registry.refresh()
    assert api.timers.offline.tracks("em-new")
    api.clock[0] = start + 181  # past every 180 s window: the room and em-new, not METER
    await api.timers.check_offline()
    await api.recorder.flush_once()
    offline = {a["device_id"] for a in await alerts(api, type="offline")}
    assert METER not in offline and {"em-new", ROOM} <= offline
    api.clock[0] = start + 600 + 181  # maintenance over, window passed again
    await api.timers.check_offline()
    while api.recorder.pending:
        await api.recorder.flush_once()
    assert METER in {a["device_id"] for a in await alerts(api, type="offline")}


async def test_a_decommissioned_device_raises_only_a_possible_fire(api: ApiHarness) -> None:
    response = await api.client.post(f"/api/v1/devices/{SMOKE}/decommission",
                                     headers=api.as_(Role.INSTALLER))
    assert response.status_code == 200
    await api.registry.refresh()
    await send(api, "smoke", SMOKE, "event", event="tamper")
    await send(api, "smoke", SMOKE, "event", event="smoke_alarm")
    [fire] = await alerts(api)
    assert (fire["type"], fire["site_id"], fire["suppressed"]) == ("fire", "S1", False)


async def test_the_recorder_is_busy_while_alerts_wait_or_are_stored(api: ApiHarness) -> None:
    assert not api.recorder.busy
    started = time.monotonic()
    api.recorder.give_way(5)
    assert time.monotonic() - started < 1  # idle: telemetry does not wait
    api.recorder.submit([Raise(device_id=SMOKE, type="fire", at_ms=now_ms(), kind="smoke")])
    assert api.recorder.busy  # status flushes on SQLite give way meanwhile
    started = time.monotonic()
    api.recorder.give_way(0.2)  # the telemetry lane waits, but not for ever
    assert time.monotonic() - started >= 0.2
    await api.recorder.flush_once()
    assert not api.recorder.busy
    assert [a["type"] for a in await alerts(api)] == ["fire"]


async def test_nobody_waits_for_a_recorder_that_is_backing_off(
        api: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing(_actions: object) -> list[object]:
        raise OSError("database unreachable")

    monkeypatch.setattr(api.recorder, "_store", failing)
    stop = asyncio.Event()
    running = asyncio.create_task(api.recorder.run(stop))
    api.recorder.submit([Raise(device_id=SMOKE, type="fire", at_ms=now_ms(), kind="smoke")])
    for _ in range(100):
        if api.recorder.metrics.failures._value.get() >= 1:
            break
        await asyncio.sleep(0.02)
    assert api.recorder.pending == 1  # kept, to be retried (and not acknowledged)
    assert not api.recorder.busy  # telemetry and status flushes carry on meanwhile
    api.recorder.submit([Raise(device_id=SMOKE, type="tamper", at_ms=now_ms(), kind="smoke")])
    assert not api.recorder.busy  # still backing off
    stop.set()
    await running
