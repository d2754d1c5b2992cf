"""Decoding throughput: messages per second on one core, full validation included.

    .venv/bin/python bench/decode.py [--messages 200000] [--runs 5]

Uses the simulator's realistic mix of kinds and channels (normal traffic plus a
fire), decodes each message with ``MessageDecoder.decode`` and reports the
median of several runs, next to ``json.loads`` of the same payloads (parsing
without any validation) as a yardstick.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections import Counter

from devices import MessageDecoder, Reading
from simulators import FleetSimulation, Scenario, SimConfig


def corpus(count: int) -> list[tuple[str, bytes]]:
    config = SimConfig(smoke=2000, electrical=1000, controlrooms=100, speed=1.0,
                       scenarios=frozenset({Scenario.NORMAL, Scenario.FIRE, Scenario.LEAKAGE}),
                       smoke_interval_s=3600.0)
    return [(m.topic, m.payload) for m in itertools.islice(FleetSimulation(config).messages(),
                                                           count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    messages = corpus(args.messages)
    mix = Counter("/".join(t.split("/")[1::2]) for t, _ in messages)
    decoder = MessageDecoder("fw", max_age_s=10**9)  # corpus timestamps are from 2026-01-01
    now = int(time.time() * 1000)

    decode_rates, parse_rates = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        accepted = sum(isinstance(decoder.decode(t, p, now), Reading) for t, p in messages)
        decode_rates.append(len(messages) / (time.perf_counter() - start))
        assert accepted == len(messages), f"only {accepted} of {len(messages)} accepted"
        start = time.perf_counter()
        for _t, p in messages:
            json.loads(p)
        parse_rates.append(len(messages) / (time.perf_counter() - start))

    decode_median, parse_median = statistics.median(decode_rates), statistics.median(parse_rates)
    size = statistics.mean(len(p) for _, p in messages)
    print(f"corpus: {len(messages)} messages, mean {size:.0f} bytes; mix "
          + ", ".join(f"{k} {v / len(messages):.0%}" for k, v in mix.most_common()))
    print(f"MessageDecoder.decode: median {decode_median:,.0f} msg/s over {args.runs} runs "
          f"({1e6 / decode_median:.2f} µs/msg)")
    print(f"json.loads only:       median {parse_median:,.0f} msg/s "
          f"(decode/json.loads = {decode_median / parse_median:.2f}x)")


if __name__ == "__main__":
    main()
