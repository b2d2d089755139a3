"""docker-compose.yml runs the same system on real Kafka and Redis. No Docker engine here: parse and check it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from services.lab_normalisation.settings import LabSettings
from shared.auth import AuthSettings
from shared.settings import Settings
from shared.stack import SERVICE_MODULES

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
    apps = {n: s for n, s in services.items() if n not in ("kafka", "redis", "lag-exporter")}
    assert set(apps) == set(SERVICE_MODULES)
    assert len({s["image"] for s in apps.values()}) == 1
    known_env = {f.upper() for f in (*Settings.model_fields, *AuthSettings.model_fields)}
    for name, svc in apps.items():
        module, port = SERVICE_MODULES[name]
        assert svc["command"] == ["python", "-m", module]
        env = svc["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
        mllp = [f"{env['MLLP_PORT']}:{env['MLLP_PORT']}"] if "MLLP_PORT" in env else []  # lab-normalisation
        assert env["HTTP_PORT"] == str(port) and svc["ports"] == [f"{port}:{port}", *mllp]
        own = {f.upper() for f in LabSettings.model_fields} if name == "lab-normalisation" else set()
        assert set(env) <= known_env | own, f"{name}: unknown settings {set(env) - known_env - own}"
        assert svc["depends_on"] == {
            "kafka": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }


def test_dockerfile_installs_the_project() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11" in text
    for part in ("contracts", "shared", "services"):
        assert f"COPY {part} ./{part}" in text
