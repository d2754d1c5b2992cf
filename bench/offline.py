"""Offline detection: memory and per-message cost at 1,000,000 tracked devices, and the
lag from a deadline to the offline alert stored and announced.

    .venv/bin/python bench/offline.py [--devices 1000000] [--lag-devices 2000] [--runs 5]

Part 1 measures ``alerts.offline.OfflineTracker`` alone: the memory it adds
for N devices (tracemalloc), the cost of ``seen`` (what every message pays), and
the cost of expiring deadlines.  Part 2 runs the real timers and recorder on a
SQLite registry of ``--lag-devices`` monitors whose offline window is 10 s, hears
from each once (spread over 5 s), and measures, for every offline alert
announced on the bus, how long after its deadline it came.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import update  # noqa: E402

from alerts.announce import Announcer  # noqa: E402
from alerts.bus import AlertBus  # noqa: E402
from alerts.offline import OfflineTracker  # noqa: E402
from alerts.recorder import AlertRecorder  # noqa: E402
from alerts.timers import AlertTimers  # noqa: E402
from devices import DeviceKind  # noqa: E402
from devices.profiles import effective_profile  # noqa: E402
from devices.registry.cache import DeviceInfo, RegistryCache  # noqa: E402
from devices.registry.csv_import import import_csv  # noqa: E402
from devices.registry.tables import SiteRow  # noqa: E402
from firewarden.database import open_database  # noqa: E402
from simulators import FleetSimulation, SimConfig, write_registry_csv  # noqa: E402


def tracker_costs(devices: int, runs: int) -> None:
    ids = [f"EM{i:010d}" for i in range(devices)]
    now_ms = int(time.time() * 1000)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracker = OfflineTracker()
    tracker.track_many((device_id, now_ms + 180_000 + i % 60_000)
                       for i, device_id in enumerate(ids))
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    print(f"tracked devices: {len(tracker):,}; memory added by the tracker: "
          f"{used / 2**20:.0f} MiB ({used / devices:.0f} B per device, ids not counted)")

    profile = effective_profile(DeviceKind.ELECTRICAL, None, None)
    sample = [DeviceInfo(device_id, DeviceKind.ELECTRICAL, "s", "j", "active", 0, profile, 2)
              for device_id in ids[:: max(1, devices // 100_000)]]
    per_call = []
    for run in range(runs):
        at = now_ms + 100_000 + 1000 * run
        start = time.perf_counter()
        for info in sample:
            tracker.seen(info, at)
        per_call.append((time.perf_counter() - start) / len(sample))
    print(f"seen() per message: median {statistics.median(per_call) * 1e9:.0f} ns "
          f"over {runs} runs of {len(sample):,} calls")

    start = time.perf_counter()
    moved: list[tuple[str, int]] = []
    while batch := tracker.due(now_ms + 180_000 + 59_999):  # in slices, as the timers call it
        moved += batch
    elapsed = time.perf_counter() - start
    print(f"due() over all {devices:,} deadlines: {elapsed:.2f} s, {len(moved):,} expired "
          f"({elapsed / devices * 1e6:.2f} µs per entry; moved ones pushed again)")


async def detection_lag(devices: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sim = FleetSimulation(SimConfig(smoke=0, electrical=devices, controlrooms=0))
        csv = Path(tmp) / "fleet.csv"
        write_registry_csv(sim.fleet, csv)
        async with open_database(f"sqlite+aiosqlite:///{tmp}/fw.db") as (_engine, sessions):
            async with sessions() as session:
                await import_csv(session, csv.read_bytes())
                await session.execute(update(SiteRow).values(profiles={"electrical": {
                    "report_interval_s": 10, "missed_intervals": 1}}))
                await session.commit()
            registry = RegistryCache(sessions)
            await registry.load()
            bus = AlertBus()
            subscription = bus.subscribe(maxsize=devices * 2)
            recorder = AlertRecorder(sessions, Announcer(bus))
            offline = OfflineTracker()
            timers = AlertTimers(sessions, recorder, registry, offline, startup_grace_s=0)
            infos = list(registry.devices())
            start_ms = int(time.time() * 1000)
            for i, info in enumerate(infos):  # heard from once, spread over 5 s
                offline.seen(info, start_ms + 5000 * i // len(infos))
            stop = asyncio.Event()
            tasks = [asyncio.create_task(recorder.run(stop)), asyncio.create_task(timers.run(stop))]
            lags: list[float] = []
            deadline = time.monotonic() + 60
            while len(lags) < len(infos) and time.monotonic() < deadline:
                try:
                    change = await asyncio.wait_for(subscription.get(), 1)
                except TimeoutError:
                    continue
                if change.action == "raised" and change.alert.type == "offline":
                    lags.append(time.time() - change.alert.opened_at.timestamp())
            stop.set()
            await asyncio.gather(*tasks)
    lags.sort()
    print(f"offline alerts announced: {len(lags):,} of {len(infos):,} devices")
    print(f"lag from deadline to alert stored and announced: p50 {lags[len(lags) // 2] * 1000:.0f}"
          f" ms, p99 {lags[int(len(lags) * 0.99)] * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--lag-devices", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tracker_costs(args.devices, args.runs)
    asyncio.run(detection_lag(args.lag_devices))


if __name__ == "__main__":
    main()
