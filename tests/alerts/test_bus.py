"""The in-process alert bus: bounded subscribers, and a doorbell that never overflows."""

from __future__ import annotations

import logging

import pytest

from alerts.bus import AlertBus
from alerts.schemas import AlertChange, AlertPublic


def change(i: int, suppressed: bool = False) -> AlertChange:
    return AlertChange.model_construct(id=i, action="raised",
                                       alert=AlertPublic.model_construct(suppressed=suppressed))


def test_a_full_subscriber_is_marked_for_resync_but_a_doorbell_just_stays_rung(
        caplog: pytest.LogCaptureFixture) -> None:
    bus = AlertBus()
    slow, bell = bus.subscribe(maxsize=2), bus.doorbell()
    with caplog.at_level(logging.WARNING, logger="alerts.bus"):
        bus.publish([change(i) for i in range(5)] + [change(9, suppressed=True)])
    assert slow.overflowed and [slow.queue.get_nowait().id for _ in range(2)] == [0, 1]
    assert not bell.overflowed and bell.queue.qsize() == 1
    assert len(caplog.records) == 1  # the slow subscriber, once; never the doorbell
    bell.queue.get_nowait()
    bus.publish([change(6)])
    assert bell.queue.get_nowait().id == 6
    bell.close()
    assert len(bus) == 1
