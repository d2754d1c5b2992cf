"""InfluxDB's CPU per point: Firewarden's schema against the Node-RED peer flow's.

    .venv/bin/python bench/influx_points.py [--messages 200000] [--batch 2000] [--runs 2]

Takes the benchmarks' simulated messages (bench/benchkit.py), turns each into the
point Firewarden stores (docs/storage.md: every field, four tags) and into the
point the peer flow in ../shared/bench/nodered stores (top-level numbers and
strings other than ``ts``; tags ``device_id`` and ``channel``), writes each set
to a fresh database of one private InfluxDB in batches, and reports the server's
CPU time per point.  This is why InfluxDB costs more per message for Firewarden
in bench/ingest.py (docs/performance.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchkit import cpu_seconds, fleet_simulation  # noqa: E402

from devices import MessageDecoder, Reading  # noqa: E402
from devices.profiles import effective_profile  # noqa: E402
from devices.registry.cache import DeviceInfo  # noqa: E402
from ingest.line_protocol import encode_point  # noqa: E402
from ingest.points import point_for  # noqa: E402
from tests.support.influx import InfluxServer  # noqa: E402


def lines(count: int) -> tuple[list[str], list[str]]:
    """(Firewarden's lines, the peer flow's lines) for the same messages."""
    decoder = MessageDecoder("fw", max_age_s=10**9)
    now_ms = int(time.time() * 1000)
    ours, peers = [], []
    for message in itertools.islice(fleet_simulation().messages(), count):
        reading = decoder.decode(message.topic, message.payload, now_ms)
        assert isinstance(reading, Reading), reading
        device = DeviceInfo(reading.device_id, reading.kind, "site-0001", "西湖区", "active", 0,
                            effective_profile(reading.kind, None, None), 2)
        ours.append(encode_point(point_for(reading, device)))
        body = json.loads(message.payload)  # what the peer flow's function node keeps
        fields = ",".join(f"{k}={v}" if not isinstance(v, str) else f'{k}="{v}"'
                          for k, v in body.items()
                          if k != "ts" and isinstance(v, int | float | str))
        peers.append(f"{reading.kind.value},device_id={reading.device_id},"
                     f"channel={reading.channel.value} {fields} {reading.ts_ms}")
    return ours, peers


def cost(influx: InfluxServer, points: list[str], batch: int) -> float:
    """Server CPU seconds per point for writing ``points`` to a fresh database."""
    db = f"points_{time.monotonic_ns()}"
    httpx.post(f"{influx.url}/query", params={"q": f'CREATE DATABASE "{db}"'}).raise_for_status()
    before = cpu_seconds(influx.pid)
    with httpx.Client(timeout=60) as client:
        for start in range(0, len(points), batch):
            client.post(f"{influx.url}/write", params={"db": db, "precision": "ms"},
                        content="\n".join(points[start:start + batch]).encode()
                        ).raise_for_status()
    time.sleep(1)  # work the server does just after answering counts too
    return (cpu_seconds(influx.pid) - before) / len(points)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    ours, peers = lines(args.messages)
    print(f"Firewarden: {sum(map(len, ours)) / len(ours):.0f} bytes a line, e.g.\n  {ours[0]}")
    print(f"peer flow:  {sum(map(len, peers)) / len(peers):.0f} bytes a line, e.g.\n"
          f"  {peers[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        influx = InfluxServer(Path(tmp))
        influx.start()
        try:
            for run in range(1, args.runs + 1):
                print(f"run {run}: InfluxDB CPU per point: Firewarden "
                      f"{cost(influx, ours, args.batch) * 1e6:.1f} µs, peer flow "
                      f"{cost(influx, peers, args.batch) * 1e6:.1f} µs", flush=True)
        finally:
            influx.stop()


if __name__ == "__main__":
    main()
