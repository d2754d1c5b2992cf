"""``firewarden up`` as a separate process, for tests that need the whole product."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from firewarden.ports import free_port
from simulators import FleetSimulation, SimConfig, write_registry_csv
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import publish

_runs = itertools.count(1)


def wait_ready(url: str, seconds: float = 60) -> bool:
    """Wait until ``{url}/ready`` answers 200 (MQTT connected, database reachable)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready").status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


class UpProcess:
    """``firewarden up`` against a test Mosquitto, with a small registered fleet and an
    operator key; ``restart`` keeps the database."""

    def __init__(self, tmp: Path, mosquitto: MosquittoServer) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mosquitto = mosquitto
        self.prefix = f"up{next(_runs)}x{os.getpid()}"
        self.env = {**os.environ, "FIREWARDEN_MQTT_URL": mosquitto.url,
                    "FIREWARDEN_TOPIC_PREFIX": self.prefix,
                    "FIREWARDEN_MQTT_CLIENT_ID": f"ingest-{self.prefix}",
                    "FIREWARDEN_API_PORT": str(self.port), "FIREWARDEN_DATA_DIR": str(tmp / "data"),
                    "FIREWARDEN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'fw.db'}"}
        self.sim = FleetSimulation(SimConfig(smoke=3, electrical=2, controlrooms=1, seed=3,
                                             prefix=self.prefix))
        fleet = tmp / "fleet.csv"
        write_registry_csv(self.sim.fleet, fleet)
        self.cli("devices", "import", str(fleet))
        self.key = self.cli("keys", "create", "--role", "operator", "--name", "console test")
        self.tmp = tmp
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "firewarden.cli", "up"],
                                        env=self.env, cwd=self.tmp, stdout=subprocess.DEVNULL,
                                        stderr=(self.tmp / "up.log").open("a"))
        if not wait_ready(self.url):
            raise AssertionError((self.tmp / "up.log").read_text())

    def restart(self) -> None:
        self.close()
        self.start()

    def cli(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-m", "firewarden.cli", *args], env=self.env,
                              capture_output=True, text=True, check=True, timeout=120
                              ).stdout.strip()

    def get(self, path: str, **params: Any) -> Any:
        return httpx.get(f"{self.url}{path}", params=params,
                         headers={"Authorization": f"Bearer {self.key}"}).json()

    def send(self, kind: str, device_id: str, channel: str, **body: Any) -> None:
        body.setdefault("ts", int(time.time() * 1000))
        publish(self.mosquitto.port, f"{self.prefix}/{kind}/{device_id}/{channel}",
                json.dumps(body).encode())

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(30)
