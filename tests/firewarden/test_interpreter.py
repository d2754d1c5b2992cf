"""The interpreter tuning that keeps fire alarms from waiting on the GC and the GIL."""

from __future__ import annotations

import gc
import sys

import pytest

from firewarden.interpreter import SWITCH_INTERVAL_S, settle_heap, tune_for_latency


def test_start_up_objects_are_frozen_out_of_full_collections() -> None:
    long_lived = [{"device": i} for i in range(10_000)]
    try:
        settle_heap()
        assert gc.get_freeze_count() >= len(long_lived)
        assert not any(o is long_lived for o in gc.get_objects(generation=2))
    finally:
        gc.unfreeze()


def test_the_switch_interval_is_short() -> None:
    before = sys.getswitchinterval()
    try:
        tune_for_latency()
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
        assert before > SWITCH_INTERVAL_S
    finally:
        sys.setswitchinterval(before)
