"""Alert rules, the alert lifecycle and notifications.

Not built yet: the alert engine is issue 5. Ingest hands validated readings to
consumers registered on ``ingest.Pipeline``; the engine will be one of them.
"""
