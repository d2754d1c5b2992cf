from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from firewarden.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("FIREWARDEN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults() -> None:
    settings = load_settings()
    assert settings.TOPIC_PREFIX == "fw" and settings.mqtt is None
    assert (settings.API_HOST, settings.API_PORT) == ("127.0.0.1", 8080)
    assert settings.INFLUX_DB == "firewarden" and settings.INFLUX_URL is None
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.database_url.endswith("/data/firewarden.db")


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FIREWARDEN_TOPIC_PREFIX=city/fw\nFIREWARDEN_API_PORT=9000\n")
    monkeypatch.setenv("FIREWARDEN_API_PORT", "9100")  # the environment wins over .env
    monkeypatch.setenv("FIREWARDEN_MQTT_URL", "mqtts://ops:s3cr%40t@broker.example:8884")
    settings = load_settings()
    assert settings.TOPIC_PREFIX == "city/fw" and settings.API_PORT == 9100
    endpoint = settings.mqtt
    assert endpoint is not None and endpoint.tls and endpoint.port == 8884
    assert endpoint.username == "ops" and endpoint.password is not None
    assert endpoint.password.get_secret_value() == "s3cr@t"


def test_postgres_url_gets_the_async_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREWARDEN_DATABASE_URL", "postgresql://fw@127.0.0.1/fw")
    assert load_settings().database_url == "postgresql+asyncpg://fw@127.0.0.1/fw"


@pytest.mark.parametrize(("name", "value", "needle"), [
    ("FIREWARDEN_API_PORT", "99999", "less than or equal to 65535"),
    ("FIREWARDEN_API_PORT", "http", "valid integer"),
    ("FIREWARDEN_MQTT_URL", "http://broker:1883", "mqtt:// or mqtts://"),
    ("FIREWARDEN_MQTT_URL", "mqtt://broker:99999", "port"),
    ("FIREWARDEN_TOPIC_PREFIX", "fw/#", "topic levels"),
    ("FIREWARDEN_INFLUX_URL", "influx:8086", "http://"),
    ("FIREWARDEN_DATABASE_URL", "mysql://x", "sqlite:// or postgresql://"),
    ("FIREWARDEN_MQTT_SHARED_GROUP", "a/b", "without /"),
    ("FIREWARDEN_LOG_LEVEL", "LOUD", "INFO"),
])
def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                      needle: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert name in message and needle in message and "\n" not in message


def test_secrets_never_shown(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
                             ) -> None:
    monkeypatch.setenv("FIREWARDEN_MQTT_URL", "mqtt://ops:hunter2@broker:1883")
    monkeypatch.setenv("FIREWARDEN_INFLUX_TOKEN", "tok-hunter2")
    settings = load_settings()
    assert settings.mqtt is not None
    logging.getLogger("t").info("settings %s, broker %s", settings, settings.mqtt.display)
    assert "hunter2" not in repr(settings) and "hunter2" not in caplog.text
    assert settings.mqtt.display == "mqtt://ops:***@broker:1883"


def test_cli_stops_with_one_line_naming_the_setting(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "FIREWARDEN_API_PORT": "0", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "firewarden.cli", "up"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "FIREWARDEN_API_PORT" in lines[0]


def test_cli_settings_masks_secrets(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "FIREWARDEN_INFLUX_TOKEN": "tok-hunter2", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "firewarden.cli", "settings"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True)
    assert "FIREWARDEN_INFLUX_TOKEN=**********" in result.stdout and "hunter2" not in result.stdout


def test_ingest_worker_needs_a_broker_url(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "firewarden.cli", "ingest"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "FIREWARDEN_MQTT_URL" in result.stderr
