"""The HTTP API (FastAPI): health and metrics, registry, alerts, statistics, the live
stream and the console."""

from dashboard_api.app import create_app
from dashboard_api.deps import Services

__all__ = ["Services", "create_app"]
