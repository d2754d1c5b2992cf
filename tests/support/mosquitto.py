"""A private Mosquitto broker for tests: own port, own temp dir, real protocol."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from firewarden.ports import free_port


class MosquittoServer:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed; run scripts/test, which installs it")
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "mosquitto.conf"
        self.configure("allow_anonymous true\n"
                       "persistence true\n"
                       "max_queued_messages 1000000\n"
                       "max_inflight_messages 10000\n")

    def configure(self, options: str) -> None:
        """Write the config: our listener, temp dir and log, plus ``options``."""
        # As root, mosquitto would drop to user "mosquitto", who cannot read our temp dir.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n{user}"
            f"persistence_location {self.workdir}/\n"
            f"log_dest file {self.workdir}/mosquitto.log\n{options}"
        )

    def start(self) -> None:
        self._process = subprocess.Popen([self.binary, "-c", str(self.config)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"mosquitto exited at start: {err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on port {self.port}")

    @property
    def pid(self) -> int:
        """The running server's process id (benchmarks read its CPU time)."""
        if self._process is None:
            raise RuntimeError("mosquitto is not running")
        return self._process.pid

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()
