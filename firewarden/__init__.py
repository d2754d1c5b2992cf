"""Firewarden: ingestion and alerting for smart fire monitoring (智慧消防)."""

__version__ = "0.1.0"
