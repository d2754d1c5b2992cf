"""A private InfluxDB 1.x (Debian's influxd) for tests: own ports, own temp dir.

It can be stopped and started again on the same port and data, for failure tests.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx

from firewarden.ports import free_port


class InfluxServer:
    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("influxd") or "/usr/bin/influxd"
        if not Path(binary).exists():
            raise RuntimeError("influxd is not installed; run scripts/test, which installs it")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "influxdb.conf"
        self.config.write_text(f"""
reporting-disabled = true
bind-address = "127.0.0.1:{free_port()}"
[meta]
  dir = "{workdir}/meta"
[data]
  dir = "{workdir}/data"
  wal-dir = "{workdir}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[ifql]
  enabled = false
""")

    def start(self) -> None:
        log = (self.workdir / "influxd.log").open("ab")
        self._process = subprocess.Popen([self.binary, "-config", str(self.config)],
                                         stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"influxd exited; see {self.workdir / 'influxd.log'}")
            try:
                if httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("influxd did not answer /ping")

    @property
    def pid(self) -> int:
        """The running server's process id (benchmarks read its CPU time)."""
        if self._process is None:
            raise RuntimeError("influxd is not running")
        return self._process.pid

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def query(self, db: str, q: str) -> list[dict[str, object]]:
        """The series of an InfluxQL query's first statement."""
        response = httpx.get(f"{self.url}/query", params={"db": db, "q": q, "epoch": "ms"},
                             timeout=30)
        response.raise_for_status()
        result = response.json()["results"][0]
        if "error" in result:
            raise RuntimeError(result["error"])
        return result.get("series", [])  # type: ignore[no-any-return]

    def count(self, db: str, measurement: str, field: str) -> int:
        series = self.query(db, f'SELECT count("{field}") FROM "{measurement}"')
        return int(series[0]["values"][0][1]) if series else 0  # type: ignore[index]
