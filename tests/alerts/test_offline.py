"""Per-device deadlines: a message moves a deadline; only expired ones come out."""

from __future__ import annotations

from alerts.offline import OfflineTracker
from devices import DeviceKind
from tests.alerts.helpers import device

ELECTRICAL = device(DeviceKind.ELECTRICAL, "em-1")  # offline after 3 x 60 s


def test_a_message_moves_the_deadline_and_only_silence_expires() -> None:
    tracker = OfflineTracker()
    tracker.seen(ELECTRICAL, 0)
    tracker.seen(device(DeviceKind.ELECTRICAL, "em-2"), 0)
    tracker.seen(ELECTRICAL, 100_000)  # heard again: deadline 280 s
    assert tracker.due(179_999) == []
    assert tracker.due(180_000) == [("em-2", 180_000)]
    assert tracker.due(279_999) == []
    assert tracker.due(280_000) == [("em-1", 280_000)]
    assert len(tracker) == 0 and tracker.due(10**12) == []


def test_the_heap_holds_one_entry_per_device_however_many_messages() -> None:
    tracker = OfflineTracker()
    for at in range(0, 1_000_000, 1000):
        tracker.seen(ELECTRICAL, at)
    assert len(tracker._heap) == 1
    assert tracker.due(999_000 + 179_999) == []
    assert tracker.due(999_000 + 180_000) == [("em-1", 1_179_000)]


def test_a_late_message_never_moves_a_deadline_back() -> None:
    tracker = OfflineTracker()
    tracker.seen(ELECTRICAL, 100_000)
    tracker.seen(ELECTRICAL, 50_000)
    assert tracker.due(279_999) == []


def test_seen_reports_a_device_that_was_offline_once() -> None:
    tracker = OfflineTracker()
    tracker.mark_offline(["em-1"])
    assert tracker.seen(ELECTRICAL, 0) is True
    assert tracker.seen(ELECTRICAL, 1) is False


def test_untracked_devices_never_come_due() -> None:
    tracker = OfflineTracker()
    tracker.track_many([("em-1", 10), ("em-2", 20)])
    tracker.untrack("em-1")
    assert tracker.due(100) == [("em-2", 20)]


def test_a_batch_clears_an_offline_device_once_on_its_first_message() -> None:
    from alerts.actions import Action, Clear
    from alerts.engine import AlertEngine
    from tests.alerts.helpers import reading

    submitted: list[list[Action]] = []

    class Recorder:
        def submit(self, actions: list[Action], ack: object = None) -> object:
            submitted.append(actions)
            return ack

    tracker = OfflineTracker()
    tracker.mark_offline(["em-1"])
    engine = AlertEngine(Recorder(), tracker, clock=lambda: 1.0)  # type: ignore[arg-type]
    other = device(DeviceKind.ELECTRICAL, "em-2")
    batch = [(reading(ELECTRICAL, "telemetry", at, residual_current_ma=10.0), ELECTRICAL, None)
             for at in (1000, 2000)] + [(reading(other, "telemetry", 1500,
                                                 residual_current_ma=10.0), other, None)]
    assert engine.consume_batch(batch) == [None, None, None]
    clears = [a for actions in submitted for a in actions if isinstance(a, Clear)]
    assert [(c.device_id, c.types, c.at_ms) for c in clears] == [
        ("em-1", ("offline",), batch[0][0].received_ms)]
    assert tracker.tracks("em-1") and tracker.tracks("em-2")
