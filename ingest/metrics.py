"""Prometheus metrics of the ingest pipeline, defined in one place.

Each pipeline owns its own registry so that several can live in one process
(tests, or an ingest worker beside the API) without clashing.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics

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
            "Messages rejected, by reason code.",
            ["reason"],
            registry=self.registry,
        )
        self.clock_corrected = Counter(
            "firewarden_events_clock_corrected_total",
            "Events accepted at receive time because the device clock was untrusted.",
            registry=self.registry,
        )
        self.mqtt_connected = Gauge(
            "firewarden_mqtt_connected",
            "1 while the ingest listener is connected to the broker.",
            registry=self.registry,
        )
        self.mqtt_reconnects = Counter(
            "firewarden_mqtt_disconnects_total",
            "Times the ingest listener lost its broker connection.",
            registry=self.registry,
        )

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
                    rejected[sample.labels["reason"]] = sample.value
        return {
            "received": int(received),
            "accepted": {k: int(v) for k, v in sorted(accepted.items())},
            "rejected": {k: int(v) for k, v in sorted(rejected.items())},
        }
