"""The disk spool: batches the telemetry store could not take, kept in order.

Each batch is one file, written to a temporary name, fsynced, then renamed into
place (and the directory fsynced), so after a crash a batch is either whole or
absent.  Files are named by an increasing sequence number; replay takes the
oldest first and deletes it only after the store took it.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import msgspec

from ingest.points import Point

_LOGGER = logging.getLogger(__name__)

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(list[Point])
SUFFIX = ".batch"


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        for leftover in directory.glob("*.tmp"):  # a write that never completed
            leftover.unlink()
        self._files: list[tuple[int, Path, int]] = sorted(
            (int(p.stem), p, p.stat().st_size) for p in directory.glob(f"*{SUFFIX}"))
        self._next = (self._files[-1][0] + 1) if self._files else 1
        self.bytes = sum(size for _, _, size in self._files)
        if self._files:
            _LOGGER.info("spool holds %d batches (%d bytes) from before; replaying",
                         len(self._files), self.bytes)

    @property
    def batches(self) -> int:
        return len(self._files)

    @property
    def full(self) -> bool:
        return self.bytes >= self.max_bytes

    def append(self, points: list[Point]) -> None:
        """Durably add a batch (blocking I/O: call it from a worker thread)."""
        data = _ENCODER.encode(points)
        with self._lock:
            sequence = self._next
            self._next += 1
        final = self.directory / f"{sequence:016d}{SUFFIX}"
        temporary = final.with_suffix(".tmp")
        with temporary.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        temporary.rename(final)
        _fsync_directory(self.directory)
        with self._lock:
            self._files.append((sequence, final, len(data)))
            self._files.sort()
            self.bytes += len(data)

    def oldest(self) -> tuple[Path, list[Point]] | None:
        """The oldest batch, or None; an unreadable file is set aside as ``.bad``."""
        while True:
            with self._lock:
                if not self._files:
                    return None
                _, path, _ = self._files[0]
            try:
                return path, _DECODER.decode(path.read_bytes())
            except (OSError, msgspec.DecodeError) as error:
                _LOGGER.error("spool batch %s is unreadable (%s); kept as .bad", path, error)
                path.rename(path.with_suffix(".bad"))
                self._forget(path)

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._forget(path)

    def _forget(self, path: Path) -> None:
        with self._lock:
            for index, (_, known, size) in enumerate(self._files):
                if known == path:
                    del self._files[index]
                    self.bytes -= size
                    return


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
