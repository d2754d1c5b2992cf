"""Dependencies shared by the routers (FastAPI ``Annotated`` aliases)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from firewarden.settings import Settings
from ingest import MqttListener, Pipeline


@dataclass(slots=True)
class Services:
    """What the running process hands to the API: built once, in the process wiring."""

    settings: Settings
    pipeline: Pipeline
    listener: MqttListener | None = None


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
