"""Downlink: commands the centre sends to devices (duty checks) on ``{prefix}/<kind>/<id>/cmd``.

One paho client, connected in the background and reconnecting by itself.
``publish`` waits for the broker's PUBACK (QoS 1), so a caller knows the
command reached the broker before it records it as sent.
"""

from __future__ import annotations

import logging
import ssl
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firewarden.settings import MqttEndpoint

_LOGGER = logging.getLogger(__name__)


class CommandError(Exception):
    """The command could not be handed to the broker."""


class CommandPublisher:
    def __init__(self, endpoint: MqttEndpoint, client_id: str, *, timeout_s: float = 5.0
                 ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        """How long ``publish`` waits for a connection and for each PUBACK."""
        self.connected = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=mqtt.MQTTv311)
        if endpoint.username:
            password = endpoint.password.get_secret_value() if endpoint.password else None
            self._client.username_pw_set(endpoint.username, password)
        if endpoint.tls:
            self._client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect

    def start(self) -> None:
        self._client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self.connected.clear()  # a disconnect we asked for is not worth a warning
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, messages: list[tuple[str, bytes]]) -> None:
        """Publish with QoS 1 and wait for the broker's acknowledgements (blocking)."""
        timeout_s = self.timeout_s
        if not self.connected.wait(timeout_s):
            raise CommandError(f"not connected to the MQTT broker {self.endpoint.display}")
        sent = []
        for topic, payload in messages:
            info = self._client.publish(topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise CommandError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
            sent.append((topic, info))
        for topic, info in sent:
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError) as error:
                raise CommandError(f"publish to {topic} failed: {error}") from None
            if not info.is_published():
                raise CommandError(f"the broker did not acknowledge {topic} in {timeout_s} s")

    def _on_connect(self, _client: mqtt.Client, _userdata: object, _flags: object,
                    reason: object, _properties: object) -> None:
        if getattr(reason, "is_failure", False):
            _LOGGER.warning("command publisher refused by broker: %s", reason)
            return
        _LOGGER.info("command publisher connected to %s", self.endpoint.display)
        self.connected.set()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: object, _flags: object,
                       reason: object, _properties: object) -> None:
        if self.connected.is_set():
            _LOGGER.warning("command publisher disconnected: %s", reason)
        self.connected.clear()
