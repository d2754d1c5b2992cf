"""CPU per message of the ingest pipeline in one process, without MQTT or InfluxDB.

    .venv/bin/python bench/pipeline.py [--messages 100000] [--runs 5] [--batch 300]

Registers the benchmarks' simulated fleet (bench/benchkit.py, 10,000 devices) in a fresh
SQLite database, builds the same ``Ingest`` as ``firewarden ingest`` (registry
cache, alert engine, device status, writer) without starting its listeners,
and feeds it simulated messages through ``Pipeline.handle_batch`` in batches
the size of one socket read.  Reports the median over runs of the time per
message for the pipeline (decode, lookup, rules, status, points handed to the
writer) and for encoding the points as InfluxDB line protocol.

Runs vary from hour to hour on a shared VM: compare figures of one sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchkit import fleet_simulation  # noqa: E402

from simulators import write_registry_csv  # noqa: E402


async def measure(messages: list[tuple[str, bytes]], runs: int, batch: int
                  ) -> tuple[list[float], list[float]]:
    from firewarden.database import open_database
    from firewarden.runtime import Ingest
    from firewarden.settings import MqttEndpoint, Settings
    from ingest.line_protocol import encode_point

    settings = Settings()
    async with open_database(settings.database_url) as (_engine, sessions):
        ingest = Ingest(settings, sessions, MqttEndpoint("127.0.0.1", 1883, False, None, None))
        ingest.writer.max_pending = len(messages) + 1  # nothing drains it here
        await ingest.registry.load()
        handle_batch = ingest.pipeline.handle_batch
        batches = [[(topic, payload, None) for topic, payload in messages[i:i + batch]]
                   for i in range(0, len(messages), batch)]
        pipeline_us, encode_us = [], []
        for _ in range(runs):
            ingest.writer._pending.clear()
            started = time.perf_counter()
            for messages_of_read in batches:
                handle_batch(messages_of_read)
            pipeline_us.append((time.perf_counter() - started) / len(messages) * 1e6)
            points = [point for point, _, _ in ingest.writer._pending]
            assert len(points) == len(messages), f"{len(points)} of {len(messages)} accepted"
            started = time.perf_counter()
            for point in points:
                encode_point(point)
            encode_us.append((time.perf_counter() - started) / len(points) * 1e6)
    return pipeline_us, encode_us


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ.update(FIREWARDEN_DATA_DIR=str(work / "data"),
                          FIREWARDEN_DATABASE_URL=f"sqlite+aiosqlite:///{work / 'fw.db'}",
                          FIREWARDEN_LOG_LEVEL="WARNING")
        sim = fleet_simulation()
        write_registry_csv(sim.fleet, work / "fleet.csv")
        subprocess.run([sys.executable, "-m", "firewarden.cli", "devices", "import",
                        str(work / "fleet.csv")], cwd=work, check=True, capture_output=True)
        messages = [(m.topic, m.payload) for m in itertools.islice(sim.messages(),
                                                                   args.messages)]
        pipeline_us, encode_us = asyncio.run(measure(messages, args.runs, args.batch))
    print(f"{args.messages:,} messages in batches of {args.batch}, {args.runs} runs:")
    print(f"  pipeline (decode, lookup, rules, status, points): median "
          f"{statistics.median(pipeline_us):.1f} µs/msg "
          f"(runs: {', '.join(f'{v:.1f}' for v in pipeline_us)})")
    print(f"  line protocol encoding: median {statistics.median(encode_us):.1f} µs/point")


if __name__ == "__main__":
    main()
