"""The in-process MQTT broker ``firewarden up`` starts when no broker is configured.

It is amqtt, kept to loopback by default and with anonymous access, which is
right for a laptop demo and wrong for production: production points
``FIREWARDEN_MQTT_URL`` at Mosquitto or another real broker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from firewarden.ports import PortInUseError, ensure_port_free

_LOGGER = logging.getLogger(__name__)


class OpenAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Lets every client in, but treats only clients without a username as anonymous.

    amqtt drops the sessions of anonymous clients when they disconnect; the
    ingest listener connects with a username so that its persistent session
    (and the QoS 1 messages queued in it) survives a restart of Firewarden.
    """

    @dataclass
    class Config:
        pass

    async def authenticate(self, *, session: Session) -> bool:
        session.is_anonymous = not session.username
        return True


INGEST_USERNAME = "firewarden"


class EmbeddedBroker:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._broker: Any = None

    async def start(self) -> None:
        try:
            ensure_port_free(self.host, self.port)
        except PortInUseError:
            raise PortInUseError(
                f"cannot start the embedded MQTT broker: {self.host}:{self.port} is already in "
                f"use. If a broker runs there, use it: FIREWARDEN_MQTT_URL=mqtt://{self.host}:"
                f"{self.port} firewarden up; or move the embedded one with "
                "FIREWARDEN_EMBEDDED_MQTT_PORT"
            ) from None
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}",
                                      "max_connections": 1000}},
            "plugins": {f"{__name__}.OpenAuthPlugin": {}},
        }
        self._broker = Broker(config)
        await self._broker.start()
        _LOGGER.info("embedded MQTT broker listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
