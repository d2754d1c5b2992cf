"""All configuration, in one place.

Nothing else in Firewarden reads ``os.environ``: every process builds one
:class:`Settings` (from ``FIREWARDEN_*`` variables and an optional ``.env``
file) and passes it, or the parts it needs, down.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "FIREWARDEN_"

Port = Annotated[int, Field(ge=1, le=65535)]


class SettingsError(Exception):
    """A setting has a bad value; the message is one line naming the variable."""


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    """A parsed ``FIREWARDEN_MQTT_URL``."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: SecretStr | None

    @property
    def display(self) -> str:
        """The URL without its password, safe for logs."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}:***@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttEndpoint:
    """Parse ``mqtt://[user[:pass]@]host[:port]`` or ``mqtts://...``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError("scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError("a host is required, e.g. mqtt://127.0.0.1:1883")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("only scheme, credentials, host and port are allowed")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("port must be a number from 1 to 65535") from None
    tls = parts.scheme == "mqtts"
    return MqttEndpoint(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=SecretStr(unquote(parts.password)) if parts.password else None,
    )


class Settings(BaseSettings):
    """Firewarden's settings; each field is ``FIREWARDEN_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    # --- MQTT -----------------------------------------------------------------
    MQTT_URL: SecretStr | None = None
    """Broker to use; unset means ``firewarden up`` starts an embedded broker."""
    TOPIC_PREFIX: str = "fw"
    MQTT_CLIENT_ID: str = "firewarden-ingest"
    MQTT_SHARED_GROUP: str | None = None
    EMBEDDED_MQTT_HOST: str = "127.0.0.1"
    EMBEDDED_MQTT_PORT: Port = 1883

    # --- Telemetry store ----------------------------------------------------------
    INFLUX_URL: str | None = None
    INFLUX_DB: str = "firewarden"
    INFLUX_TOKEN: SecretStr | None = None

    # --- Local state ----------------------------------------------------------------
    DATABASE_URL: SecretStr | None = None
    DATA_DIR: Path = Path("./data")

    # --- HTTP API ---------------------------------------------------------------------
    API_HOST: str = "127.0.0.1"
    API_PORT: Port = 8080

    # --- Message contract limits --------------------------------------------------
    MAX_PAYLOAD_BYTES: Annotated[int, Field(ge=256, le=1_048_576)] = 8192
    MAX_CLOCK_AHEAD_S: Annotated[int, Field(ge=0, le=86_400)] = 300
    MAX_MESSAGE_AGE_S: Annotated[int, Field(ge=60)] = 7 * 86_400
    MAX_IMPORT_BYTES: Annotated[int, Field(ge=1024)] = 20 * 1024 * 1024
    REGISTRY_POLL_S: Annotated[float, Field(gt=0, le=60)] = 1.0
    """How often each process follows registry changes made by others."""

    # --- Telemetry writing (ingest.writer) ------------------------------------------
    BATCH_SIZE: Annotated[int, Field(ge=1, le=100_000)] = 5000
    FLUSH_INTERVAL_S: Annotated[float, Field(gt=0, le=10)] = 0.1
    SPOOL_MAX_BYTES: Annotated[int, Field(ge=1024 * 1024)] = 1024 * 1024 * 1024

    # --- Alerts (alerts/) -------------------------------------------------------------
    ALERT_REMINDER_INTERVAL_S: Annotated[float, Field(ge=1, le=86_400)] = 120.0
    """An unacknowledged critical alert is announced again this often."""
    ALERT_REMINDERS_PER_ESCALATION: Annotated[int, Field(ge=1, le=100)] = 3
    ALERT_FLAP_COOLDOWN_S: Annotated[float, Field(ge=0, le=86_400)] = 600.0
    """A condition back within this long after auto-resolving reopens the same alert."""
    STREAM_KEEPALIVE_S: Annotated[float, Field(gt=0, le=300)] = 15.0
    """A comment line this often keeps proxies from closing an idle alert stream."""
    STREAM_CLIENT_BUFFER: Annotated[int, Field(ge=10, le=100_000)] = 1000
    """Changes a slow stream client may fall behind before it is told to resync."""
    STREAM_REPLAY_LIMIT: Annotated[int, Field(ge=100, le=1_000_000)] = 10_000
    """A reconnecting client further behind than this is told to reload."""
    OFFLINE_STARTUP_GRACE_S: Annotated[float, Field(ge=0, le=3600)] = 30.0
    """After a start, deadlines already past wait this long for the broker's backlog."""
    """Disk spool limit; when full, messages are no longer acknowledged."""

    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    LOG_FORMAT: Literal["text", "json"] = "text"

    @field_validator("MQTT_URL")
    @classmethod
    def _check_mqtt_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_mqtt_url(value.get_secret_value())
        return value

    @field_validator("TOPIC_PREFIX")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        segments = value.split("/")
        if not value or any(not s or any(c in s for c in "+#$ ") for s in segments):
            raise ValueError("must be one or more non-empty topic levels without + # $ or spaces")
        return value

    @field_validator("MQTT_SHARED_GROUP")
    @classmethod
    def _check_group(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c in value for c in "/+#")):
            raise ValueError("must be a non-empty name without / + or #")
        return value

    @field_validator("INFLUX_URL")
    @classmethod
    def _check_influx_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL, e.g. http://127.0.0.1:8086")
        return value.rstrip("/")

    @field_validator("DATABASE_URL")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = value.get_secret_value()
        if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://", "sqlite://",
                               "postgresql://")):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        return value

    # --- derived values -------------------------------------------------------------
    @property
    def mqtt(self) -> MqttEndpoint | None:
        """The configured broker, or None for the embedded one."""
        if self.MQTT_URL is None:
            return None
        return parse_mqtt_url(self.MQTT_URL.get_secret_value())

    @property
    def database_url(self) -> str:
        """The SQLAlchemy async URL (SQLite under the data dir by default)."""
        if self.DATABASE_URL is None:
            return f"sqlite+aiosqlite:///{(self.DATA_DIR / 'firewarden.db').resolve()}"
        url = self.DATABASE_URL.get_secret_value()
        if url.startswith("postgresql://"):
            return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
        if url.startswith("sqlite://") and not url.startswith("sqlite+"):
            return "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
        return url


def describe_error(error: ValidationError) -> str:
    """One line naming each bad variable and what is wrong with it."""
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{ENV_PREFIX}{field.upper()}: {message}")
    return "bad setting: " + "; ".join(problems)


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning validation errors into a :class:`SettingsError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(describe_error(error)) from None
