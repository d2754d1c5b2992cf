"""What several benchmarks share: the simulated fleet and reading a process's CPU time.

Imported as ``benchkit`` from the scripts in bench/ (their own folder is first on
``sys.path`` when run as ``python bench/<script>.py``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from simulators import FleetSimulation, Scenario, SimConfig


def fleet_simulation() -> FleetSimulation:
    """The benchmarks' fleet: 10,000 devices, normal traffic, timestamps in the last day;
    no two messages share device and timestamp."""
    return FleetSimulation(SimConfig(
        smoke=3000, electrical=6000, controlrooms=1000, seed=11, speed=1.0,
        smoke_interval_s=3600.0, scenarios=frozenset({Scenario.NORMAL}),
        start_ms=int(time.time() * 1000) - 86_400_000))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads) so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
