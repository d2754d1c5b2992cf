"""Liveness, readiness and Prometheus metrics: open to all, no key needed."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dashboard_api.deps import ServicesDep
from firewarden import __version__

router = APIRouter(tags=["health"])


@router.get("/health")
def health(services: ServicesDep) -> dict[str, object]:
    """The process is up; with the broker connection and message counts."""
    return {
        "status": "ok",
        "version": __version__,
        "mqtt_connected": services.mqtt_connected,
        "messages": services.pipeline.metrics.snapshot(),
    }


@router.get("/ready")
def ready(services: ServicesDep, response: Response) -> dict[str, object]:
    """Ready to take traffic: 503 until the ingest listener is connected."""
    connected = services.mqtt_connected
    if not connected:
        response.status_code = 503
    return {"ready": connected, "mqtt_connected": connected}


@router.get("/metrics", response_class=Response)
def metrics(services: ServicesDep) -> Response:
    """Prometheus text exposition of the pipeline's metrics."""
    body = generate_latest(services.pipeline.metrics.registry)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
