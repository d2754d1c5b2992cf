"""docker-compose.yml cannot run here (no Docker engine); check what can be checked."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from firewarden.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _environment(service: str) -> dict[str, str]:
    env = COMPOSE["services"][service].get("environment", {})
    return dict(env) if isinstance(env, dict) else dict(e.split("=", 1) for e in env)


def test_services_present() -> None:
    assert {"mosquitto", "influxdb", "postgres", "firewarden", "simulator"} <= set(
        COMPOSE["services"])
    assert COMPOSE["services"]["simulator"]["profiles"] == ["simulator"]


def test_firewarden_variables_are_real_settings() -> None:
    fields = {f"{ENV_PREFIX}{name}" for name in Settings.model_fields}
    used = {name for service in ("firewarden", "simulator")
            for name in _environment(service) if name.startswith(ENV_PREFIX)}
    assert used and used <= fields, used - fields
    for required in ("FIREWARDEN_MQTT_URL", "FIREWARDEN_INFLUX_URL", "FIREWARDEN_DATABASE_URL"):
        assert required in used


def test_no_default_secrets() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("FIREWARDEN_MQTT_PASSWORD", "INFLUXDB_TOKEN", "POSTGRES_PASSWORD",
                   "INFLUXDB_ADMIN_PASSWORD", "SIMULATOR_MQTT_PASSWORD"):
        assert re.search(r"\$\{" + secret + r":\?", text), f"{secret} must be required"
        assert not re.search(r"\$\{" + secret + r":-", text), f"{secret} has a default"


def test_mounted_files_exist() -> None:
    for service in COMPOSE["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    assert (ROOT / "Dockerfile").exists()


def test_mosquitto_acl_confines_devices_to_their_own_topics() -> None:
    acl = (ROOT / "deploy/mosquitto/acl").read_text()
    assert "pattern write fw/+/%u/telemetry" in acl
    assert "pattern write fw/+/%u/event" in acl
    assert "pattern read fw/+/%u/cmd" in acl
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "acl_file" in conf


def test_acl_with_real_mosquitto(tmp_path: Path) -> None:
    """The shipped ACL and config, run by a real Mosquitto on a free port."""
    import subprocess
    import time

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.support.mosquitto import MosquittoServer

    server = MosquittoServer(tmp_path)
    passwd = tmp_path / "passwd"
    passwd.touch(mode=0o600)
    for user in ("firewarden", "D1"):
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, f"pw-{user}"], check=True)
    shipped = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    conf = "\n".join(
        line for line in shipped.splitlines()
        if not line.startswith(("listener", "password_file", "acl_file", "persistence_location",
                                "log_dest"))
    )
    server.configure(f"{conf}\npassword_file {passwd}\nacl_file {ROOT / 'deploy/mosquitto/acl'}\n")
    server.start()
    try:
        received: list[str] = []
        ready = []

        def client(user: str) -> mqtt.Client:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
            c.username_pw_set(user, f"pw-{user}")
            c.connect("127.0.0.1", server.port)
            c.loop_start()
            return c

        ingest = client("firewarden")
        ingest.on_message = lambda _c, _u, m: received.append(m.topic)
        ingest.on_subscribe = lambda *_: ready.append(True)
        ingest.subscribe([("fw/+/+/telemetry", 1), ("fw/+/+/event", 1)])
        device = client("D1")
        deadline = time.monotonic() + 5
        while not ready and time.monotonic() < deadline:
            time.sleep(0.02)
        for topic in ("fw/smoke/D2/telemetry", "fw/smoke/D1/telemetry", "fw/smoke/D1/event"):
            device.publish(topic, b"{}", qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 5
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        for c in (ingest, device):
            c.disconnect()
            c.loop_stop()
    finally:
        server.stop()
    assert sorted(received) == ["fw/smoke/D1/event", "fw/smoke/D1/telemetry"]
