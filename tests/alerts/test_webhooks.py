"""Webhooks: filtered, signed, retried with backoff, logged; against a real HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import update

from alerts.tables import WebhookDeliveryRow
from firewarden.keys import Role
from tests.alerts.test_alert_api import alerts, send
from tests.devices.registry.test_api import make_device, make_site
from tests.support.api import ApiHarness, api_harness


class Receiver:
    """A dispatch system on loopback that records requests and answers ``status``."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"busy" if receiver.status >= 400 else b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fire"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()


@pytest.fixture
async def api(database_url: str):  # type: ignore[no-untyped-def]
    async with api_harness(database_url) as harness:
        await make_site(harness)
        await make_device(harness, "sd-1", "smoke")
        await harness.registry.refresh()
        yield harness


async def test_critical_changes_are_signed_delivered_and_retried(api: ApiHarness,
                                                                 receiver: Receiver) -> None:
    created = await api.client.post("/api/v1/webhooks", json={
        "name": "119 dispatch", "url": receiver.url, "severities": ["critical"],
        "changes": ["raised", "resolved"]}, headers=api.as_(Role.ADMIN))
    assert created.status_code == 201, created.text
    hook = created.json()
    assert len(hook["secret"]) >= 16

    receiver.status = 503
    await send(api, "smoke", "sd-1", "event", event="smoke_alarm")
    await send(api, "smoke", "sd-1", "event", event="tamper")  # major: filtered out
    assert await api.webhooks.send_due() == 1
    log = await api.client.get(f"/api/v1/webhooks/{hook['id']}/deliveries",
                               headers=api.as_(Role.ADMIN))
    [failed] = log.json()["data"]
    assert (failed["status"], failed["attempts"], failed["response_code"]) == ("pending", 1, 503)
    assert "HTTP 503" in failed["last_error"]
    assert await api.webhooks.send_due() == 0  # backing off: not due yet

    receiver.status = 200
    async with api.sessions() as session:  # let the backoff pass
        await session.execute(update(WebhookDeliveryRow).values(
            next_attempt_at=datetime.now(UTC)))
        await session.commit()
    assert await api.webhooks.send_due() == 1
    [delivered] = (await api.client.get(f"/api/v1/webhooks/{hook['id']}/deliveries",
                                        headers=api.as_(Role.ADMIN))).json()["data"]
    assert (delivered["status"], delivered["attempts"]) == ("delivered", 2)

    headers, body = receiver.requests[-1]
    signed = hmac.new(hook["secret"].encode(),
                      headers["X-Firewarden-Timestamp"].encode() + b"." + body, hashlib.sha256)
    assert headers["X-Firewarden-Signature"] == "sha256=" + signed.hexdigest()
    change = json.loads(body)
    assert (change["action"], change["alert"]["type"], change["alert"]["site_id"]) == (
        "raised", "fire", "S1")

    [fire] = await alerts(api, type="fire")
    await api.client.post(f"/api/v1/alerts/{fire['id']}/resolve", json={"outcome": "real_fire"},
                          headers=api.as_(Role.OPERATOR))
    assert await api.webhooks.send_due() == 1
    confirmed = json.loads(receiver.requests[-1][1])
    assert (confirmed["action"], confirmed["alert"]["outcome"]) == ("resolved", "real_fire")


async def test_webhook_admin_only_and_validated(api: ApiHarness, receiver: Receiver) -> None:
    body = {"name": "x", "url": receiver.url}
    assert (await api.client.post("/api/v1/webhooks", json=body,
                                  headers=api.as_(Role.OPERATOR))).status_code == 403
    bad_type = await api.client.post("/api/v1/webhooks", json={**body, "types": ["smoke"]},
                                     headers=api.as_(Role.ADMIN))
    assert bad_type.status_code == 422 and bad_type.json()["detail"][0]["loc"] == [
        "body", "types", 0]
    bad_url = await api.client.post("/api/v1/webhooks", json={**body, "url": "ftp://x"},
                                    headers=api.as_(Role.ADMIN))
    assert bad_url.status_code == 422 and bad_url.json()["detail"][0]["loc"] == ["body", "url"]
    made = (await api.client.post("/api/v1/webhooks", json={**body, "types": ["fire"]},
                                  headers=api.as_(Role.ADMIN))).json()
    listed = (await api.client.get("/api/v1/webhooks", headers=api.as_(Role.ADMIN))).json()
    assert [h["id"] for h in listed] == [made["id"]] and "secret" not in listed[0]
    paused = await api.client.patch(f"/api/v1/webhooks/{made['id']}", json={"active": False},
                                    headers=api.as_(Role.ADMIN))
    assert paused.json()["active"] is False
    await send(api, "smoke", "sd-1", "event", event="smoke_alarm")
    assert await api.webhooks.send_due() == 0  # paused: nothing queued
    assert (await api.client.delete(f"/api/v1/webhooks/{made['id']}",
                                    headers=api.as_(Role.ADMIN))).status_code == 204
