"""The FastAPI application: health, metrics, the registry, alert, statistics and key APIs,
and the console at ``/``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request, status
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from dashboard_api.deps import Services
from dashboard_api.routes import (
    alerts,
    devices,
    duty_checks,
    health,
    ingest,
    keys,
    sites,
    stats,
    stream,
    webhooks,
)
from devices.registry.store import Conflict, InvalidReference, NotFound
from firewarden import __version__

CONSOLE = Path(__file__).parent / "console"


def create_app(services: Services) -> FastAPI:
    app = FastAPI(title="Firewarden", version=__version__,
                  description="Ingestion and alerting for smart fire monitoring.")
    app.state.services = services
    app.mount("/console", StaticFiles(directory=CONSOLE), name="console")

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        """The monitoring-centre console (plain HTML and JavaScript, no build step)."""
        return FileResponse(CONSOLE / "index.html", headers={"Cache-Control": "no-cache"})
    for router in (health.router, sites.router, devices.router, keys.router, ingest.router,
                   stream.router, alerts.router, duty_checks.router, webhooks.router,
                   stats.router):
        app.include_router(router)

    @app.exception_handler(NotFound)
    async def _not_found(_request: Request, error: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=status.HTTP_404_NOT_FOUND)

    @app.exception_handler(Conflict)
    async def _conflict(_request: Request, error: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=status.HTTP_409_CONFLICT)

    @app.exception_handler(InvalidReference)
    async def _invalid(_request: Request, error: InvalidReference) -> JSONResponse:
        # Same shape as FastAPI's own validation errors, so clients handle one format.
        return JSONResponse({"detail": [{"loc": ["body", error.field], "msg": str(error),
                                         "type": "invalid_reference"}]},
                            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    return app
