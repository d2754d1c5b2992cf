"""Maximum sustained ingest rate: Firewarden (1 and 2 workers), Node-RED, a bare paho subscriber.

    .venv/bin/python bench/ingest.py [--rates 10000,20000,30000,40000] [--seconds 15]

For each system and each rate of the ladder, a low-CPU C publisher
(bench/mqtt_blast.c, libmosquitto) sends simulated traffic at that rate for
``--seconds`` to one private Mosquitto; the system keeps up at that rate if
every message is stored in InfluxDB (checked by query) within 2 s of the end
of publishing (for the paho subscriber: received), and the publisher could
send at that rate (a broker too busy to acknowledge holds it back).  Reported:
the highest rate kept up, the ratios to Node-RED, each system's peak resident
memory, and for each step the CPU time every process used per message.

Needs: gcc and libmosquitto-dev (Debian), Node.js and npm (Node-RED 4 and
node-red-contrib-influxdb are installed into bench/.cache on first use),
influxd and mosquitto (scripts/test installs them).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchkit import cpu_seconds, fleet_simulation  # noqa: E402

from simulators import FleetSimulation, write_registry_csv  # noqa: E402
from tests.support.influx import InfluxServer  # noqa: E402
from tests.support.mosquitto import MosquittoServer  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
MEASUREMENTS = ("smoke", "electrical", "controlroom")
DRAIN_S = 2.0
PAHO_NULL = r"""
import sys, threading, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
count = 0
def on_message(c, u, m):
    global count
    count += 1
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="paho-null", clean_session=False)
c.on_message = on_message
c.on_connect = lambda c, *a: c.subscribe(sys.argv[2], qos=1)
c.connect("127.0.0.1", int(sys.argv[1]))
c.loop_start()
print("ready", flush=True)
for line in sys.stdin:  # each line asks for the count so far
    print(count, flush=True)
"""


def build_publisher(workdir: Path) -> Path:
    binary = workdir / "mqtt_blast"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(ROOT / "bench" / "mqtt_blast.c"),
                    "-lmosquitto"], check=True)
    return binary


def node_red() -> Path:
    binary = CACHE / "node_modules" / ".bin" / "node-red"
    if not binary.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(CACHE), "node-red@4",
                        "node-red-contrib-influxdb"], check=True, capture_output=True)
    return binary


def messages_file(path: Path, count: int) -> FleetSimulation:
    """``count`` messages of :func:`fleet_simulation`, one per line: topic, tab, payload."""
    sim = fleet_simulation()
    with path.open("w") as out:
        for message in itertools.islice(sim.messages(), count):
            out.write(f"{message.topic}\t{message.payload.decode()}\n")
    return sim


def rss_peak_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class System:
    name = ""

    def reset(self) -> None:
        """Forget what was stored (each rate step resends the same messages)."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[str]] = []

    def start(self) -> None: ...

    def stored(self) -> int:
        raise NotImplementedError

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.processes)

    def peak_mib(self) -> float:
        return sum(rss_peak_kib(p.pid) for p in self.processes) / 1024

    def stop(self) -> None:
        for p in self.processes:
            p.send_signal(signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()


class InfluxCounted(System):
    def __init__(self, influx: InfluxServer, db: str) -> None:
        super().__init__()
        self.influx, self.db = influx, db
        self.reset()

    def reset(self) -> None:
        import httpx

        for statement in (f'DROP DATABASE "{self.db}"', f'CREATE DATABASE "{self.db}"'):
            httpx.post(f"{self.influx.url}/query", params={"q": statement}).raise_for_status()

    def stored(self) -> int:
        return sum(self.influx.count(self.db, m, "seq") for m in MEASUREMENTS)


class Firewarden(InfluxCounted):
    def __init__(self, workers: int, env: dict[str, str], influx: InfluxServer, workdir: Path
                 ) -> None:
        self.name = f"firewarden x{workers}"
        super().__init__(influx, f"bench_fw{workers}")
        self.workers, self.env, self.workdir = workers, env, workdir

    def start(self) -> None:
        for i in range(self.workers):
            env = {**self.env, "FIREWARDEN_INFLUX_DB": self.db,
                   "FIREWARDEN_MQTT_CLIENT_ID": f"bench-{self.workers}-{i}",
                   "FIREWARDEN_DATA_DIR": str(self.workdir / f"data-{self.workers}-{i}"),
                   "FIREWARDEN_LOG_LEVEL": "WARNING"}
            if self.workers > 1:
                env["FIREWARDEN_MQTT_SHARED_GROUP"] = "bench"
            process = subprocess.Popen([sys.executable, "-m", "firewarden.cli", "ingest"],
                                       env=env, cwd=self.workdir, stdout=subprocess.PIPE,
                                       text=True)
            assert process.stdout is not None
            assert "is up" in process.stdout.readline()
            self.processes.append(process)


class NodeRed(InfluxCounted):
    name = "node-red"

    def __init__(self, mosquitto: MosquittoServer, influx: InfluxServer, workdir: Path) -> None:
        super().__init__(influx, "bench_nodered")
        self.mosquitto, self.workdir = mosquitto, workdir

    def start(self) -> None:
        from firewarden.ports import free_port

        user = self.workdir / "nodered-user"
        user.mkdir(exist_ok=True)
        flows = Path("/work/shared/bench/nodered/flows.json")
        if not flows.exists():
            flows = ROOT.parent / "shared" / "bench" / "nodered" / "flows.json"
        shutil.copy(flows, user / "flows.json")
        env = {**os.environ, "MQTT_PORT": str(self.mosquitto.port),
               "INFLUX_PORT": str(self.influx.port), "INFLUX_DB": self.db, "TOPIC": "fw/+/+/+"}
        process = subprocess.Popen([str(node_red()), "-u", str(user), "-p", str(free_port()),
                                    "flows.json"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            if "Connected to broker" in line:
                break
        self.processes.append(process)
        time.sleep(1)


class PahoNull(System):
    name = "paho subscriber (does nothing)"

    def __init__(self, mosquitto: MosquittoServer) -> None:
        super().__init__()
        self.mosquitto = mosquitto

    def start(self) -> None:
        process = subprocess.Popen([sys.executable, "-c", PAHO_NULL, str(self.mosquitto.port),
                                    "fw/+/+/+"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        self.processes.append(process)

    def stored(self) -> int:
        process = self.processes[0]
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write("\n")
        process.stdin.flush()
        return int(process.stdout.readline())


Publish = Callable[[int, float], tuple[int, float, float]]
"""Sends at a rate for some seconds; returns the messages sent, the seconds publishing
took (longer than asked when the broker held the publisher back) and its CPU seconds."""


def ladder(system: System, rates: list[int], seconds: float, publish: Publish,
           servers: dict[str, int]) -> tuple[int, list[str]]:
    best, notes = 0, []
    system.start()
    try:
        for rate in rates:
            system.reset()
            before = system.stored()
            cpu_before = {name: cpu_seconds(pid) for name, pid in servers.items()}
            cpu_before["system"] = system.cpu_seconds()
            sent, took, publisher_cpu = publish(rate, seconds)
            # One count, 2 s after the last message was acknowledged by the broker: polling
            # count() meanwhile would load InfluxDB with scans and slow every system down.
            time.sleep(DRAIN_S)
            cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in servers.items()}
            cpu["system"] = system.cpu_seconds() - cpu_before["system"]
            cpu["publisher"] = publisher_cpu
            got = system.stored() - before
            on_time = took <= seconds * 1.05  # else the broker held the publisher back
            kept_up = got >= sent and on_time
            # CPU per message sent, over the publishing and the drain: what each part costs.
            per_message = ", ".join(f"{name} {value / max(sent, 1) * 1e6:.1f}"
                                    for name, value in cpu.items())
            notes.append(f"{rate:>7}/s: {got}/{sent} within {DRAIN_S:.0f} s"
                         + ("" if kept_up else "  (fell behind)")
                         + ("" if on_time else f"; publishing took {took:.1f} s")
                         + f"; CPU µs/msg: {per_message}")
            print(f"  {system.name:<32} {notes[-1]}", flush=True)
            if not kept_up:
                drain_until = time.monotonic() + 60  # let the backlog clear before stopping
                while system.stored() - before < sent and time.monotonic() < drain_until:
                    time.sleep(5)
                break
            best = rate
    finally:
        peak = system.peak_mib()
        system.stop()
    notes.append(f"peak memory {peak:.0f} MiB")
    return best, notes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="10000,15000,20000,25000,30000,35000,40000,50000")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--systems", default="paho,nodered,firewarden1,firewarden2")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        mosquitto = MosquittoServer(work / "mosquitto")
        mosquitto.start()
        influx = InfluxServer(work / "influx")
        influx.start()
        try:
            publisher = build_publisher(work)
            data = work / "messages.tsv"
            started = time.perf_counter()
            sim = messages_file(data, int(max(rates) * args.seconds))
            print(f"generated {int(max(rates) * args.seconds):,} messages in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            env = {**os.environ, "FIREWARDEN_MQTT_URL": mosquitto.url,
                   "FIREWARDEN_INFLUX_URL": influx.url,
                   "FIREWARDEN_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'fw.db'}"}
            fleet = work / "fleet.csv"
            write_registry_csv(sim.fleet, fleet)
            subprocess.run([sys.executable, "-m", "firewarden.cli", "devices", "import",
                            str(fleet)], env=env, cwd=work, check=True, capture_output=True)

            def publish(rate: int, seconds: float) -> tuple[int, float]:
                process = subprocess.Popen([str(publisher), "127.0.0.1", str(mosquitto.port),
                                            str(rate), str(seconds), "1", str(data)],
                                           stdout=subprocess.PIPE, text=True)
                assert process.stdout is not None
                out = process.stdout.read()
                _pid, status, usage = os.wait4(process.pid, 0)
                process.returncode = os.waitstatus_to_exitcode(status)
                if process.returncode != 0:
                    raise RuntimeError(f"publisher failed ({process.returncode}): {out}")
                words = out.split()
                return int(words[1]), float(words[5]), usage.ru_utime + usage.ru_stime

            servers = {"mosquitto": mosquitto.pid, "influxd": influx.pid}

            systems: dict[str, System] = {
                "paho": PahoNull(mosquitto),
                "nodered": NodeRed(mosquitto, influx, work),
                "firewarden1": Firewarden(1, env, influx, work),
                "firewarden2": Firewarden(2, env, influx, work),
            }
            results = {}
            for key in args.systems.split(","):
                results[key] = ladder(systems[key], rates, args.seconds, publish, servers)
        finally:
            influx.stop()
            mosquitto.stop()

    print(f"\nhighest rate kept up ({args.seconds:.0f} s at each rate, stored within "
          f"{DRAIN_S:.0f} s):")
    peer = results.get("nodered", (0, []))[0]
    for key, (best, notes) in results.items():
        ratio = f"{best / peer:.2f}x Node-RED" if peer else ""
        print(f"  {systems[key].name:<32} {best:>7}/s  {ratio:<16} {notes[-1]}")
    print(json.dumps({k: v[0] for k, v in results.items()}))


if __name__ == "__main__":
    main()
