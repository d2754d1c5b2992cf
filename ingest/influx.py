"""InfluxDB through its v1 HTTP API (``/write``, ``/query``).

InfluxDB 1.x serves it natively, 2.x through its v1-compatibility API (token,
database/retention-policy mapping) and 3 Core natively, so this one client
serves all three (docs/storage.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from ingest.line_protocol import encode_batch
from ingest.points import Point
from ingest.sinks import RejectedError, RetryableError, TooLargeError


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxSink:
    name = "influxdb"

    def __init__(self, url: str, database: str, *, token: str | None = None,
                 timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.database = database
        headers = {"Authorization": f"Token {token}"} if token else {}
        self._client = httpx.AsyncClient(base_url=self.url, headers=headers,
                                         timeout=httpx.Timeout(timeout_s))

    async def write(self, points: list[Point]) -> None:
        # Encoding a batch of 5,000 points takes tens of milliseconds: on a thread, so
        # the event loop meanwhile announces alerts and serves the API.
        body = await asyncio.to_thread(encode_batch, points)
        try:
            response = await self._client.post(
                "/write", params={"db": self.database, "precision": "ms"}, content=body)
        except (httpx.TimeoutException, httpx.TransportError) as error:
            raise RetryableError(f"InfluxDB unreachable: {error!r}") from None
        status = response.status_code
        if status in (200, 204):
            return
        message = _error_text(response)
        if status == 413:
            raise TooLargeError(message)
        if status == 429 or status >= 500:
            raise RetryableError(f"InfluxDB answered {status}: {message}")
        raise RejectedError(f"InfluxDB answered {status}: {message}")

    async def query(self, q: str) -> list[dict[str, Any]]:
        """The series of the query's first statement (epoch ms timestamps)."""
        try:
            response = await self._client.get("/query", params={"db": self.database, "q": q,
                                                                "epoch": "ms"})
        except (httpx.TimeoutException, httpx.TransportError) as error:
            raise RetryableError(f"InfluxDB unreachable: {error!r}") from None
        if response.status_code != 200:
            raise RejectedError(f"InfluxDB answered {response.status_code}: "
                                f"{_error_text(response)}")
        result = response.json()["results"][0]
        if "error" in result:
            raise RejectedError(result["error"])
        return list(result.get("series", []))

    async def ensure_database(self) -> None:
        """Create the database on InfluxDB 1.x; 2.x and 3 map or create it themselves."""
        try:
            await self._client.post("/query", params={
                "q": f"CREATE DATABASE {quote_ident(self.database)}"})
        except httpx.HTTPError as error:
            raise RetryableError(f"InfluxDB unreachable: {error!r}") from None

    async def close(self) -> None:
        await self._client.aclose()


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and "error" in body:
            return str(body["error"])
    except ValueError:
        pass
    return response.text[:500]
