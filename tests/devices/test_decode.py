"""The message contract at the boundary: what is accepted, and every reason code."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices import (
    DECODE_REASONS,
    Channel,
    DeviceKind,
    MessageDecoder,
    Reading,
    Reason,
    Rejection,
)
from devices.messages import ControlRoomEvent, ElectricalTelemetry, SmokeTelemetry

NOW = 1_795_000_000_000
decoder = MessageDecoder("fw", max_payload_bytes=8192, max_ahead_s=300, max_age_s=7 * 86_400)


def decode(topic: str, body: object | bytes, now: int = NOW) -> Reading | Rejection:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return decoder.decode(topic, payload, now)


def accepted(topic: str, body: object) -> Reading:
    result = decode(topic, body)
    assert isinstance(result, Reading), result
    return result


def rejected(topic: str, body: object | bytes) -> Rejection:
    result = decode(topic, body)
    assert isinstance(result, Rejection), result
    return result


SMOKE = {"battery_pct": 87, "rsrp_dbm": -95}
ELECTRICAL = {"residual_current_ma": 120.5, "temperature_c": {"1": 31.2, "2": 29.8},
              "current_a": {"A": 12.1, "B": 11.8, "C": 12.4}, "voltage_v": {"A": 221.0}}
HEARTBEAT = {"panel_state": "normal", "main_power_ok": True, "backup_power_ok": True,
             "operators_on_duty": 2}


class TestAccepted:
    def test_smoke_telemetry_is_typed(self) -> None:
        reading = accepted("fw/smoke/861234567890123/telemetry", {**SMOKE, "seq": 7, "ts": NOW})
        assert reading.kind is DeviceKind.SMOKE and reading.channel is Channel.TELEMETRY
        assert reading.device_id == "861234567890123"
        assert isinstance(reading.body, SmokeTelemetry)
        assert reading.body.battery_pct == 87 and reading.seq == 7 and reading.ts_ms == NOW

    def test_electrical_channels(self) -> None:
        reading = accepted("fw/electrical/EM-01/telemetry", ELECTRICAL)
        assert isinstance(reading.body, ElectricalTelemetry)
        assert reading.body.temperature_c == {"1": 31.2, "2": 29.8}

    def test_controlroom_event_with_point(self) -> None:
        reading = accepted("fw/controlroom/CR.7/event", {
            "event": "panel_fire", "point": {"loop": 1, "address": 23, "zone": "3F",
                                             "description": "感烟"}})
        assert isinstance(reading.body, ControlRoomEvent)
        assert reading.body.point is not None and reading.body.point.address == 23

    def test_missing_ts_means_receive_time(self) -> None:
        assert accepted("fw/controlroom/CR1/telemetry", HEARTBEAT).ts_ms == NOW

    def test_rfc3339_ts(self) -> None:
        reading = accepted("fw/smoke/D1/telemetry", {**SMOKE, "ts": "2026-11-18T08:00:00+08:00"})
        assert reading.ts_ms == datetime(2026, 11, 18, tzinfo=UTC).timestamp() * 1000

    def test_unknown_fields_are_ignored(self) -> None:
        reading = accepted("fw/smoke/D1/telemetry", {**SMOKE, "firmware": "2.1", "new": [1]})
        assert isinstance(reading.body, SmokeTelemetry)

    def test_positive_rsrp_is_normalised(self) -> None:
        reading = accepted("fw/smoke/D1/telemetry", {**SMOKE, "rsrp_dbm": 101})
        assert isinstance(reading.body, SmokeTelemetry) and reading.body.rsrp_dbm == -101

    def test_topic_prefix_with_levels(self) -> None:
        multi = MessageDecoder("city/fw")
        result = multi.decode("city/fw/smoke/D1/telemetry", json.dumps(SMOKE).encode(), NOW)
        assert isinstance(result, Reading)
        assert isinstance(multi.decode("fw/smoke/D1/telemetry", b"{}", NOW), Rejection)


# Every reason code, with several ways to earn it.
CORPUS: list[tuple[Reason, str, object | bytes]] = [
    (Reason.BAD_TOPIC, "fw/toaster/D1/telemetry", SMOKE),
    (Reason.BAD_TOPIC, "fw/smoke/bad id/telemetry", SMOKE),
    (Reason.BAD_TOPIC, "fw/smoke/" + "9" * 65 + "/telemetry", SMOKE),
    (Reason.BAD_TOPIC, "fw/smoke//telemetry", SMOKE),
    (Reason.BAD_TOPIC, "fw/smoke/D1/cmd", SMOKE),
    (Reason.BAD_TOPIC, "fw/smoke/D1/status", SMOKE),
    (Reason.BAD_TOPIC, "other/smoke/D1/telemetry", SMOKE),
    (Reason.BAD_TOPIC, "fw/smoke/D1/telemetry/x", SMOKE),
    (Reason.TOO_LARGE, "fw/smoke/D1/telemetry", {**SMOKE, "pad": "x" * 8200}),
    (Reason.INVALID_UTF8, "fw/smoke/D1/telemetry", b'{"battery_pct": 80, "x": "\xff"}'),
    (Reason.INVALID_UTF8, "fw/smoke/D1/telemetry", b"\xc3\x28"),
    (Reason.INVALID_JSON, "fw/smoke/D1/telemetry", b'{"battery_pct": 80,'),
    (Reason.INVALID_JSON, "fw/smoke/D1/telemetry", b""),
    (Reason.INVALID_JSON, "fw/smoke/D1/telemetry", b"NaN"),
    (Reason.SCHEMA, "fw/smoke/D1/telemetry", [SMOKE]),
    (Reason.SCHEMA, "fw/smoke/D1/telemetry", {"battery_pct": 87}),
    (Reason.SCHEMA, "fw/smoke/D1/telemetry", {**SMOKE, "battery_pct": 101}),
    (Reason.SCHEMA, "fw/smoke/D1/telemetry", {**SMOKE, "battery_pct": "87"}),
    (Reason.SCHEMA, "fw/smoke/D1/telemetry", {**SMOKE, "rsrp_dbm": -30}),
    (Reason.SCHEMA, "fw/smoke/D1/telemetry", {**SMOKE, "ts": 1.5}),
    (Reason.SCHEMA, "fw/smoke/D1/telemetry", {**SMOKE, "ts": "yesterday"}),
    (Reason.SCHEMA, "fw/smoke/D1/telemetry", {**SMOKE, "ts": "2026-11-18T08:00:00"}),
    (Reason.SCHEMA, "fw/smoke/D1/telemetry", {**SMOKE, "seq": -1}),
    (Reason.SCHEMA, "fw/smoke/D1/event", {"event": "explode"}),
    (Reason.SCHEMA, "fw/electrical/E1/telemetry", {"residual_current_ma": -1}),
    (Reason.SCHEMA, "fw/electrical/E1/telemetry", b'{"residual_current_ma": 1e999}'),
    (Reason.SCHEMA, "fw/electrical/E1/telemetry", {**ELECTRICAL, "temperature_c": {"5": 30}}),
    (Reason.SCHEMA, "fw/electrical/E1/event", {"event": "arc_fault", "channel": "Z"}),
    (Reason.SCHEMA, "fw/controlroom/C1/telemetry", {**HEARTBEAT, "main_power_ok": 1}),
    (Reason.SCHEMA, "fw/controlroom/C1/telemetry", {**HEARTBEAT, "operators_on_duty": -1}),
    (Reason.SCHEMA, "fw/controlroom/C1/event", {"event": "duty_check_ack"}),
    (Reason.SCHEMA, "fw/controlroom/C1/event", {"event": "panel_fire", "point": {"loop": "a"}}),
    (Reason.CLOCK_SKEW, "fw/smoke/D1/telemetry", {**SMOKE, "ts": NOW + 301_000}),
    (Reason.CLOCK_SKEW, "fw/smoke/D1/telemetry", {**SMOKE, "ts": NOW - 8 * 86_400_000}),
    (Reason.CLOCK_SKEW, "fw/controlroom/C1/telemetry", {**HEARTBEAT, "ts": 0}),
]


@pytest.mark.parametrize(("reason", "topic", "body"), CORPUS,
                         ids=[f"{r.value}-{i}" for i, (r, _, _) in enumerate(CORPUS)])
def test_rejection_corpus(reason: Reason, topic: str, body: object | bytes) -> None:
    rejection = rejected(topic, body)
    assert rejection.reason is reason, rejection.detail
    assert rejection.topic == topic
    assert rejection.detail


def test_every_reason_code_has_a_corpus_case() -> None:
    assert {reason for reason, _, _ in CORPUS} == set(DECODE_REASONS)


def test_schema_rejection_names_the_field() -> None:
    rejection = rejected("fw/smoke/D1/telemetry", {**SMOKE, "battery_pct": 101})
    assert "$.battery_pct" in rejection.detail


def test_rejection_keeps_only_the_first_kilobyte() -> None:
    rejection = rejected("fw/smoke/D1/telemetry", {**SMOKE, "pad": "x" * 9000})
    assert len(rejection.payload) == 1024 and rejection.device_id == "D1"


def test_payload_at_the_size_limit_is_accepted() -> None:
    body = json.dumps({**SMOKE, "pad": ""}).encode()
    padded = body[:-2] + b"x" * (8192 - len(body)) + b'"}'
    assert len(padded) == 8192
    assert isinstance(decoder.decode("fw/smoke/D1/telemetry", padded, NOW), Reading)


def test_event_with_untrusted_clock_is_kept_at_receive_time() -> None:
    """A fire alarm from a device with a wrong clock must not be lost."""
    reading = accepted("fw/smoke/D1/event", {"event": "smoke_alarm", "ts": NOW + 3_600_000})
    assert reading.clock_corrected and reading.ts_ms == NOW


def test_clock_bounds_are_configurable() -> None:
    lenient = MessageDecoder("fw", max_ahead_s=3600)
    payload = json.dumps({**SMOKE, "ts": NOW + 1_800_000}).encode()
    assert isinstance(lenient.decode("fw/smoke/D1/telemetry", payload, NOW), Reading)


@given(st.binary(max_size=300), st.sampled_from(["fw/smoke/D1/telemetry", "fw/electrical/E/event",
                                                 "fw/controlroom/C/telemetry", "x/y"]))
def test_arbitrary_bytes_never_raise(payload: bytes, topic: str) -> None:
    result = decoder.decode(topic, payload, NOW)
    assert isinstance(result, Reading | Rejection)


@given(st.dictionaries(st.text(max_size=10), st.none() | st.integers() | st.text(max_size=5),
                       max_size=5))
def test_extra_fields_never_break_a_valid_message(extra: dict[str, object]) -> None:
    body = {**extra, **SMOKE}
    body.pop("ts", None)
    body.pop("seq", None)
    for key in ("sinr_db", "smoke_db_per_m", "temperature_c"):
        body.pop(key, None)
    assert isinstance(decode("fw/smoke/D1/telemetry", body), Reading)
