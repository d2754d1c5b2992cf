"""Line protocol: typed, and injection-proof, checked by hypothesis and by a real InfluxDB."""

from __future__ import annotations

import json
import uuid

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import DeviceKind, MessageDecoder, Reading
from devices.profiles import DEFAULT_PROFILES
from devices.registry.cache import DeviceInfo
from ingest.line_protocol import encode_point
from ingest.points import point_for
from tests.support.influx import InfluxServer

NOW = 1_795_000_000_000
decoder = MessageDecoder("fw")


def device(device_id: str = "D1", kind: DeviceKind = DeviceKind.SMOKE, site: str = "S1",
           jurisdiction: str = "城东派出所") -> DeviceInfo:
    return DeviceInfo(device_id, kind, site, jurisdiction, "active", 0, DEFAULT_PROFILES[kind], 2)


def encode_reading(r: Reading, info: DeviceInfo) -> str:
    return encode_point(point_for(r, info))


def reading(topic: str, body: dict[str, object]) -> Reading:
    result = decoder.decode(topic, json.dumps(body).encode(), NOW)
    assert isinstance(result, Reading), result
    return result


def test_typed_fields_and_tags() -> None:
    line = encode_reading(reading("fw/controlroom/C1/telemetry", {
        "panel_state": "normal", "main_power_ok": True, "backup_power_ok": False,
        "operators_on_duty": 2, "seq": 9, "ts": NOW}), device("C1", DeviceKind.CONTROLROOM))
    assert line == ('controlroom,device_id=C1,jurisdiction=城东派出所,kind=controlroom,site_id=S1 '
                    'panel_state="normal",main_power_ok=true,backup_power_ok=false,'
                    f'operators_on_duty=2i,seq=9i {NOW}')
    smoke = encode_reading(reading("fw/smoke/D1/telemetry", {"battery_pct": 87, "rsrp_dbm": -95}),
                           device())
    assert "battery_pct=87.0" in smoke and "rsrp_dbm=-95.0" in smoke


def test_electrical_channels_are_flattened() -> None:
    line = encode_reading(reading("fw/electrical/E1/telemetry", {
        "residual_current_ma": 120, "temperature_c": {"1": 30.5}, "current_a": {"A": 12}}),
        device("E1", DeviceKind.ELECTRICAL))
    assert " residual_current_ma=120.0,temperature_c_1=30.5,current_a_A=12.0 " in line


def test_events_measurement_has_event_tag_and_point_fields() -> None:
    line = encode_reading(reading("fw/controlroom/C1/event", {
        "event": "panel_fire", "point": {"loop": 1, "address": 23, "zone": "3F, \"东\" = x"}}),
        device("C1", DeviceKind.CONTROLROOM))
    assert line.startswith("events,device_id=C1,event=panel_fire,")
    assert 'point_loop=1i,point_address=23i,point_zone="3F, \\"东\\" = x"' in line
    assert "clock_corrected=false" in line


NASTY = st.text(alphabet=st.sampled_from(list(' ,="\\\n\r\tazAZ09火_-.#{}\'') ), min_size=1,
                max_size=20)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(jurisdiction=NASTY, site=NASTY, text=NASTY)
def test_real_influxdb_reads_back_exactly_one_point(influx: InfluxServer, jurisdiction: str,
                                                    site: str, text: str) -> None:
    db = "lp_" + uuid.uuid4().hex[:12]
    httpx.post(f"{influx.url}/query", params={"q": f"CREATE DATABASE {db}"}).raise_for_status()
    try:
        info = device("D-1.x", DeviceKind.CONTROLROOM, site=site.strip() or "S",
                      jurisdiction=jurisdiction)
        line = encode_reading(reading("fw/controlroom/D-1.x/event", {
            "event": "operator_login", "operator": text, "point": {"description": text}}), info)
        response = httpx.post(f"{influx.url}/write", params={"db": db, "precision": "ms"},
                              content=line.encode())
        assert response.status_code == 204, (line, response.text)
        assert influx.query(db, "SHOW MEASUREMENTS")[0]["values"] == [["events"]]
        series = influx.query(db, "SELECT * FROM events")
        assert len(series) == 1 and len(series[0]["values"]) == 1  # type: ignore[arg-type]
        row = dict(zip(series[0]["columns"], series[0]["values"][0], strict=True))  # type: ignore[arg-type]
        expected = jurisdiction.replace("\n", " ").replace("\r", " ").replace("\\", "/")
        assert row["jurisdiction"] == expected
        assert row["site_id"] == (site.strip() or "S").replace("\n", " ").replace(
            "\r", " ").replace("\\", "/")
        assert row["operator"] == text and row["point_description"] == text
        assert row["event"] == "operator_login" and row["device_id"] == "D-1.x"
        keys = {k for s in influx.query(db, "SHOW TAG KEYS FROM events")
                for k, in s["values"]}  # type: ignore[union-attr]
        assert keys <= {"device_id", "site_id", "jurisdiction", "kind", "event"}
    finally:
        httpx.post(f"{influx.url}/query", params={"q": f"DROP DATABASE {db}"})
