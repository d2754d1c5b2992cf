"""Duty checks over a real Mosquitto: commands out, answers in, misses raise a duty lapse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from firewarden.keys import Role
from firewarden.settings import MqttEndpoint
from ingest.commands import CommandPublisher
from tests.alerts.test_alert_api import alerts, send
from tests.devices.registry.test_api import make_device, make_site
from tests.support.api import ApiHarness, api_harness
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import Recorder


@pytest.fixture
def commands(mosquitto: MosquittoServer) -> Iterator[CommandPublisher]:
    publisher = CommandPublisher(MqttEndpoint("127.0.0.1", mosquitto.port, False, None, None),
                                 "test-commands")
    publisher.start()
    yield publisher
    publisher.stop()


@pytest.fixture
async def api(database_url: str, commands: CommandPublisher):  # type: ignore[no-untyped-def]
    async with api_harness(database_url, commands=commands) as harness:
        await make_site(harness)
        await make_site(harness, id="S2", jurisdiction="城西派出所")
        for room, site in (("cr-1", "S1"), ("cr-2", "S1"), ("cr-3", "S2")):
            await make_device(harness, room, "controlroom", site_id=site)
        await harness.registry.refresh()
        yield harness


async def start(api: ApiHarness, **target: Any) -> Any:
    return await api.client.post("/api/v1/duty-checks", json=target,
                                 headers=api.as_(Role.OPERATOR))


async def test_checks_are_sent_answered_and_missed(api: ApiHarness,
                                                   mosquitto: MosquittoServer) -> None:
    with Recorder(mosquitto.port, ["fw/controlroom/+/cmd"]) as downlink:
        response = await start(api, site_id="S1")
        assert response.status_code == 201, response.text
        batch = response.json()
        commands = downlink.wait_for(2)
    checks = {c["device_id"]: c for c in batch["checks"]}
    assert sorted(checks) == ["cr-1", "cr-2"]
    sent = {topic.split("/")[2]: json.loads(payload) for topic, payload in commands}
    assert {d: (c["cmd"], c["check_id"], c["deadline_s"]) for d, c in sent.items()} == {
        d: ("duty_check", checks[d]["id"], 600) for d in checks}

    await send(api, "controlroom", "cr-1", "event", event="duty_check_ack",
               check_id=checks["cr-1"]["id"], operator="值班员 李")
    listed = await api.client.get("/api/v1/duty-checks",
                                  params={"batch_id": batch["batch_id"]},
                                  headers=api.as_(Role.VIEWER))
    by_device = {c["device_id"]: c for c in listed.json()["data"]}
    assert by_device["cr-1"]["status"] == "answered" and by_device["cr-1"]["response_s"] >= 0
    assert by_device["cr-1"]["operator"] == "值班员 李"
    assert by_device["cr-2"]["status"] == "pending" and by_device["cr-2"]["response_s"] is None

    api.clock[0] += 599
    assert await api.timers.check_duty_checks() == 0
    api.clock[0] += 2
    assert await api.timers.check_duty_checks() == 1
    [lapse] = await alerts(api, type="duty_lapse")
    assert (lapse["device_id"], lapse["subject"], lapse["details"]["check_id"]) == (
        "cr-2", "duty_check", checks["cr-2"]["id"])

    # A late answer is noted but does not undo the lapse; an answer in time to the next does.
    await send(api, "controlroom", "cr-2", "event", event="duty_check_ack",
               check_id=checks["cr-2"]["id"])
    assert (await alerts(api, type="duty_lapse"))[0]["status"] == "open"
    again = (await start(api, device_id="cr-2")).json()["checks"][0]
    await send(api, "controlroom", "cr-2", "event", event="duty_check_ack", check_id=again["id"])
    [cleared] = await alerts(api, type="duty_lapse")
    assert (cleared["status"], cleared["auto_resolved"]) == ("resolved", True)


async def test_a_whole_jurisdiction_and_bad_requests(api: ApiHarness) -> None:
    response = await start(api, jurisdiction="城西派出所", deadline_s=120)
    assert [c["device_id"] for c in response.json()["checks"]] == ["cr-3"]
    check = response.json()["checks"][0]
    assert check["deadline_at"] > check["requested_at"]

    two = await start(api, site_id="S1", device_id="cr-1")
    assert two.status_code == 422
    unknown = await start(api, site_id="nowhere")
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "site_id"]
    viewer = await api.client.post("/api/v1/duty-checks", json={"site_id": "S1"},
                                   headers=api.as_(Role.VIEWER))
    assert viewer.status_code == 403
    bad_status = await api.client.get("/api/v1/duty-checks", params={"status": "late"},
                                      headers=api.as_(Role.VIEWER))
    assert bad_status.status_code == 422


async def test_no_broker_means_503_and_nothing_stored(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fw.db'}"
    unreachable = CommandPublisher(MqttEndpoint("127.0.0.1", 1, False, None, None), "nobody",
                                   timeout_s=0.2)  # never started: never connected
    async with api_harness(url, commands=unreachable) as api:
        await make_site(api)
        await make_device(api, "cr-1", "controlroom")
        await api.registry.refresh()
        response = await start(api, device_id="cr-1")
        assert response.status_code == 503 and "not connected" in response.json()["detail"]
        listed = await api.client.get("/api/v1/duty-checks", headers=api.as_(Role.VIEWER))
        assert listed.json()["count"] == 0
