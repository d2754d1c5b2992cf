"""Publishes a :class:`FleetSimulation` to an MQTT broker, paced in time.

Pacing modes: by virtual time compressed by ``speed`` (the default), at a
fixed ``rate`` of messages per second (load tests), or as fast as the broker
takes them (``fast``).  Duty checks arriving on ``{prefix}/controlroom/+/cmd``
are answered by the simulated control rooms unless ``answer_duty_checks`` is off.

paho's callbacks only count and queue; all simulation state is touched by the
publishing thread alone.
"""

from __future__ import annotations

import heapq
import logging
import math
import queue
import ssl
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from devices import Channel, DeviceKind
from firewarden.settings import MqttEndpoint
from simulators.generator import FleetSimulation, SimMessage

_LOGGER = logging.getLogger(__name__)

MAX_UNACKED = 20_000
"""Messages handed to paho but not yet acknowledged before publishing waits."""


class SimulatorError(Exception):
    """The simulator cannot run (e.g. the broker is unreachable)."""


@dataclass(frozen=True, slots=True)
class PublishOptions:
    qos: int = 1
    duration_s: float | None = None
    """Stop after this many real seconds (of simulated schedule)."""
    count: int | None = None
    """Stop after this many messages."""
    rate: float | None = None
    fast: bool = False
    answer_duty_checks: bool = True
    progress_every_s: float = 5.0
    connect_timeout_s: float = 10.0
    client_id: str = ""


@dataclass(slots=True)
class RunSummary:
    sent: int = 0
    acknowledged: int = 0
    elapsed_s: float = 0.0
    by_stream: Counter[str] = field(default_factory=Counter)
    garbage: Counter[str] = field(default_factory=Counter)
    duty_checks_received: int = 0
    duty_checks_answered: int = 0

    def render(self, sim: FleetSimulation, qos: int) -> str:
        fleet = sim.fleet
        kinds = Counter(d.kind for d in fleet.devices)
        rate = self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0
        lines = [
            f"fleet: {kinds[DeviceKind.SMOKE]} smoke detectors, {kinds[DeviceKind.ELECTRICAL]} "
            f"electrical monitors, {kinds[DeviceKind.CONTROLROOM]} control rooms at "
            f"{len(fleet.sites)} sites; scenarios: "
            + ", ".join(sorted(s.value for s in sim.config.scenarios)),
            f"sent {self.sent} messages in {self.elapsed_s:.1f} s ({rate:.0f}/s) at QoS {qos}; "
            f"{self.acknowledged} acknowledged by the broker",
        ]
        lines += [f"  {stream:<24} {n}" for stream, n in sorted(self.by_stream.items())]
        if self.garbage:
            lines.append("  garbage by reason: " + ", ".join(
                f"{reason} {n}" for reason, n in sorted(self.garbage.items())))
        lines.append(f"duty checks: {self.duty_checks_received} received, "
                     f"{self.duty_checks_answered} answered")
        return "\n".join(lines)


class FleetPublisher:
    def __init__(
        self,
        sim: FleetSimulation,
        endpoint: MqttEndpoint,
        options: PublishOptions,
        *,
        stop: threading.Event | None = None,
        progress: TextIO = sys.stderr,
    ) -> None:
        self.sim = sim
        self.endpoint = endpoint
        self.options = options
        self.stop = stop or threading.Event()
        self.summary = RunSummary()
        self._progress = progress
        self._commands: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._replies: list[tuple[float, int, SimMessage]] = []
        self._acked = 0
        self._ack_lock = threading.Lock()
        self._connected = threading.Event()
        self._refused: str | None = None
        self._client = self._make_client()

    # --- running ---------------------------------------------------------------------
    def run(self) -> RunSummary:
        options, speed = self.options, self.sim.config.speed
        self._connect()
        start = time.monotonic()
        next_progress = start + options.progress_every_s
        horizon = options.duration_s * speed if options.duration_s is not None else math.inf
        try:
            for index, message in enumerate(self.sim.messages()):
                if message.at > horizon or self.stop.is_set():
                    break
                if options.count is not None and self.summary.sent >= options.count:
                    break
                if options.fast:
                    due = start
                elif options.rate:
                    due = start + index / options.rate
                else:
                    due = start + message.at / speed
                self._wait_until(due, start, message.at)
                self._publish_replies(message.at)
                self._publish(message)
                if options.progress_every_s and time.monotonic() >= next_progress:
                    self._report_progress(start)
                    next_progress += options.progress_every_s
            self._wait_for_acks()
        finally:
            self.summary.elapsed_s = time.monotonic() - start
            self.summary.acknowledged = self._acked
            self._client.disconnect()
            self._client.loop_stop()
        return self.summary

    def _connect(self) -> None:
        try:
            self._client.connect(self.endpoint.host, self.endpoint.port, keepalive=30)
        except OSError as error:
            raise SimulatorError(f"cannot reach broker {self.endpoint.display}: {error}") from None
        self._client.loop_start()
        if not self._connected.wait(self.options.connect_timeout_s) or self._refused:
            self._client.loop_stop()
            raise SimulatorError(f"broker {self.endpoint.display} did not accept the connection"
                                 + (f": {self._refused}" if self._refused else ""))

    def _wait_until(self, due: float, start: float, at: float) -> None:
        """Sleep until ``due``, answering duty checks meanwhile."""
        speed = self.sim.config.speed
        while not self.stop.is_set():
            now = time.monotonic()
            paced_now = at if (self.options.fast or self.options.rate) else (now - start) * speed
            self._take_commands(paced_now)
            self._publish_replies(paced_now)
            if now >= due:
                return
            time.sleep(min(due - now, 0.05))

    def _take_commands(self, virtual_now: float) -> None:
        while True:
            try:
                device_id, payload = self._commands.get_nowait()
            except queue.Empty:
                return
            self.summary.duty_checks_received += 1
            if not self.options.answer_duty_checks:
                continue
            reply = self.sim.answer_duty_check(device_id, payload, virtual_now)
            if reply is not None:
                heapq.heappush(self._replies, (reply.at, self.summary.duty_checks_received, reply))

    def _publish_replies(self, virtual_now: float) -> None:
        while self._replies and self._replies[0][0] <= virtual_now:
            _, _, reply = heapq.heappop(self._replies)
            self._publish(reply)
            self.summary.duty_checks_answered += 1

    def _publish(self, message: SimMessage) -> None:
        while self.summary.sent - self._acked > MAX_UNACKED and not self.stop.is_set():
            time.sleep(0.001)
        self._client.publish(message.topic, message.payload, qos=self.options.qos)
        self.summary.sent += 1
        if message.expect is not None:
            self.summary.garbage[message.expect.value] += 1
        else:
            parts = message.topic.split("/")
            self.summary.by_stream[f"{parts[-3]}/{parts[-1]}"] += 1

    def _wait_for_acks(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self._acked < self.summary.sent and time.monotonic() < deadline:
            time.sleep(0.01)

    def _report_progress(self, start: float) -> None:
        elapsed = time.monotonic() - start
        print(f"simulate: {self.summary.sent} sent ({self.summary.sent / elapsed:.0f}/s), "
              f"{self._acked} acknowledged, {self.summary.duty_checks_answered} duty checks "
              "answered", file=self._progress, flush=True)

    # --- paho ------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.options.client_id,
                             protocol=mqtt.MQTTv311)
        if self.endpoint.username:
            password = self.endpoint.password.get_secret_value() if self.endpoint.password \
                else None
            client.username_pw_set(self.endpoint.username, password)
        if self.endpoint.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: mqtt.Client, _userdata: object, _flags: object,
                    reason: ReasonCode, _props: object) -> None:
        if reason.is_failure:
            self._refused = str(reason)
        elif self.options.answer_duty_checks:
            prefix = self.sim.config.prefix
            client.subscribe(f"{prefix}/{DeviceKind.CONTROLROOM}/+/{Channel.CMD}", qos=1)
        self._connected.set()

    def _on_publish(self, _client: mqtt.Client, _userdata: object, _mid: int,
                    _reason: ReasonCode, _props: object) -> None:
        with self._ack_lock:
            self._acked += 1

    def _on_message(self, _client: mqtt.Client, _userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        self._commands.put((message.topic.split("/")[-2], bytes(message.payload)))
