"""The installer API against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from devices.registry.tables import DeviceRow, DeviceStatusRow
from firewarden.keys import Role
from tests.support.api import ApiHarness, api_harness

SITE = {"id": "S1", "name": "人民医院", "address": "解放路 1 号", "category": "key_unit",
        "jurisdiction": "城东派出所", "contact_name": "王强", "contact_phone": "13800000000"}


@pytest.fixture
async def api(database_url: str):  # type: ignore[no-untyped-def]
    async with api_harness(database_url) as harness:
        yield harness


async def make_site(api: ApiHarness, **fields: object) -> dict[str, object]:
    response = await api.client.post("/api/v1/sites", json={**SITE, **fields},
                                     headers=api.as_(Role.INSTALLER))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def make_device(api: ApiHarness, device_id: str = "861234567890123", kind: str = "smoke",
                      site_id: str = "S1", **fields: object) -> dict[str, object]:
    response = await api.client.post("/api/v1/devices", json={
        "id": device_id, "kind": kind, "site_id": site_id, "location": "3F 301", **fields},
        headers=api.as_(Role.INSTALLER))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


class TestAuth:
    async def test_no_key_bad_key_wrong_role(self, api: ApiHarness) -> None:
        assert (await api.client.get("/api/v1/sites")).status_code == 401
        bad = {"Authorization": "Bearer fwk_not-a-key"}
        assert (await api.client.get("/api/v1/sites", headers=bad)).status_code == 401
        viewer = await api.client.post("/api/v1/sites", json=SITE, headers=api.as_(Role.VIEWER))
        assert viewer.status_code == 403
        operator = await api.client.post("/api/v1/sites", json=SITE,
                                         headers=api.as_(Role.OPERATOR))
        assert operator.status_code == 403
        assert (await api.client.get("/api/v1/sites", headers=api.as_(Role.VIEWER))
                ).status_code == 200
        assert (await api.client.get("/api/v1/keys", headers=api.as_(Role.INSTALLER))
                ).status_code == 403
        assert (await api.client.get("/health")).status_code == 200

    async def test_revocation_takes_effect_at_once(self, api: ApiHarness) -> None:
        created = await api.client.post("/api/v1/keys", json={"name": "tmp", "role": "viewer"},
                                        headers=api.as_(Role.ADMIN))
        assert created.status_code == 201
        key = created.json()["key"]
        headers = {"Authorization": f"Bearer {key}"}
        assert (await api.client.get("/api/v1/sites", headers=headers)).status_code == 200
        listed = (await api.client.get("/api/v1/keys", headers=api.as_(Role.ADMIN))).json()
        assert all("key" not in k and "key_hash" not in k for k in listed)
        revoked = await api.client.delete(f"/api/v1/keys/{created.json()['id']}",
                                          headers=api.as_(Role.ADMIN))
        assert revoked.status_code == 204
        assert (await api.client.get("/api/v1/sites", headers=headers)).status_code == 401


class TestSites:
    async def test_create_read_update_list(self, api: ApiHarness) -> None:
        site = await make_site(api)
        assert site["min_operators"] == 2 and site["device_count"] == 0
        await make_site(api, id="S2", category="small_venue", jurisdiction="城西派出所")
        h = api.as_(Role.VIEWER)
        listed = (await api.client.get("/api/v1/sites?jurisdiction=城东派出所", headers=h)).json()
        assert listed["count"] == 1 and listed["data"][0]["id"] == "S1"
        page = (await api.client.get("/api/v1/sites?limit=1&offset=1", headers=h)).json()
        assert page["count"] == 2 and [s["id"] for s in page["data"]] == ["S2"]
        assert (await api.client.get("/api/v1/sites?category=small_venue", headers=h)
                ).json()["count"] == 1
        changed = await api.client.patch("/api/v1/sites/S1", json={"min_operators": 1},
                                         headers=api.as_(Role.INSTALLER))
        assert changed.status_code == 200 and changed.json()["min_operators"] == 1
        assert (await api.client.get("/api/v1/sites/S9", headers=h)).status_code == 404

    async def test_duplicate_and_bad_fields(self, api: ApiHarness) -> None:
        await make_site(api)
        again = await api.client.post("/api/v1/sites", json=SITE, headers=api.as_(Role.INSTALLER))
        assert again.status_code == 409
        bad = await api.client.post("/api/v1/sites", json={**SITE, "id": "S3", "latitude": 200},
                                    headers=api.as_(Role.INSTALLER))
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "latitude"]

    async def test_delete_only_when_empty(self, api: ApiHarness) -> None:
        await make_site(api)
        await make_device(api)
        h = api.as_(Role.INSTALLER)
        blocked = await api.client.delete("/api/v1/sites/S1", headers=h)
        assert blocked.status_code == 409 and "device" in blocked.json()["detail"]
        await make_site(api, id="S2")
        await api.client.patch("/api/v1/devices/861234567890123", json={"site_id": "S2"},
                               headers=h)
        assert (await api.client.delete("/api/v1/sites/S1", headers=h)).status_code == 204

    async def test_site_profile_override_reaches_devices(self, api: ApiHarness) -> None:
        await make_site(api)
        await make_device(api, "EM1", kind="electrical")
        response = await api.client.patch("/api/v1/sites/S1", json={
            "profiles": {"electrical": {"residual_current_ma": 400}}},
            headers=api.as_(Role.INSTALLER))
        assert response.status_code == 200, response.text
        device = (await api.client.get("/api/v1/devices/EM1", headers=api.as_(Role.VIEWER))
                  ).json()
        assert device["effective_profile"]["residual_current_ma"] == 400
        info = api.registry.get("EM1")
        assert info is not None and info.profile.residual_current_ma == 400


class TestDevices:
    async def test_register_and_detail(self, api: ApiHarness) -> None:
        await make_site(api)
        device = await make_device(api, vendor="海曼", profile={"report_interval_s": 21600})
        assert device["state"] == "active" and device["site_name"] == "人民医院"
        assert device["effective_profile"]["report_interval_s"] == 21600
        assert device["status"] == {"last_seen_at": None, "online": None, "battery_pct": None,
                                    "rsrp_dbm": None, "last_values": {}}
        info = api.registry.get("861234567890123")
        assert info is not None and info.jurisdiction == "城东派出所"

    async def test_bad_input(self, api: ApiHarness) -> None:
        await make_site(api)
        await make_device(api)
        h = api.as_(Role.INSTALLER)
        dup = await api.client.post("/api/v1/devices", json={
            "id": "861234567890123", "kind": "smoke", "site_id": "S1"}, headers=h)
        assert dup.status_code == 409
        unknown = await api.client.post("/api/v1/devices", json={
            "id": "D2", "kind": "smoke", "site_id": "NOPE"}, headers=h)
        assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"][-1] == "site_id"
        bad_id = await api.client.post("/api/v1/devices", json={
            "id": "bad id", "kind": "smoke", "site_id": "S1"}, headers=h)
        assert bad_id.status_code == 422 and bad_id.json()["detail"][0]["loc"][-1] == "id"
        threshold = await api.client.post("/api/v1/devices", json={
            "id": "EM9", "kind": "electrical", "site_id": "S1",
            "profile": {"residual_current_ma": 10}}, headers=h)
        assert threshold.status_code == 422
        assert threshold.json()["detail"][0]["loc"][-1] == "residual_current_ma"
        hot = await api.client.patch("/api/v1/devices/861234567890123", json={
            "profile": {"cable_temperature_c": 150}}, headers=h)
        assert hot.status_code == 422
        assert hot.json()["detail"][0]["loc"][-1] == "cable_temperature_c"
        missing = await api.client.get("/api/v1/devices/NOPE", headers=h)
        assert missing.status_code == 404

    async def test_move_maintenance_decommission(self, api: ApiHarness) -> None:
        await make_site(api)
        await make_site(api, id="S2", jurisdiction="城西派出所")
        await make_device(api)
        h = api.as_(Role.INSTALLER)
        moved = await api.client.patch("/api/v1/devices/861234567890123",
                                       json={"site_id": "S2"}, headers=h)
        assert moved.json()["site_id"] == "S2" and moved.json()["jurisdiction"] == "城西派出所"
        assert api.registry.get("861234567890123").jurisdiction == "城西派出所"  # type: ignore[union-attr]

        until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        started = await api.client.post("/api/v1/devices/861234567890123/maintenance",
                                        json={"until": until, "note": "换电池"}, headers=h)
        assert started.status_code == 200 and started.json()["state"] == "maintenance"
        assert api.registry.get("861234567890123").state == "maintenance"  # type: ignore[union-attr]
        past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        refused = await api.client.post("/api/v1/devices/861234567890123/maintenance",
                                        json={"until": past}, headers=h)
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "until"
        ended = await api.client.delete("/api/v1/devices/861234567890123/maintenance", headers=h)
        assert ended.json()["state"] == "active"

        gone = await api.client.post("/api/v1/devices/861234567890123/decommission", headers=h)
        assert gone.json()["state"] == "decommissioned"
        no_maintenance = await api.client.post("/api/v1/devices/861234567890123/maintenance",
                                               json={"until": until}, headers=h)
        assert no_maintenance.status_code == 409

    async def test_maintenance_ends_by_itself(self, api: ApiHarness) -> None:
        await make_site(api)
        await make_device(api)
        until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        await api.client.post("/api/v1/devices/861234567890123/maintenance",
                              json={"until": until}, headers=api.as_(Role.INSTALLER))
        async with api.sessions() as session:  # time passes: the end time is now behind us
            await session.execute(update(DeviceRow).values(
                maintenance_until=datetime.now(UTC) - timedelta(seconds=1)))
            await session.commit()
        device = (await api.client.get("/api/v1/devices/861234567890123",
                                       headers=api.as_(Role.VIEWER))).json()
        assert device["state"] == "active" and device["maintenance_until"] is None
        listed = (await api.client.get("/api/v1/devices?state=maintenance",
                                       headers=api.as_(Role.VIEWER))).json()
        assert listed["count"] == 0

    async def test_list_filters_and_live_status(self, api: ApiHarness) -> None:
        await make_site(api)
        await make_site(api, id="S2", jurisdiction="城西派出所", name="便民超市")
        await make_device(api, "D1")
        await make_device(api, "D2")
        await make_device(api, "EM1", kind="electrical", site_id="S2", location="配电箱 2号")
        await api.registry.refresh()
        # D1 reports now; EM1 reported long ago; D2 never.
        api.pipeline.handle("fw/smoke/D1/telemetry",
                            json.dumps({"battery_pct": 77, "rsrp_dbm": -88}).encode())
        api.pipeline.handle("fw/electrical/EM1/telemetry", b'{"residual_current_ma": 120}')
        await api.status.flush()
        async with api.sessions() as session:
            await session.execute(update(DeviceStatusRow).where(DeviceStatusRow.device_id == "EM1")
                                  .values(offline_at=datetime.now(UTC) - timedelta(minutes=1)))
            await session.commit()
        h = api.as_(Role.VIEWER)

        async def ids(query: str) -> list[str]:
            response = await api.client.get(f"/api/v1/devices?{query}", headers=h)
            assert response.status_code == 200, response.text
            return [d["id"] for d in response.json()["data"]]

        assert await ids("status=online") == ["D1"]
        assert await ids("status=offline") == ["EM1"]
        assert await ids("status=never_seen") == ["D2"]
        assert await ids("kind=electrical") == ["EM1"]
        assert await ids("jurisdiction=城东派出所") == ["D1", "D2"]
        assert await ids("site_id=S2") == ["EM1"]
        assert await ids("q=配电箱") == ["EM1"]
        assert await ids("q=便民") == ["EM1"]
        assert await ids("limit=1&offset=1") == ["D2"]
        detail = (await api.client.get("/api/v1/devices/D1", headers=h)).json()["status"]
        assert detail["online"] is True and detail["battery_pct"] == 77
        assert detail["rsrp_dbm"] == -88 and detail["last_values"]["battery_pct"] == 77
        bad = await api.client.get("/api/v1/devices?status=sleeping", headers=h)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "status"]


class TestPending:
    async def test_unregistered_devices_are_listed_and_adopted(self, api: ApiHarness) -> None:
        await make_site(api)
        for battery in (90, 89):
            result = api.pipeline.handle("fw/smoke/869999990000001/telemetry", json.dumps(
                {"battery_pct": battery, "rsrp_dbm": -90}).encode())
            assert getattr(result, "reason", None) == "unregistered"
        await api.pending.flush()
        api.pipeline.handle("fw/smoke/869999990000001/event", b'{"event":"self_test"}')
        await api.pending.flush()
        h = api.as_(Role.INSTALLER)
        pending = (await api.client.get("/api/v1/devices/pending", headers=h)).json()
        assert pending["count"] == 1
        entry = pending["data"][0]
        assert entry["device_id"] == "869999990000001" and entry["kind"] == "smoke"
        assert entry["message_count"] == 3 and "self_test" in entry["last_payload"]
        assert entry["first_seen_at"] < entry["last_seen_at"] or entry["message_count"] == 3
        assert api.pipeline.metrics.snapshot()["rejected"] == {"unregistered": 3}

        adopted = await api.client.post("/api/v1/devices/pending/869999990000001/register",
                                        json={"site_id": "S1", "location": "2F"}, headers=h)
        assert adopted.status_code == 201, adopted.text
        assert adopted.json()["kind"] == "smoke"
        assert (await api.client.get("/api/v1/devices/pending", headers=h)).json()["count"] == 0
        accepted = api.pipeline.handle("fw/smoke/869999990000001/event", b'{"event":"tamper"}')
        assert getattr(accepted, "reason", None) is None

    async def test_kind_mismatch_is_rejected(self, api: ApiHarness) -> None:
        await make_site(api)
        await make_device(api, "D1")
        result = api.pipeline.handle("fw/electrical/D1/telemetry", b'{"residual_current_ma": 5}')
        assert getattr(result, "reason", None) == "kind_mismatch"
