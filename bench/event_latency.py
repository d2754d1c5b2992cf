"""Event and alert latency while telemetry flows: from a fire alarm's publish to its
hand-off to the alert engine (issue 4: p99 under 50 ms), and to the alert being
stored and announced (issue 5: p99 under 100 ms), at half the top telemetry rate.

    .venv/bin/python bench/event_latency.py [--telemetry-rate 2000] [--seconds 30]

Runs ``firewarden up`` against a private Mosquitto and InfluxDB; the C publisher
(bench/mqtt_blast.c) sends telemetry at the given rate while a Python publisher
sends 20 ``smoke_alarm`` events per second (cycling over the fleet's detectors, so
most are repeats counted on an open alert) stamped with the publish time.  The
latencies are read from Firewarden's own histograms
``firewarden_event_handoff_seconds`` and
``firewarden_alert_raise_latency_seconds{trigger="reading"}`` (event ``ts`` to
hand-off, and to stored and announced; publisher and Firewarden share this
machine's clock), so percentiles are given as the bucket bound they fall in.
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
from tests.support.up import wait_ready  # noqa: E402

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from ingest import build_publisher, messages_file  # type: ignore[import-not-found]  # noqa: E402


def histogram(metrics: str, name: str, labels: str = "") -> list[tuple[float, float]]:
    buckets = []
    for line in metrics.splitlines():
        if line.startswith(f"{name}_bucket{{") and labels in line:
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
    parser.add_argument("--database-url", default=None,
                        help="default: a SQLite file in the temp dir")
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
                   "FIREWARDEN_DATABASE_URL": args.database_url
                   or f"sqlite+aiosqlite:///{work / 'fw.db'}"}
            write_registry_csv(sim.fleet, work / "fleet.csv")
            subprocess.run([sys.executable, "-m", "firewarden.cli", "devices", "import",
                            str(work / "fleet.csv")], env=env, cwd=work, check=True,
                           capture_output=True)
            up = subprocess.Popen([sys.executable, "-m", "firewarden.cli", "up"], env=env,
                                  cwd=work, stdout=subprocess.DEVNULL)
            wait_ready(f"http://127.0.0.1:{port}", 20)
            detectors = [d for d in sim.fleet.devices if d.kind == "smoke"]
            stop = threading.Event()

            def events() -> None:
                # No network thread: publish() then writes the packet at once from this
                # thread, so the time stamped is the time sent, not when a busy machine
                # gets round to waking paho's thread.  loop() reads the PUBACKs.
                client = mqtt.Client(CallbackAPIVersion.VERSION2)
                client.connect("127.0.0.1", mosquitto.port)
                i = 0
                while not stop.is_set():
                    detector = detectors[i % len(detectors)]
                    body = {"event": "smoke_alarm", "ts": int(time.time() * 1000), "seq": i}
                    client.publish(f"fw/smoke/{detector.id}/event", json.dumps(body), qos=1)
                    i += 1
                    pause = time.monotonic() + 0.05
                    while (left := pause - time.monotonic()) > 0:
                        client.loop(timeout=left)
                client.disconnect()

            sender = threading.Thread(target=events)
            sender.start()
            sent = int(subprocess.run([str(publisher), "127.0.0.1", str(mosquitto.port),
                                       str(args.telemetry_rate), str(args.seconds), "1",
                                       str(data)], check=True, capture_output=True, text=True
                                      ).stdout.split()[1])
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
    handoff = histogram(metrics, "firewarden_event_handoff_seconds")
    alerts = histogram(metrics, "firewarden_alert_raise_latency_seconds", 'trigger="reading"')
    stored = histogram(metrics, "firewarden_alert_store_seconds")
    # Telemetry must keep up too (the telemetry lane gives way to alerts being stored).
    written = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                  if line.startswith("firewarden_points_written_total"))
    events = int(handoff[-1][1])
    print(f"fire alarms: {events} while telemetry flowed at {args.telemetry_rate}/s for "
          f"{args.seconds:.0f} s; {int(alerts[-1][1])} alert raises; telemetry stored 1 s "
          f"after the end: {int(written) - events:,} of {sent:,}")
    for label, buckets in (("hand-off to the alert engine", handoff),
                           ("alert stored and announced", alerts),
                           ("of which queued and stored by the recorder", stored)):
        print(f"  {label}: " + ", ".join(
            f"p{int(q * 100)} <= {percentile(buckets, q) * 1000:g} ms" for q in (0.5, 0.9, 0.99)))


if __name__ == "__main__":
    main()
