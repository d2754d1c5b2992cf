"""Event lane latency: from an event's publish to its hand-off to the alert engine,
while telemetry flows (issue 4: p99 under 50 ms at half the top telemetry rate).

    .venv/bin/python bench/event_latency.py [--telemetry-rate 2000] [--seconds 30]

Runs ``firewarden up`` against a private Mosquitto and InfluxDB; the C publisher
(bench/mqtt_blast.c) sends telemetry at the given rate while a Python publisher
sends 20 events per second stamped with the publish time.  The latency is read
from Firewarden's own histogram ``firewarden_event_handoff_seconds`` (event
``ts`` to hand-off; publisher and Firewarden share this machine's clock), so
percentiles are given as the bucket bound they fall in.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from firewarden.ports import free_port  # noqa: E402
from simulators import write_registry_csv  # noqa: E402
from tests.support.influx import InfluxServer  # noqa: E402
from tests.support.mosquitto import MosquittoServer  # noqa: E402

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from ingest import build_publisher, messages_file  # type: ignore[import-not-found]  # noqa: E402


def histogram(metrics: str, name: str) -> list[tuple[float, float]]:
    buckets = []
    for line in metrics.splitlines():
        if line.startswith(f"{name}_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if bound == "+Inf" else float(bound),
                            float(line.rsplit(" ", 1)[1])))
    return buckets


def percentile(buckets: list[tuple[float, float]], q: float) -> float:
    total = buckets[-1][1]
    for bound, count in buckets:
        if count >= q * total:
            return bound
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--telemetry-rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        mosquitto, influx = MosquittoServer(work / "m"), InfluxServer(work / "i")
        mosquitto.start()
        influx.start()
        up = None
        try:
            publisher = build_publisher(work)
            data = work / "messages.tsv"
            sim = messages_file(data, int(args.telemetry_rate * args.seconds))
            port = free_port()
            env = {**os.environ, "FIREWARDEN_MQTT_URL": mosquitto.url,
                   "FIREWARDEN_INFLUX_URL": influx.url, "FIREWARDEN_API_PORT": str(port),
                   "FIREWARDEN_DATA_DIR": str(work / "data"), "FIREWARDEN_LOG_LEVEL": "WARNING",
                   "FIREWARDEN_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'fw.db'}"}
            write_registry_csv(sim.fleet, work / "fleet.csv")
            subprocess.run([sys.executable, "-m", "firewarden.cli", "devices", "import",
                            str(work / "fleet.csv")], env=env, cwd=work, check=True,
                           capture_output=True)
            up = subprocess.Popen([sys.executable, "-m", "firewarden.cli", "up"], env=env,
                                  cwd=work, stdout=subprocess.DEVNULL)
            for _ in range(200):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            rooms = [d for d in sim.fleet.devices if d.kind == "controlroom"]
            stop = threading.Event()

            def events() -> None:
                client = mqtt.Client(CallbackAPIVersion.VERSION2)
                client.connect("127.0.0.1", mosquitto.port)
                client.loop_start()
                i = 0
                while not stop.is_set():
                    room = rooms[i % len(rooms)]
                    body = {"event": "operator_login", "operator": "bench",
                            "ts": int(time.time() * 1000), "seq": i}
                    client.publish(f"fw/controlroom/{room.id}/event", json.dumps(body), qos=1)
                    i += 1
                    time.sleep(0.05)
                client.disconnect()
                client.loop_stop()

            sender = threading.Thread(target=events)
            sender.start()
            subprocess.run([str(publisher), "127.0.0.1", str(mosquitto.port),
                            str(args.telemetry_rate), str(args.seconds), "1", str(data)],
                           check=True, capture_output=True)
            stop.set()
            sender.join()
            time.sleep(1)
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        finally:
            if up is not None:
                up.send_signal(signal.SIGINT)
                up.wait(60)
            influx.stop()
            mosquitto.stop()
    buckets = histogram(metrics, "firewarden_event_handoff_seconds")
    print(f"events: {int(buckets[-1][1])} while telemetry flowed at {args.telemetry_rate}/s "
          f"for {args.seconds:.0f} s")
    for q in (0.5, 0.9, 0.99):
        print(f"  p{int(q * 100)}: <= {percentile(buckets, q) * 1000:g} ms")


if __name__ == "__main__":
    main()
