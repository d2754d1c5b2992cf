"""Prometheus metrics of the ingest pipeline, defined in one place.

Each pipeline owns its own registry so that several can live in one process
(tests, or an ingest worker beside the API) without clashing.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series only add noise to every counter


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.received = Counter(
            "firewarden_messages_received_total",
            "MQTT messages received on uplink topics.",
            registry=self.registry,
        )
        self.accepted = Counter(
            "firewarden_messages_accepted_total",
            "Messages that passed validation.",
            ["kind", "channel"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "firewarden_messages_rejected_total",
            "Messages rejected, by reason code and by the kind in the topic ('unknown' when "
            "the topic names none).",
            ["reason", "kind"],
            registry=self.registry,
        )
        self.clock_corrected = Counter(
            "firewarden_events_clock_corrected_total",
            "Events accepted at receive time because the device clock was untrusted.",
            registry=self.registry,
        )
        self.mqtt_connected = Gauge(
            "firewarden_mqtt_connected",
            "1 while the ingest listener of a lane (event, telemetry) is connected.",
            ["lane"],
            registry=self.registry,
        )
        self.mqtt_reconnects = Counter(
            "firewarden_mqtt_disconnects_total",
            "Times an ingest listener lost its broker connection.",
            ["lane"],
            registry=self.registry,
        )

        self.event_handoff = Histogram(
            "firewarden_event_handoff_seconds",
            "From an event's own timestamp to its hand-off to the alert engine (needs device "
            "clocks in sync; events with untrusted clocks are left out).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5,
                     1, 2.5, 10),
            registry=self.registry)

        # --- storage (ingest.writer) ---------------------------------------------------
        self.points_written = Counter(
            "firewarden_points_written_total", "Points written to the telemetry store.",
            ["sink"], registry=self.registry)
        self.points_dead_lettered = Counter(
            "firewarden_points_dead_lettered_total",
            "Points the telemetry store refused (4xx), kept in the dead-letter store.",
            registry=self.registry)
        self.write_seconds = Histogram(
            "firewarden_write_seconds", "Time to write one batch to the telemetry store.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry)
        self.batch_size = Histogram(
            "firewarden_batch_points", "Points per batch handed to the telemetry store.",
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000), registry=self.registry)
        self.retries = Counter(
            "firewarden_write_retries_total",
            "Failed attempts to replay a spooled batch (store still unavailable).",
            registry=self.registry)
        self.spool_batches = Gauge(
            "firewarden_spool_batches", "Batches waiting in the disk spool.",
            registry=self.registry)
        self.spool_bytes = Gauge(
            "firewarden_spool_bytes", "Bytes in the disk spool.", registry=self.registry)
        self.spool_full = Gauge(
            "firewarden_spool_full", "1 while the spool is full and messages are not "
            "acknowledged.", registry=self.registry)
        self.unacked = Gauge(
            "firewarden_messages_unacknowledged",
            "Accepted messages not yet durable, so not yet acknowledged to the broker.",
            registry=self.registry)
        self.lag = Histogram(
            "firewarden_end_to_end_lag_seconds",
            "From receiving a message to its point being durable (stored or spooled).",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30), registry=self.registry)

    def snapshot(self) -> dict[str, object]:
        """Counts for /health, as plain numbers."""
        accepted: dict[str, float] = {}
        rejected: dict[str, float] = {}
        received = 0.0
        for family in self.registry.collect():
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                if family.name == "firewarden_messages_received":
                    received = sample.value
                elif family.name == "firewarden_messages_accepted":
                    key = f"{sample.labels['kind']}/{sample.labels['channel']}"
                    accepted[key] = sample.value
                elif family.name == "firewarden_messages_rejected":
                    reason = sample.labels["reason"]
                    rejected[reason] = rejected.get(reason, 0.0) + sample.value
        return {
            "received": int(received),
            "accepted": {k: int(v) for k, v in sorted(accepted.items())},
            "rejected": {k: int(v) for k, v in sorted(rejected.items())},
        }
