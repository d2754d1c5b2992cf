"""Bulk import over the API and the command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from firewarden.keys import Role
from simulators import FleetSimulation, SimConfig, write_registry_csv
from tests.support.api import ApiHarness, api_harness

HEADER = "device_id,kind,site_id,site_name,jurisdiction,site_category,location\n"
GOOD = (HEADER
        + "861000000000001,smoke,S1,人民医院,城东派出所,key_unit,3F 东侧\n"
        + "EM000001,electrical,S1,人民医院,城东派出所,key_unit,配电房\n"
        + "CR000001,controlroom,S2,便民超市,城西派出所,small_venue,消控室\n")


@pytest.fixture
async def api(database_url: str):  # type: ignore[no-untyped-def]
    async with api_harness(database_url, MAX_IMPORT_BYTES=64 * 1024) as harness:
        yield harness


async def upload(api: ApiHarness, body: bytes, **params: str) -> tuple[int, dict[str, object]]:
    response = await api.client.post("/api/v1/devices/import", content=body, params=params,
                                     headers={**api.as_(Role.INSTALLER),
                                              "Content-Type": "text/csv"})
    return response.status_code, response.json()


async def count_devices(api: ApiHarness) -> int:
    response = await api.client.get("/api/v1/devices", headers=api.as_(Role.VIEWER))
    return int(response.json()["count"])


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
async def test_encodings(api: ApiHarness, encoding: str) -> None:
    status, report = await upload(api, GOOD.replace("\n", "\r\n").encode(encoding))
    assert status == 200, report
    assert report["created"] == 3 and report["sites_created"] == 2 and report["applied"]
    device = (await api.client.get("/api/v1/devices/861000000000001",
                                   headers=api.as_(Role.VIEWER))).json()
    assert device["site_name"] == "人民医院" and device["location"] == "3F 东侧"
    assert api.registry.get("CR000001") is not None


async def test_reimport_changes_nothing_and_edits_are_updates(api: ApiHarness) -> None:
    assert (await upload(api, GOOD.encode()))[0] == 200
    status, report = await upload(api, GOOD.encode())
    assert status == 200 and report["unchanged"] == 3 and report["created"] == 0
    assert report["updated"] == 0 and report["sites_updated"] == 0
    status, report = await upload(api, GOOD.replace("3F 东侧", "4F 西侧").encode())
    assert report["updated"] == 1 and report["unchanged"] == 2


async def test_dry_run_writes_nothing(api: ApiHarness) -> None:
    status, report = await upload(api, GOOD.encode(), dry_run="true")
    assert status == 200 and report["created"] == 3 and not report["applied"]
    assert await count_devices(api) == 0


BAD = (HEADER
       + "861000000000001,smoke,S1,人民医院,城东派出所,key_unit,ok\n"
       + "\n"
       + "bad id,smoke,S1,人民医院,城东派出所,key_unit,x\n"
       + "D3,toaster,S1,人民医院,城东派出所,key_unit,x\n"
       + "D4,smoke,S9,,,,x\n"
       + "861000000000001,smoke,S1,人民医院,城东派出所,key_unit,again\n"
       + "D6,smoke,S1,别的名字,城东派出所,key_unit,x\n"
       + '"D7,smoke,S1,人民医院,城东派出所,key_unit,"quoted, ok"\n'
       + "EM8,electrical,S1,人民医院,城东派出所,key_unit,x\n")


async def test_atomic_reports_every_bad_row_and_writes_nothing(api: ApiHarness) -> None:
    status, report = await upload(api, BAD.encode())
    assert status == 422 and not report["applied"]
    lines = {e["line"]: e for e in report["errors"]}  # type: ignore[union-attr]
    assert set(lines) == {4, 5, 6, 7, 8, 9}
    assert lines[4]["field"] == "device_id" and lines[5]["field"] == "kind"
    assert "unknown site S9" in lines[6]["message"]
    assert "also on line 2" in lines[7]["message"]
    assert "differs from line 2" in lines[8]["message"]
    assert "malformed CSV" in lines[9]["message"] or lines[9]["field"] is not None
    assert await count_devices(api) == 0


async def test_partial_writes_the_good_rows(api: ApiHarness) -> None:
    status, report = await upload(api, BAD.encode(), mode="partial")
    assert status == 200 and report["applied"] and report["errors"]
    assert report["created"] == await count_devices(api) >= 1


@pytest.mark.parametrize(("body", "needle"), [
    (b"", "empty"),
    (b"id,kind\n1,smoke\n", "missing column(s) device_id, site_id"),
    (HEADER.replace("location", "locaton").encode(), "unknown column(s) locaton"),
    (b"\xff\xfe\x00\x01\x80\x80", "neither UTF-8 nor GBK"),
])
async def test_whole_file_problems_name_line_one(api: ApiHarness, body: bytes,
                                                 needle: str) -> None:
    status, report = await upload(api, body)
    assert status == 422 and needle in str(report["detail"]), report


async def test_oversized_upload_is_refused_before_reading(api: ApiHarness) -> None:
    body = (HEADER + "D1,smoke,S1,n,j,other,x\n" * 4000).encode()
    assert len(body) > 64 * 1024
    status, _ = await upload(api, body)
    assert status == 413
    assert await count_devices(api) == 0


async def test_simulator_registry_imports_as_is_and_exports_round_trip(
        api: ApiHarness, tmp_path: Path) -> None:
    sim = FleetSimulation(SimConfig(smoke=40, electrical=20, controlrooms=5))
    path = tmp_path / "fleet.csv"
    write_registry_csv(sim.fleet, path)
    status, report = await upload(api, path.read_bytes())
    assert status == 200 and report["created"] == 65, report
    exported = await api.client.get("/api/v1/devices/export", headers=api.as_(Role.VIEWER))
    assert exported.content.startswith(b"\xef\xbb\xbf")
    status, report = await upload(api, exported.content)
    assert status == 200 and report["unchanged"] == 65 and report["updated"] == 0, report


def test_cli_import_export_and_keys(tmp_path: Path, database_url: str) -> None:
    env = {**os.environ, "FIREWARDEN_DATABASE_URL": database_url,
           "FIREWARDEN_DATA_DIR": str(tmp_path / "data")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "firewarden.cli", *args], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)

    fleet = tmp_path / "fleet.csv"
    write_registry_csv(FleetSimulation(SimConfig(smoke=30, electrical=10, controlrooms=2)).fleet,
                       fleet)
    first = cli("devices", "import", str(fleet))
    assert first.returncode == 0, first.stderr
    assert "42 created" in first.stdout and "42/42 devices written" in first.stderr
    again = cli("devices", "import", str(fleet))
    assert "42 unchanged" in again.stdout and "nothing to change" in again.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "x y,smoke,S1,n,j,other,z\n", encoding="utf-8")
    refused = cli("devices", "import", str(bad))
    assert refused.returncode == 1 and f"{bad}:2:" in refused.stderr
    exported = cli("devices", "export")
    assert exported.stdout.count("\n") == 43

    created = cli("keys", "create", "--role", "installer", "--name", "Li Wei")
    assert created.returncode == 0 and created.stdout.startswith("fwk_")
    listed = cli("keys", "list")
    assert "installer" in listed.stdout and "Li Wei" in listed.stdout
    assert created.stdout.strip() not in listed.stdout
    assert cli("keys", "revoke", "1").returncode == 0
    assert "revoked" in cli("keys", "list").stdout
    assert cli("keys", "revoke", "99").returncode == 1
