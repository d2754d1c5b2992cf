"""Reading telemetry back gives the same answers from InfluxDB and from SQL."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from firewarden.database import open_database
from ingest.influx import InfluxSink
from ingest.points import Point
from ingest.readback import InfluxReader, SqlReader, TelemetryReader
from ingest.sql_store import SqlTelemetrySink
from tests.support.influx import InfluxServer

T0 = 1_795_000_000_000 - (1_795_000_000_000 % 60_000)  # a minute boundary
_dbs = itertools.count(1)


def points() -> list[Point]:
    tags = {"device_id": "EM1", "site_id": "S1", "jurisdiction": "东", "kind": "electrical"}
    made = [Point("electrical", tags, {"residual_current_ma": float(100 + i), "seq": i},
                  T0 + i * 10_000) for i in range(12)]  # two minutes, every 10 s
    made.append(Point("electrical", {**tags, "device_id": "EM2"},
                      {"residual_current_ma": 999.0, "seq": 0}, T0))
    return made


@pytest.fixture(params=["influxdb", "sqlite", "postgresql"])
async def reader(request: pytest.FixtureRequest) -> AsyncIterator[TelemetryReader]:
    if request.param == "influxdb":
        server: InfluxServer = request.getfixturevalue("influx")
        sink = InfluxSink(server.url, f"readback_{next(_dbs)}")
        await sink.ensure_database()
        await sink.write(points())
        yield InfluxReader(sink)
        await sink.close()
        return
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").create_database(f"readback_{next(_dbs)}")
    else:
        url = f"sqlite+aiosqlite:///{request.getfixturevalue('tmp_path') / 'r.db'}"
    async with open_database(url) as (_engine, sessions):
        await SqlTelemetrySink(sessions).write(points())
        yield SqlReader(sessions)


async def test_latest(reader: TelemetryReader) -> None:
    latest = await reader.latest("electrical", "EM1")
    assert latest is not None
    ts, fields = latest
    assert ts == T0 + 110_000 and fields["residual_current_ma"] == 111.0 and fields["seq"] == 11
    assert await reader.latest("electrical", "NOPE") is None


async def test_series_downsampled(reader: TelemetryReader) -> None:
    series = await reader.series("electrical", "EM1", T0, T0 + 120_000, 60)
    assert [ts for ts, _ in series] == [T0, T0 + 60_000]
    assert series[0][1]["residual_current_ma"] == pytest.approx(102.5)
    assert series[1][1]["residual_current_ma"] == pytest.approx(108.5)
    with pytest.raises(ValueError, match="steps"):
        await reader.series("electrical", "EM1", T0, T0 + 10**10, 1)


async def test_influx_quoting_cannot_escape_the_string(influx: InfluxServer) -> None:
    sink = InfluxSink(influx.url, f"readback_{next(_dbs)}")
    await sink.ensure_database()
    odd = "a'b c"
    await sink.write([Point("smoke", {"device_id": odd}, {"seq": 1}, T0),
                      Point("smoke", {"device_id": "other"}, {"seq": 2}, T0)])
    reader = InfluxReader(sink)
    found = await reader.latest("smoke", odd)
    assert found is not None and found[1]["seq"] == 1
    assert await reader.latest("smoke", "x' OR device_id = 'other") is None
    await sink.close()
