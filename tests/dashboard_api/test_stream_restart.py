"""The stream resumes with Last-Event-ID across a restart of ``firewarden up``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.mosquitto import MosquittoServer
from tests.support.up import UpProcess


@pytest.fixture
def up(tmp_path: Path, mosquitto: MosquittoServer) -> Iterator[UpProcess]:
    process = UpProcess(tmp_path, mosquitto)
    yield process
    process.close()


def read_alerts(up: UpProcess, count: int, last_event_id: int | None = None,
                during: Any = None) -> list[tuple[int, dict[str, Any]]]:
    """Open the stream, call ``during()`` once it is open, read ``count`` alert events."""
    headers = {"Authorization": f"Bearer {up.key}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    got: list[tuple[int, dict[str, Any]]] = []
    with httpx.stream("GET", f"{up.url}/api/v1/alerts/stream", headers=headers,
                      timeout=httpx.Timeout(10, read=15)) as response:
        assert response.status_code == 200
        event_id, event = None, None
        for line in response.iter_lines():
            if line.startswith("retry:") and during is not None:
                during()
            elif line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "alert":
                assert event_id is not None
                got.append((event_id, json.loads(line[6:])))
                if len(got) == count:
                    return got
    return got


def wait_alerts(up: UpProcess, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(up.get("/api/v1/alerts")["data"]) < count and time.monotonic() < deadline:
        time.sleep(0.2)


def test_resume_after_a_restart_in_order(up: UpProcess) -> None:
    smoke = [d.id for d in up.sim.fleet.devices if d.kind == "smoke"]
    [(first_id, first)] = read_alerts(
        up, 1, during=lambda: up.send("smoke", smoke[0], "event", event="smoke_alarm"))
    assert first["alert"]["device_id"] == smoke[0]

    up.send("smoke", smoke[1], "event", event="tamper")  # while the client is away
    wait_alerts(up, 2)
    up.restart()
    up.send("smoke", smoke[2], "event", event="fault")  # after the restart
    wait_alerts(up, 3)

    missed = read_alerts(up, 3, last_event_id=first_id,
                         during=lambda: up.send("smoke", smoke[1], "event",
                                                event="tamper_clear"))
    assert [(c["action"], c["alert"]["device_id"]) for _, c in missed] == [
        ("raised", smoke[1]), ("raised", smoke[2]), ("auto_resolved", smoke[1])]
    ids = [first_id] + [i for i, _ in missed]
    assert ids == sorted(ids) and len(set(ids)) == 4
