"""Alert rules, the alert lifecycle and notifications.

Ingest hands every accepted reading to :class:`alerts.engine.AlertEngine`, which
evaluates the rules (:mod:`alerts.rules`) in memory and passes the resulting
actions to :class:`alerts.recorder.AlertRecorder`; the recorder stores them
(:mod:`alerts.store`), acknowledges the messages behind them and announces the
changes (:mod:`alerts.announce`: the bus and webhooks).  Time-driven alerts
(offline, missed duty checks, reminders) come from :mod:`alerts.timers`;
operators' actions from :mod:`alerts.lifecycle`.  docs/alerts.md has the rules.
"""
