"""The MQTT listeners: each subscribes to one lane of uplink traffic and feeds the pipeline.

Two lanes, two connections: events (``{prefix}/+/+/event``) and telemetry
(``{prefix}/+/+/telemetry``) each have their own client, session and network
thread, so a fire alarm never waits behind a telemetry backlog.

paho-mqtt runs each network loop in its own thread and reconnects by itself
with a capped backoff; ``on_connect`` subscribes again after every reconnect.
Sessions are persistent (fixed client id, clean session off, QoS 1), so the
broker keeps messages while Firewarden restarts.  Acknowledgements are manual:
the pipeline acknowledges a message only once it is durable.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import struct
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from devices import Channel
from firewarden.settings import MqttEndpoint
from ingest.acks import BrokerAck
from ingest.buffered_client import BufferedClient, Publish
from ingest.pipeline import Pipeline

_LOGGER = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
_PUBACK = struct.Struct("!BBH")


class MqttListener:
    def __init__(
        self,
        endpoint: MqttEndpoint,
        pipeline: Pipeline,
        *,
        prefix: str,
        client_id: str,
        lane: Channel,
        shared_group: str | None = None,
        give_way: Callable[[], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._give_way = give_way
        """Called before each batch: the telemetry lane lets alerts being stored go first."""
        self.pipeline = pipeline
        self.lane = lane
        topic = f"{prefix}/+/+/{lane}"
        self.filters = [f"$share/{shared_group}/{topic}" if shared_group else topic]
        self.connected = threading.Event()
        self._stopping = False
        self._client = BufferedClient(
            CallbackAPIVersion.VERSION2,
            client_id=f"{client_id}-{lane}",
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if endpoint.username:
            password = endpoint.password.get_secret_value() if endpoint.password else None
            self._client.username_pw_set(endpoint.username, password)
        if endpoint.tls:
            self._client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self._client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message  # what paho itself parses
        self._client.on_publishes = self._on_publishes  # most messages, in batches

    def start(self) -> None:
        """Connect in the background; the client keeps retrying until :meth:`stop`."""
        _LOGGER.info("ingest %s lane connecting to %s", self.lane, self.endpoint.display)
        self._client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()
        self.pipeline.metrics.mqtt_connected.labels(self.lane.value).set(0)

    # --- paho callbacks (network thread): keep them small ---------------------------
    def _on_connect(
        self, client: mqtt.Client, _userdata: object, flags: mqtt.ConnectFlags,
        reason: ReasonCode, _props: object,
    ) -> None:
        if reason.is_failure:
            _LOGGER.error("broker %s refused the connection: %s", self.endpoint.display, reason)
            return
        client.subscribe([(f, 1) for f in self.filters])
        _LOGGER.info("ingest %s lane connected to %s (session present: %s)",
                     self.lane, self.endpoint.display, flags.session_present)

    def _on_subscribe(self, _client: mqtt.Client, _userdata: object, _mid: int,
                      reasons: list[ReasonCode], _props: object) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:  # e.g. an ACL that does not let this user read the uplink topics
            _LOGGER.error("broker refused the %s lane subscription %s: %s", self.lane,
                          ", ".join(self.filters), failed[0])
            return
        _LOGGER.info("ingest %s lane subscribed to %s", self.lane, ", ".join(self.filters))
        self.pipeline.metrics.mqtt_connected.labels(self.lane.value).set(1)
        self.connected.set()  # ready only once the broker confirmed the subscription

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: object,
        reason: ReasonCode, _props: object,
    ) -> None:
        if self._stopping:
            _LOGGER.info("ingest disconnected from %s", self.endpoint.display)
        elif self.connected.is_set():
            _LOGGER.warning("ingest lost broker %s: %s; reconnecting", self.endpoint.display,
                            reason)
            self.pipeline.metrics.mqtt_reconnects.labels(self.lane.value).inc()
        self.connected.clear()
        self.pipeline.metrics.mqtt_connected.labels(self.lane.value).set(0)

    def ack_many(self, mids: list[int]) -> None:
        """Send the PUBACKs of these messages as one packet (any thread).

        Uses paho's outgoing queue directly (paho 2.x: a deque its network thread
        drains, woken through a socket pair), because ``Client.ack`` costs a queue
        entry and a wake-up per message.
        """
        if not mids:
            return
        client = self._client
        packet = b"".join(_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids)
        client._out_packet.append({"command": mqtt.PUBACK, "mid": mids[-1], "qos": 1,
                                   "pos": 0, "to_process": len(packet), "packet": packet,
                                   "info": None})
        wake = client._sockpairW
        if wake is not None:
            # BlockingIOError: the loop is already awake; OSError: the client is closing.
            with contextlib.suppress(BlockingIOError, OSError):
                wake.send(b"0")

    def _on_message(self, _client: mqtt.Client, _userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:  # MQTT requires UTF-8 topics; a broker should not pass one
            topic = message._topic.decode("utf-8", "replace")
        # Called once the message is durable (QoS 1; Firewarden subscribes with nothing else).
        ack = BrokerAck(self, message.mid) if message.qos == 1 else None
        self.pipeline.handle(topic, bytes(message.payload), ack)

    def _on_publishes(self, batch: list[Publish]) -> None:
        messages = []
        for topic, payload, qos, mid in batch:
            try:
                name = topic.decode()
            except UnicodeDecodeError:  # as in _on_message
                name = topic.decode("utf-8", "replace")
            messages.append((name, payload, BrokerAck(self, mid) if qos == 1 else None))
        if self._give_way is not None:
            self._give_way()
        self.pipeline.handle_batch(messages)
