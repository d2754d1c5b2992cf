"""Dependencies shared by the routers (FastAPI ``Annotated`` aliases)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.announce import Announcer
from alerts.bus import AlertBus
from dashboard_api.stream import AlertStream
from devices.registry.cache import RegistryCache
from firewarden.keys import Principal, Role, authenticate
from firewarden.settings import Settings
from ingest import MqttListener, Pipeline
from ingest.commands import CommandPublisher
from ingest.dead_letters import DeadLetterStore
from ingest.readback import TelemetryReader


@dataclass(slots=True)
class Services:
    """What the running process hands to the API: built once, in the process wiring."""

    settings: Settings
    pipeline: Pipeline
    sessions: async_sessionmaker[AsyncSession]
    registry: RegistryCache
    listeners: list[MqttListener] = field(default_factory=list)
    dead_letters: DeadLetterStore | None = None
    announcer: Announcer = field(default_factory=lambda: Announcer(AlertBus()))
    commands: CommandPublisher | None = None
    stream: AlertStream | None = None
    telemetry: TelemetryReader | None = None

    @property
    def mqtt_connected(self) -> bool:
        return bool(self.listeners) and all(x.connected.is_set() for x in self.listeners)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    async with services.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer fwk_...`")


async def get_principal(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "an API key is required",
                            headers={"WWW-Authenticate": "Bearer"})
    async with services.sessions() as session:
        principal = await authenticate(session, credentials.credentials)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked API key",
                            headers={"WWW-Authenticate": "Bearer"})
    return principal


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting the given roles (admin always)."""
    allowed = {Role.ADMIN, *roles}

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"role {principal.role} may not do this; needs one of "
                                + ", ".join(sorted(allowed)))
        return principal

    return check


Reader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.INSTALLER, Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Installer = Annotated[Principal, Depends(require(Role.INSTALLER))]
Admin = Annotated[Principal, Depends(require())]


MAX_ID = 2**63 - 1
Offset = Annotated[int, Query(ge=0, le=10**9)]
Limit = Annotated[int, Query(ge=1, le=1000)]
RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="a row id")]
"""Bounded so that a huge number is a 422 naming the parameter, never a database error."""
