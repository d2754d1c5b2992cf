"""GET /api/v1/ingest/rejected: the dead-letter store, bounded, for installers and admins."""

from __future__ import annotations

import base64

import pytest

from firewarden.keys import Role
from tests.support.api import ApiHarness, api_harness


@pytest.fixture
async def api(database_url: str):  # type: ignore[no-untyped-def]
    async with api_harness(database_url) as harness:
        yield harness


async def test_rejections_are_kept_listed_and_bounded(api: ApiHarness) -> None:
    api.pipeline.handle("fw/toaster/D1/telemetry", b"{}")
    api.pipeline.handle("fw/smoke/D1/telemetry", b'{"battery_pct": 180, "rsrp_dbm": -90}')
    api.pipeline.handle("fw/smoke/D2/telemetry", b"\xff\xfe")
    api.pipeline.handle("fw/smoke/UNKNOWN/event", b'{"event": "smoke_alarm"}')
    h = api.as_(Role.INSTALLER)
    answer = (await api.client.get("/api/v1/ingest/rejected", headers=h)).json()
    assert answer["count"] == 4
    newest = answer["data"]
    assert [r["reason"] for r in newest] == ["unregistered", "invalid_utf8", "schema",
                                             "bad_topic"]
    assert newest[1]["payload_encoding"] == "base64"
    assert base64.b64decode(newest[1]["payload"]) == b"\xff\xfe"
    assert "$.battery_pct" in newest[2]["detail"] and newest[2]["device_id"] == "D1"
    assert answer["counts_since_start"] == {"bad_topic": 1, "invalid_utf8": 1, "schema": 1,
                                            "unregistered": 1}
    only = (await api.client.get("/api/v1/ingest/rejected?reason=schema", headers=h)).json()
    assert only["count"] == 1

    for _ in range(6):  # the store keeps the newest `keep` (5 here)
        api.pipeline.handle("fw/toaster/D1/telemetry", b"{}")
    bounded = (await api.client.get("/api/v1/ingest/rejected", headers=h)).json()
    assert bounded["count"] == 5 and {r["reason"] for r in bounded["data"]} == {"bad_topic"}

    viewer = await api.client.get("/api/v1/ingest/rejected", headers=api.as_(Role.VIEWER))
    assert viewer.status_code == 403
