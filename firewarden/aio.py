"""Small asyncio helpers shared by background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, waking early when ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def wait_any(*events: asyncio.Event, seconds: float) -> None:
    """Return when any event is set or ``seconds`` have passed."""
    if any(e.is_set() for e in events):
        return
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def every(seconds: float, stop: asyncio.Event, work: Callable[[], Awaitable[object]],
                logger: logging.Logger, what: str) -> None:
    """Run ``work`` every ``seconds`` until ``stop``; a failure is logged and retried next time."""
    while not stop.is_set():
        await sleep_or_stop(stop, seconds)
        try:
            await work()
        except Exception:
            logger.exception("%s failed; will retry", what)


async def give_way(busy: Callable[[], bool] | None, max_s: float) -> None:
    """Wait while ``busy()`` (more urgent work, e.g. alerts being stored), at most ``max_s``.

    A flag polled, not an asyncio.Event: the urgent work runs on another thread's loop.
    """
    if busy is None:
        return
    deadline = time.monotonic() + max_s
    while busy() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.002)
