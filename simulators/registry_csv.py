"""Writes a simulated fleet as a registry CSV that ``firewarden devices import`` accepts.

The columns are documented in docs/registry-csv.md; one row per device, with
its site's details repeated so that one file registers sites and devices.
"""

from __future__ import annotations

import csv
from pathlib import Path

from simulators.fleet import Fleet

COLUMNS = (
    "device_id", "kind", "site_id", "site_name", "site_category", "jurisdiction",
    "site_address", "min_operators", "location", "vendor", "model", "installer",
    "report_interval_s",
)


def write_registry_csv(fleet: Fleet, path: Path) -> int:
    """Write one row per device; returns the number of rows."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for d in fleet.devices:
            s = d.site
            writer.writerow((d.id, d.kind.value, s.id, s.name, s.category, s.jurisdiction,
                             s.address, s.min_operators, d.location, d.vendor, d.model,
                             d.installer, int(d.interval_s)))
    return len(fleet.devices)
