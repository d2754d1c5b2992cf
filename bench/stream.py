"""Live stream with many clients: latency from a fire alarm's publish to its delivery on
every connected client, and the server memory each client costs.

    .venv/bin/python bench/stream.py [--clients 200] [--alarms 50] [--rate 5]

Runs ``firewarden up`` (SQLite, a private Mosquitto), connects ``--clients`` SSE
clients (one asyncio process, httpx), then publishes ``--alarms`` smoke alarms,
each from a different detector, stamped with the publish time.  Every client
records when each ``raised`` change arrives; latency = arrival - the alarm's
timestamp (the alert's ``opened_at``).  Memory per client is the growth of the
server's resident memory while the clients connect, divided by their number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from firewarden.ports import free_port  # noqa: E402
from simulators import FleetSimulation, SimConfig, write_registry_csv  # noqa: E402
from tests.support.mosquitto import MosquittoServer  # noqa: E402
from tests.support.up import wait_ready  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def client(url: str, key: str, ready: asyncio.Event, arrivals: list[float],
                 expected: int, connected: list[int]) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=120)) as http, http.stream(
            "GET", f"{url}/api/v1/alerts/stream", headers={"Authorization": f"Bearer {key}"}
    ) as response:
        connected.append(1)
        event = None
        seen = 0
        async for line in response.aiter_lines():
            if line.startswith("retry:"):
                ready.set()
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "alert":
                change = json.loads(line[6:])
                if change["action"] == "raised":
                    opened = datetime.fromisoformat(change["alert"]["opened_at"]).timestamp()
                    arrivals.append(time.time() - opened)
                    seen += 1
                    if seen == expected:
                        return


async def run(args: argparse.Namespace, url: str, key: str, pid: int, mqtt_port: int,
              detectors: list[str]) -> None:
    before = rss_kib(pid)
    arrivals: list[float] = []
    connected: list[int] = []
    readies = [asyncio.Event() for _ in range(args.clients)]
    tasks = [asyncio.create_task(client(url, key, r, arrivals, args.alarms, connected))
             for r in readies]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
    await asyncio.sleep(2)
    after = rss_kib(pid)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2)
    publisher.connect("127.0.0.1", mqtt_port)
    publisher.loop_start()
    for i in range(args.alarms):
        body = {"event": "smoke_alarm", "ts": int(time.time() * 1000)}
        publisher.publish(f"fw/smoke/{detectors[i]}/event", json.dumps(body), qos=1)
        await asyncio.sleep(1 / args.rate)
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    publisher.loop_stop()
    arrivals.sort()
    print(f"clients: {len(connected)}; alarms: {args.alarms} at {args.rate}/s; deliveries: "
          f"{len(arrivals)} (expected {args.clients * args.alarms})")
    print(f"publish -> delivered on every client: p50 {statistics.median(arrivals) * 1000:.0f} ms,"
          f" p99 {arrivals[int(len(arrivals) * 0.99)] * 1000:.0f} ms, max "
          f"{arrivals[-1] * 1000:.0f} ms")
    print(f"server memory: {before / 1024:.0f} MiB before clients, {after / 1024:.0f} MiB with "
          f"them: {(after - before) / args.clients:.0f} KiB per client")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--alarms", type=int, default=50)
    parser.add_argument("--rate", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        mosquitto = MosquittoServer(work / "m")
        mosquitto.start()
        up = None
        try:
            sim = FleetSimulation(SimConfig(smoke=max(args.alarms, 10), electrical=5,
                                            controlrooms=2, seed=5))
            port = free_port()
            env = {**os.environ, "FIREWARDEN_MQTT_URL": mosquitto.url,
                   "FIREWARDEN_API_PORT": str(port), "FIREWARDEN_DATA_DIR": str(work / "data"),
                   "FIREWARDEN_LOG_LEVEL": "WARNING",
                   "FIREWARDEN_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'fw.db'}"}
            write_registry_csv(sim.fleet, work / "fleet.csv")

            def cli(*argv: str) -> str:
                return subprocess.run([sys.executable, "-m", "firewarden.cli", *argv], env=env,
                                      cwd=work, check=True, capture_output=True,
                                      text=True).stdout.strip()

            cli("devices", "import", str(work / "fleet.csv"))
            key = cli("keys", "create", "--role", "viewer", "--name", "bench")
            up = subprocess.Popen([sys.executable, "-m", "firewarden.cli", "up"], env=env,
                                  cwd=work, stdout=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            wait_ready(url)
            detectors = [d.id for d in sim.fleet.devices if d.kind == "smoke"]
            asyncio.run(run(args, url, key, up.pid, mosquitto.port, detectors))
        finally:
            if up is not None:
                up.terminate()
                up.wait(60)
            mosquitto.stop()


if __name__ == "__main__":
    main()
