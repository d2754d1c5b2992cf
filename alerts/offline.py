"""Offline detection driven by per-device deadlines, not by scanning every device.

Each tracked device has one deadline (last message + its profile's offline
window) in a dict, and one entry in a heap.  A message only moves the dict's
deadline (O(1)); the heap entry is left where it was.  When an entry comes due
it is checked against the dict: if the deadline moved, the entry is pushed
again at the new deadline (O(log n)), otherwise the device is offline.  So the
heap holds one entry per device however many messages arrive, and the work per
message is a dict write under a lock.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable

from devices.registry.cache import DeviceInfo


class OfflineTracker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deadline: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._offline: set[str] = set()
        """Devices with an open offline alert, as far as this process knows."""

    def __len__(self) -> int:
        return len(self._deadline)

    def track(self, device_id: str, deadline_ms: int) -> None:
        with self._lock:
            self._track(device_id, deadline_ms)

    def track_many(self, deadlines: Iterable[tuple[str, int]]) -> None:
        with self._lock:
            for device_id, deadline_ms in deadlines:
                self._deadline[device_id] = deadline_ms
            self._heap = [(d, k) for k, d in self._deadline.items()]
            heapq.heapify(self._heap)

    def _track(self, device_id: str, deadline_ms: int) -> None:
        if device_id not in self._deadline:
            heapq.heappush(self._heap, (deadline_ms, device_id))
        self._deadline[device_id] = deadline_ms

    def untrack(self, device_id: str) -> None:
        with self._lock:
            self._deadline.pop(device_id, None)  # its heap entry is dropped when it comes due

    def tracks(self, device_id: str) -> bool:
        return device_id in self._deadline

    def seen(self, device: DeviceInfo, received_ms: int) -> bool:
        """A message arrived; returns True if the device was offline (clear the alert)."""
        return bool(self.seen_batch([(device, received_ms)]))

    def seen_batch(self, messages: Iterable[tuple[DeviceInfo, int]]) -> set[str]:
        """Messages arrived (device, receive time); returns the devices that were offline
        (each once: clear their alerts)."""
        back: set[str] = set()
        with self._lock:
            deadlines, offline = self._deadline, self._offline
            for device, received_ms in messages:
                device_id = device.id
                deadline = received_ms + device.profile.offline_after_s * 1000
                current = deadlines.get(device_id)
                if current is None or deadline > current:
                    self._track(device_id, deadline)
                if device_id in offline:
                    offline.discard(device_id)
                    back.add(device_id)
        return back

    def due(self, now_ms: int, limit: int = 10_000) -> list[tuple[str, int]]:
        """Devices whose deadline passed (at most ``limit``, so the lock the ingest
        threads need is never held long), with the deadline; no longer tracked."""
        expired: list[tuple[str, int]] = []
        with self._lock:
            heap = self._heap
            while heap and heap[0][0] <= now_ms and len(expired) < limit:
                deadline, device_id = heapq.heappop(heap)
                current = self._deadline.get(device_id)
                if current is None:
                    continue
                if current > deadline:
                    heapq.heappush(heap, (current, device_id))
                    continue
                del self._deadline[device_id]
                expired.append((device_id, current))
        return expired

    def next_deadline(self) -> int | None:
        with self._lock:
            return self._heap[0][0] if self._heap else None

    def mark_offline(self, device_ids: Iterable[str]) -> None:
        with self._lock:
            self._offline.update(device_ids)

    def set_offline(self, device_ids: Iterable[str]) -> None:
        """Replace what this process knows of open offline alerts (another worker may
        have raised or cleared some)."""
        fresh = set(device_ids)
        with self._lock:
            self._offline = fresh

    def is_offline(self, device_id: str) -> bool:
        return device_id in self._offline
