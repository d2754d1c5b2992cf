"""Ingestion: MQTT listeners, decoding and (later) the telemetry sink."""

from ingest.listener import MqttListener
from ingest.metrics import IngestMetrics
from ingest.pipeline import Pipeline

__all__ = ["IngestMetrics", "MqttListener", "Pipeline"]
