"""`firewarden up --demo`: starts, counts on /metrics, stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from firewarden.ports import free_port


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_up_demo_counts_messages_and_stops_cleanly(tmp_path: Path) -> None:
    api_port, mqtt_port = free_port(), free_port()
    env = {**os.environ, "FIREWARDEN_API_PORT": str(api_port),
           "FIREWARDEN_EMBEDDED_MQTT_PORT": str(mqtt_port), "FIREWARDEN_DATA_DIR":
           str(tmp_path / "data")}
    env.pop("FIREWARDEN_MQTT_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "firewarden.cli", "up", "--demo"], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    banner: list[str] = []
    try:
        accepted = 0.0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and accepted < 20:
            time.sleep(0.5)
            try:
                metrics = httpx.get(f"http://127.0.0.1:{api_port}/metrics", timeout=2).text
            except httpx.HTTPError:
                continue
            accepted = _metric(metrics, "firewarden_messages_accepted_total")
        assert accepted >= 20, "demo traffic never reached the ingest counters"
        health = httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=2).json()
        assert health["mqtt_connected"] is True and health["messages"]["received"] >= 20
        assert httpx.get(f"http://127.0.0.1:{api_port}/ready", timeout=2).status_code == 200
        assert (tmp_path / "data" / "firewarden.db").is_file()
        key = next(line.split()[2] for line in _read_banner(proc, banner) if "API key:" in line)
        headers = {"Authorization": f"Bearer {key}"}
        devices = httpx.get(f"http://127.0.0.1:{api_port}/api/v1/devices", headers=headers,
                            timeout=5).json()
        assert devices["count"] == 49
        deadline = time.monotonic() + 20
        online = 0
        while online == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            online = httpx.get(f"http://127.0.0.1:{api_port}/api/v1/devices?status=online",
                               headers=headers, timeout=5).json()["count"]
        assert online > 0
    finally:
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
        output = "".join(banner) + output
    assert proc.returncode == 0, output
    assert time.monotonic() - stopped_at < 10, "shutdown took too long"
    assert f"http://127.0.0.1:{api_port}" in output and "Traceback" not in output


def _read_banner(proc: subprocess.Popen[str], into: list[str]) -> list[str]:
    """Output lines up to the end of the start-up banner."""
    assert proc.stdout is not None
    while not any("Press Ctrl-C" in line for line in into):
        line = proc.stdout.readline()
        assert line, "process ended before printing its banner"
        into.append(line)
    return into


def test_up_refuses_a_taken_api_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {**os.environ, "FIREWARDEN_API_PORT": str(taken.getsockname()[1]),
               "FIREWARDEN_EMBEDDED_MQTT_PORT": str(free_port())}
        result = subprocess.run([sys.executable, "-m", "firewarden.cli", "up"], env=env,
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "already in use" in result.stderr
