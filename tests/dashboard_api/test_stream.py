"""The live alert stream over a real HTTP connection: order, filters, replay, isolation."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from firewarden.keys import Role, revoke_key
from tests.alerts.test_alert_api import alerts, send
from tests.devices.registry.test_api import make_device, make_site
from tests.support.api import ApiHarness, api_harness, serving


class Events:
    """Reads one SSE connection: (event, id, data) tuples as they arrive."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self) -> tuple[str, int | None, Any]:
        return await asyncio.wait_for(self._read(), 10)

    async def _read(self) -> tuple[str, int | None, Any]:
        event, event_id, data = "message", None, ""
        async for line in self._lines:
            if line == "":
                if data:
                    return event, event_id, json.loads(data)
                event, event_id = "message", None
                continue
            if line.startswith(":"):
                if line.startswith(": keepalive"):
                    return "keepalive", None, None
                continue
            field, _, value = line.partition(": ")
            if field == "event":
                event = value
            elif field == "id":
                event_id = int(value)
            elif field == "data":
                data += value
        raise EOFError("stream closed")


@pytest.fixture
async def api(tmp_path: Any):  # type: ignore[no-untyped-def]
    async with api_harness(f"sqlite+aiosqlite:///{tmp_path / 'fw.db'}", stream_buffer=5,
                           STREAM_KEEPALIVE_S=0.5) as harness:
        await make_site(harness)
        await make_site(harness, id="S2", jurisdiction="城西派出所")
        for device_id, site in (("sd-1", "S1"), ("sd-2", "S2"), ("sd-3", "S1")):
            await make_device(harness, device_id, "smoke", site_id=site)
        await harness.registry.refresh()
        yield harness


async def stream(client: httpx.AsyncClient, api: ApiHarness, **params: Any
                 ) -> AsyncIterator[Events]:
    headers = {**api.as_(Role.VIEWER)}
    if "last_event_id" in params:
        headers["Last-Event-ID"] = str(params.pop("last_event_id"))
    async with client.stream("GET", "/api/v1/alerts/stream", params=params,
                             headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Events(response)


async def alert_events(events: Events, count: int) -> list[tuple[int, Any]]:
    out = []
    while len(out) < count:
        kind, event_id, data = await events.next()
        if kind == "alert":
            assert event_id == data["id"]
            out.append((event_id, data))
    return out


async def test_changes_arrive_in_order_and_filtered(api: ApiHarness) -> None:
    async with serving(api) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        everything = stream(client, api)
        east = stream(client, api, jurisdiction="城东派出所", severity="major")
        all_events, east_events = await anext(everything), await anext(east)
        started = time.monotonic()
        await send(api, "smoke", "sd-1", "event", event="smoke_alarm")
        await send(api, "smoke", "sd-2", "event", event="tamper")
        await send(api, "smoke", "sd-3", "event", event="tamper")
        [fire] = await alerts(api, type="fire")
        await api.client.post(f"/api/v1/alerts/{fire['id']}/acknowledge", json={},
                              headers=api.as_(Role.OPERATOR))
        got = await alert_events(all_events, 4)
        assert time.monotonic() - started < 5
        assert [(d["action"], d["alert"]["device_id"]) for _, d in got] == [
            ("raised", "sd-1"), ("raised", "sd-2"), ("raised", "sd-3"), ("acknowledged", "sd-1")]
        assert [i for i, _ in got] == sorted(i for i, _ in got)
        [(_, only)] = await alert_events(east_events, 1)
        assert (only["alert"]["device_id"], only["alert"]["type"]) == ("sd-3", "tamper")
        kind, _, _ = await east_events.next()
        assert kind == "keepalive"  # and nothing else for this filter
        await everything.aclose()
        await east.aclose()


async def test_reconnect_with_last_event_id_replays_what_was_missed(api: ApiHarness) -> None:
    async with serving(api) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        first = stream(client, api)
        events = await anext(first)
        await send(api, "smoke", "sd-1", "event", event="smoke_alarm")
        [(seen, _)] = await alert_events(events, 1)
        await first.aclose()
        await send(api, "smoke", "sd-2", "event", event="tamper")  # while away
        await send(api, "smoke", "sd-2", "event", event="tamper_clear")
        again = stream(client, api, last_event_id=seen)
        events = await anext(again)
        await asyncio.sleep(0.2)
        await send(api, "smoke", "sd-3", "event", event="fault")  # live again
        got = await alert_events(events, 3)
        assert [(d["action"], d["alert"]["device_id"]) for _, d in got] == [
            ("raised", "sd-2"), ("auto_resolved", "sd-2"), ("raised", "sd-3")]
        await again.aclose()

        unknown = stream(client, api, last_event_id=10**9)
        kind, _, data = await (await anext(unknown)).next()
        assert kind == "reset" and "reload" in data["reason"]
        await unknown.aclose()


async def test_a_stuck_client_is_told_to_resync_and_delays_no_one(api: ApiHarness) -> None:
    async with serving(api) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        stuck_client = api.stream.connect(lambda _c: True)  # never reads; buffer of 5
        reader = stream(client, api)
        events = await anext(reader)
        for n in range(12):
            await send(api, "smoke", f"sd-{n % 3 + 1}", "event", event="smoke_alarm")
        got = await alert_events(events, 12)
        assert len(got) == 12
        assert stuck_client.overflowed and stuck_client.queue.qsize() == 5
        api.stream.disconnect(stuck_client)
        await reader.aclose()

        # Over HTTP: a client whose buffer overflowed gets "resync" with its last id.
        slow = stream(client, api)
        events = await anext(slow)
        await asyncio.sleep(0.2)
        [sse_client] = [c for c in api.stream.clients]
        sse_client.overflowed = True
        await send(api, "smoke", "sd-1", "event", event="fault")
        kind, _, data = await events.next()
        while kind == "keepalive":
            kind, _, data = await events.next()
        assert kind == "resync" and "last_id" in data
        await slow.aclose()


async def test_a_revoked_key_ends_the_stream(api: ApiHarness) -> None:
    async with serving(api) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        opened = stream(client, api)
        events = await anext(opened)
        async with api.sessions() as session:
            from firewarden.keys import list_keys
            viewer = next(k for k in await list_keys(session) if k.role == "viewer")
            await revoke_key(session, viewer.id)
            await session.commit()
        kind = "keepalive"
        while kind == "keepalive":
            kind, _, _ = await events.next()
        assert kind == "unauthorized"
        await opened.aclose()
        refused = await client.get("/api/v1/alerts/stream", headers=api.as_(Role.VIEWER))
        assert refused.status_code == 401
