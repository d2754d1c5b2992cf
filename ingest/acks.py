"""Acknowledging QoS 1 messages to the broker, many at a time.

paho's ``Client.ack`` queues one 4-byte PUBACK and wakes the network thread with a
socket write for every message; at thousands of messages a second that is
thousands of system calls, each of which hands the interpreter lock to another
thread and waits to get it back (which is what held the event loop back under
load).  Here the writer acknowledges a whole batch at once: the PUBACKs of one
connection go out as one packet, with one wake-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

Ack = Callable[[], None]


class AckSink(Protocol):
    def ack_many(self, mids: list[int]) -> None: ...


class BrokerAck:
    """Acknowledges one message (``mid``) on one connection; calling it alone works too."""

    __slots__ = ("mid", "sink")

    def __init__(self, sink: AckSink, mid: int) -> None:
        self.sink = sink
        self.mid = mid

    def __call__(self) -> None:
        self.sink.ack_many([self.mid])


def ack_all(acks: Iterable[Ack | None]) -> None:
    """Call every ack; broker acks for the same connection go out together."""
    grouped: dict[int, tuple[AckSink, list[int]]] = {}
    for ack in acks:
        if ack is None:
            continue
        if type(ack) is BrokerAck:
            entry = grouped.get(id(ack.sink))
            if entry is None:
                grouped[id(ack.sink)] = (ack.sink, [ack.mid])
            else:
                entry[1].append(ack.mid)
        else:
            ack()
    for sink, mids in grouped.values():
        sink.ack_many(mids)
