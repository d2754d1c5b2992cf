"""Interpreter settings for a latency-sensitive service (measured: docs/performance.md).

Firewarden's threads (the two MQTT lanes, the alert recorder, the main loop and
aiosqlite's connection threads) share one interpreter lock.  Two defaults of
CPython cost fire alarms tens of milliseconds under telemetry load:

* The cyclic garbage collector's full collections walk every tracked object,
  the registry cache, the app and SQLAlchemy's metadata included, holding the
  lock throughout: about 100 ms each, every few seconds under load.  Freezing
  what exists once start-up is done takes it out of those walks.
* A thread waiting for the lock gets it only after the switch interval (5 ms
  by default), and a fire alarm crosses several threads (its MQTT lane, the
  recorder, the main loop) while the telemetry lane keeps the lock busy.  At
  6,500 msg/s of telemetry, 1 ms gave an alert p99 of 150-300 ms and 0.2 ms
  <= 100 ms in three runs of four, with the same ingest throughput (13,000
  msg/s for one worker).
"""

from __future__ import annotations

import gc
import sys

SWITCH_INTERVAL_S = 0.0002


def tune_for_latency() -> None:
    """At process start, before the worker threads exist."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def settle_heap() -> None:
    """Once start-up has built its long-lived objects: collect, then freeze them so
    later full collections only walk what was allocated since."""
    gc.collect()
    gc.freeze()
