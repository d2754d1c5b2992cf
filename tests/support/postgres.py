"""A private PostgreSQL cluster for tests: initdb in a temp dir, own port, trust auth.

As root, the server runs as the ``postgres`` system user (PostgreSQL refuses root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

from firewarden.ports import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError("PostgreSQL is not installed; run scripts/test, which installs it")
    return path


class PostgresServer:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.datadir = workdir / "pgdata"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            workdir.mkdir(parents=True, exist_ok=True)
            shutil.chown(workdir, "postgres")
            for parent in workdir.parents:  # let postgres reach its directory
                if str(parent).startswith("/tmp/") or parent == Path("/tmp"):
                    os.chmod(parent, os.stat(parent).st_mode | 0o011)

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(_bin("initdb"), "-D", str(self.datadir), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-sync")
        self._run(_bin("pg_ctl"), "-D", str(self.datadir), "-l", str(self.workdir / "pg.log"),
                  "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c max_connections=200", "start")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run([_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                   capture_output=True)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not become ready")

    def create_database(self, name: str) -> str:
        """Create a database; returns its URL for FIREWARDEN_DATABASE_URL."""
        subprocess.run([_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                        "postgres", name], check=True, capture_output=True)
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.datadir.exists():
            subprocess.run([*self._as, _bin("pg_ctl"), "-D", str(self.datadir), "-m", "fast",
                            "-w", "stop"], capture_output=True, timeout=60)
