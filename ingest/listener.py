"""The MQTT listener: subscribes to every device's uplink and feeds the pipeline.

paho-mqtt runs the network loop in its own thread and reconnects by itself
with a capped backoff; ``on_connect`` subscribes again after every reconnect.
The session is persistent (fixed client id, clean session off, QoS 1), so the
broker keeps messages for Firewarden while it restarts.
"""

from __future__ import annotations

import logging
import ssl
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from devices import uplink_filters
from firewarden.settings import MqttEndpoint
from ingest.pipeline import Pipeline

_LOGGER = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30


class MqttListener:
    def __init__(
        self,
        endpoint: MqttEndpoint,
        pipeline: Pipeline,
        *,
        prefix: str,
        client_id: str,
        shared_group: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.pipeline = pipeline
        filters = uplink_filters(prefix)
        if shared_group:
            filters = [f"$share/{shared_group}/{f}" for f in filters]
        self.filters = filters
        self.connected = threading.Event()
        self._stopping = False
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        if endpoint.username:
            password = endpoint.password.get_secret_value() if endpoint.password else None
            self._client.username_pw_set(endpoint.username, password)
        if endpoint.tls:
            self._client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self._client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def start(self) -> None:
        """Connect in the background; the client keeps retrying until :meth:`stop`."""
        _LOGGER.info("ingest connecting to %s", self.endpoint.display)
        self._client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()
        self.pipeline.metrics.mqtt_connected.set(0)

    # --- paho callbacks (network thread): keep them small ---------------------------
    def _on_connect(
        self, client: mqtt.Client, _userdata: object, flags: mqtt.ConnectFlags,
        reason: ReasonCode, _props: object,
    ) -> None:
        if reason.is_failure:
            _LOGGER.error("broker %s refused the connection: %s", self.endpoint.display, reason)
            return
        client.subscribe([(f, 1) for f in self.filters])
        _LOGGER.info("ingest connected to %s (session present: %s), subscribed to %s",
                     self.endpoint.display, flags.session_present, ", ".join(self.filters))
        self.pipeline.metrics.mqtt_connected.set(1)
        self.connected.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: object,
        reason: ReasonCode, _props: object,
    ) -> None:
        if self._stopping:
            _LOGGER.info("ingest disconnected from %s", self.endpoint.display)
        elif self.connected.is_set():
            _LOGGER.warning("ingest lost broker %s: %s; reconnecting", self.endpoint.display,
                            reason)
            self.pipeline.metrics.mqtt_reconnects.inc()
        self.connected.clear()
        self.pipeline.metrics.mqtt_connected.set(0)

    def _on_message(self, _client: mqtt.Client, _userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        self.pipeline.handle(message.topic, bytes(message.payload))
