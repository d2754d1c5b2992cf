"""The FastAPI application: health and metrics now; operator and installer APIs later."""

from __future__ import annotations

from fastapi import FastAPI

from dashboard_api.deps import Services
from dashboard_api.routes import health
from firewarden import __version__


def create_app(services: Services) -> FastAPI:
    app = FastAPI(title="Firewarden", version=__version__,
                  description="Ingestion and alerting for smart fire monitoring.")
    app.state.services = services
    app.include_router(health.router)
    return app
