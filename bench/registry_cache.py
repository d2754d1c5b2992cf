"""Registry cache at scale: load time, memory and lookups per second.

    .venv/bin/python bench/registry_cache.py [--devices 1000000] [--runs 5]

Fills a fresh SQLite registry (migrated by Firewarden) with N devices at
N/1000 sites (a tenth with their own profile override), loads the cache the way
``firewarden up`` does, and measures resident memory added by the cache and
the rate of ``RegistryCache.get`` for registered and unknown ids.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from devices.registry.cache import RegistryCache
from firewarden.database import open_database


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def fill(path: Path, devices: int) -> None:
    db = sqlite3.connect(path)
    now = "2026-11-22 00:00:00.000000+00:00"
    sites = max(1, devices // 1000)
    db.executemany(
        "INSERT INTO sites (id, name, address, category, jurisdiction, contact_name, "
        "contact_phone, min_operators, profiles, created_at, updated_at) "
        "VALUES (?, ?, '', 'other', ?, '', '', 2, '{}', ?, ?)",
        ((f"S{i:06d}", f"site {i}", f"派出所{i % 50}", now, now) for i in range(sites)))
    kinds = ("smoke", "electrical", "controlroom")
    override = json.dumps({"report_interval_s": 21600})
    db.executemany(
        "INSERT INTO devices (id, kind, site_id, location, vendor, model, installer, state, "
        "profile, offline_after_s, created_at, updated_at) "
        "VALUES (?, ?, ?, '', '', '', '', 'active', ?, 90000, ?, ?)",
        ((f"86{i:013d}", kinds[i % 3], f"S{i % sites:06d}", override if i % 10 == 0 else "{}",
          now, now) for i in range(devices)))
    db.commit()
    db.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "registry.db"
        async with open_database(f"sqlite+aiosqlite:///{path}") as (_engine, sessions):
            started = time.perf_counter()
            await asyncio.to_thread(fill, path, args.devices)
            print(f"filled {args.devices:,} devices in {time.perf_counter() - started:.1f} s")
            cache = RegistryCache(sessions)
            gc.collect()
            before = rss_bytes()
            started = time.perf_counter()
            await cache.load()
            load_s = time.perf_counter() - started
            gc.collect()
            added = rss_bytes() - before
        assert len(cache) == args.devices

        ids = [f"86{i:013d}" for i in random.Random(1).sample(range(args.devices),
                                                              min(args.devices, 200_000))]
        unknown = [f"99{i:013d}" for i in range(len(ids))]
        hits, misses = [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            for device_id in ids:
                cache.get(device_id)
            hits.append(len(ids) / (time.perf_counter() - started))
            started = time.perf_counter()
            for device_id in unknown:
                cache.get(device_id)
            misses.append(len(unknown) / (time.perf_counter() - started))
    print(f"cache load: {load_s:.1f} s ({args.devices / load_s:,.0f} devices/s)")
    print(f"memory added by the cache: {added / 2**20:.0f} MiB "
          f"({added / args.devices:.0f} bytes/device)")
    print(f"lookups, registered ids: median {statistics.median(hits):,.0f}/s over {args.runs} runs")
    print(f"lookups, unknown ids:    median {statistics.median(misses):,.0f}/s")


if __name__ == "__main__":
    asyncio.run(main())
