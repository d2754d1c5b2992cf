"""The in-process announcement of alert changes (the live stream and webhooks listen).

Every subscriber gets its own bounded queue: a slow or stuck subscriber never
delays the publisher or the others.  When its queue overflows it stops
receiving and is marked ``overflowed``, so it can tell its client to resync
from the stored history instead of silently missing changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from alerts.schemas import AlertChange

_LOGGER = logging.getLogger(__name__)


class Subscription:
    def __init__(self, bus: AlertBus, maxsize: int,
                 accepts: Callable[[AlertChange], bool] | None, doorbell: bool = False) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[AlertChange] = asyncio.Queue(maxsize)
        self.accepts = accepts
        self.doorbell = doorbell
        """Only says "something changed" (the reader fetches from the database): a full
        queue means it has already rung, which is not falling behind."""
        self.overflowed = False

    def offer(self, change: AlertChange) -> None:
        if self.overflowed or (self.accepts is not None and not self.accepts(change)):
            return
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            if self.doorbell:
                return
            self.overflowed = True
            _LOGGER.warning("an alert subscriber fell %d changes behind; it must resync",
                            self.queue.maxsize)

    async def get(self) -> AlertChange:
        return await self.queue.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)


class AlertBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []

    def subscribe(self, maxsize: int = 1000,
                  accepts: Callable[[AlertChange], bool] | None = None) -> Subscription:
        subscription = Subscription(self, maxsize, accepts)
        self._subscribers.append(subscription)
        return subscription

    def doorbell(self) -> Subscription:
        """A subscription that holds at most one change and never overflows."""
        subscription = Subscription(self, 1, None, doorbell=True)
        self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)

    def publish(self, changes: list[AlertChange]) -> None:
        """Call on the event loop's thread; suppressed alerts are never announced."""
        for change in changes:
            if change.alert.suppressed:
                continue
            for subscription in list(self._subscribers):
                subscription.offer(change)

    def __len__(self) -> int:
        return len(self._subscribers)
