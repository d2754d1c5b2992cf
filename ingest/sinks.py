"""What a telemetry sink is, and the one classification of its failures.

A sink only writes or raises (Telegraf's rule): batching, retrying and spooling
live in :mod:`ingest.writer`, which acts on these errors:

- :class:`RetryableError` (5xx, 429, timeouts, refused connections): back off
  and try again; meanwhile the batch waits in the spool;
- :class:`RejectedError` (any other 4xx): never retried; the bad points are
  isolated and dead-lettered with the server's message;
- :class:`TooLargeError` (413): split the batch.
"""

from __future__ import annotations

from typing import Protocol

from ingest.points import Point


class SinkError(Exception):
    pass


class RetryableError(SinkError):
    pass


class RejectedError(SinkError):
    pass


class TooLargeError(SinkError):
    pass


class TelemetrySink(Protocol):
    name: str

    async def write(self, points: list[Point]) -> None:
        """Store every point, or raise a :class:`SinkError` subclass."""
        ...

    async def close(self) -> None: ...
