"""Issue 13, "Transport and data at rest": Redis over TLS with a per-service ACL user, and the Kafka TLS/SASL
settings every client is built with. The Redis test runs a real redis-server with --tls-port and an ACL (certificates
made here with `cryptography`). The embedded Kafka broker (Tansu) speaks neither TLS nor SASL, so the Kafka side is
checked on the clients' own configuration; docker-compose.yml runs it against Apache Kafka (tests/test_compose.py)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.exceptions
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from cryptography.hazmat.primitives import serialization
from pydantic import BaseModel, SecretStr

from deploy.make_secrets import make_ca, write_all
from devstack import infra
from shared.runtime.service import Service
from shared.runtime.state import StateStore
from shared.settings import Settings
from shared.transport import FileTokenProvider, kafka_client_kwargs, redis_client


@dataclass
class Pki:
    dir: Path
    ca: Path
    other_ca: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The secrets docker-compose.yml mounts, made by the project's own tool (deploy/make_secrets.py)."""
    d = tmp_path_factory.mktemp("secrets")
    write_all(d)
    other = d / "other-ca.crt"
    other.write_bytes(make_ca("some other CA")[1].public_bytes(serialization.Encoding.PEM))
    return Pki(d, d / "ca.crt", other)


@pytest.fixture(scope="module")
def tls_redis(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """redis-server as in docker-compose.yml: TLS only (no plaintext port), the generated ACL file (default user
    off, one user per service limited to its key prefix)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed")
    port = infra.free_port()
    d = tmp_path_factory.mktemp("tls-redis")
    proc = subprocess.Popen(
        [
            binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(d), "--tls-cert-file", str(pki.dir / "redis.crt"),
            "--tls-key-file", str(pki.dir / "redis.key"), "--tls-ca-cert-file", str(pki.ca),
            "--tls-auth-clients", "no", "--aclfile", str(pki.dir / "redis-users.acl"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        infra.wait_port("127.0.0.1", port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


class Counter(BaseModel):
    n: int = 0


def _redis_settings(port: int, pki: Pki, **over: Any) -> Settings:
    doc: dict[str, object] = {
        "service_name": "scoring",
        "redis_url": f"rediss://127.0.0.1:{port}/0",
        "redis_username": "scoring",
        "redis_password_file": pki.dir / "scoring-redis-password",
        "redis_ssl_ca_certs": pki.ca,
    }
    return Settings.model_validate({**doc, **over})


async def test_redis_over_tls_with_the_service_acl_user(tls_redis: int, pki: Pki) -> None:
    """Every Redis command the runtime uses (aggregate transaction, outbox compare-and-delete, processed IDs) works
    under the generated ACL; another service's prefix and dangerous commands are refused."""
    settings = _redis_settings(tls_redis, pki)
    service = Service(settings)  # the runtime builds its client from the settings
    try:
        assert await service.redis.ping()
        store = service.store

        def inc(c: Counter | None) -> tuple[Counter, int]:
            return Counter(n=(c.n if c else 0) + 1), 1

        await store.transact("pt-1", Counter, inc)
        assert await store.load("pt-1", Counter) == Counter(n=1)
        assert 0 < await service.redis.ttl(store.patient_key("pt-1")) <= settings.state_ttl_seconds

        def many(
            states: dict[str, Counter | None], boxes: dict[str, bytes | None]
        ) -> tuple[dict[str, Counter | bytes], dict[str, bytes], str]:
            return {p: Counter(n=(s.n if s else 0) + 1) for p, s in states.items()}, {"pt-1": b"tok\n[]"}, "ok"

        assert await store.transact_many(["pt-1", "pt-2"], Counter, many) == "ok"
        await store.clear_outboxes({"pt-1": "tok"})
        assert not await service.redis.exists(store.patient_key("pt-1", "outbox"))
        await store.mark_seen(["e1"])
        assert await store.seen_many(["e1", "e2"]) == {"e1"}
        with pytest.raises(redis.exceptions.NoPermissionError):  # another service's prefix
            await service.redis.set("osteocds:notification:state:pt-1", b"forged")
        with pytest.raises(redis.exceptions.NoPermissionError):  # dangerous commands are not granted
            await service.redis.flushall()
        other = StateStore(service.redis, "notification", 60)
        with pytest.raises(redis.exceptions.NoPermissionError):
            await other.mark_seen(["e1"])
    finally:
        await service.redis.aclose()


@pytest.mark.parametrize(
    "wrong",
    [
        {"redis_password": SecretStr("guess"), "redis_password_file": None},  # bad password
        {"redis_username": None, "redis_password_file": None},  # default user is off
        {"redis_url": "redis://127.0.0.1:{port}/0"},  # plaintext to a TLS-only server
    ],
)
async def test_redis_refuses_wrong_credentials_or_plaintext(tls_redis: int, pki: Pki, wrong: dict[str, Any]) -> None:
    over = {k: (v.format(port=tls_redis) if isinstance(v, str) else v) for k, v in wrong.items()}
    client = redis_client(_redis_settings(tls_redis, pki, **over))
    try:
        with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ConnectionError)):
            await asyncio.wait_for(client.set("osteocds:scoring:x", b"1"), timeout=5)
    finally:
        await client.aclose()


async def test_redis_tls_verifies_the_server_certificate(tls_redis: int, pki: Pki, tmp_path: Path) -> None:
    client = redis_client(_redis_settings(tls_redis, pki, redis_ssl_ca_certs=pki.other_ca))
    try:
        with pytest.raises(redis.exceptions.ConnectionError, match=r"(?i)certificate"):
            await client.ping()
    finally:
        await client.aclose()


# ---- Kafka ----------------------------------------------------------------------------------------------------
def test_plaintext_by_default() -> None:
    kwargs = kafka_client_kwargs(Settings(kafka_bootstrap_servers="b:9092"))
    assert kwargs == {"bootstrap_servers": "b:9092", "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_scram_with_the_password_from_a_secret_file(pki: Pki, tmp_path: Path) -> None:
    secret = tmp_path / "kafka_sasl_password"
    secret.write_text("s3cret\n")
    s = Settings(
        kafka_bootstrap_servers="kafka:9092",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="scoring",
        kafka_sasl_password_file=secret,
        kafka_ssl_cafile=pki.ca,
    )
    kwargs = kafka_client_kwargs(s)
    assert kwargs["security_protocol"] == "SASL_SSL" and kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "scoring" and kwargs["sasl_plain_password"] == "s3cret"
    ctx: ssl.SSLContext = kwargs["ssl_context"]
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "OsteoCDS development CA"),),)]
    assert "s3cret" not in repr(s)  # secrets never printed with the settings


async def test_every_kafka_client_accepts_the_security_settings(pki: Pki) -> None:
    """Producer, consumer and admin are built with the same arguments (aiokafka checks their consistency)."""
    s = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="u",
        kafka_sasl_password=SecretStr("p"),
        kafka_ssl_cafile=pki.ca,
    )
    kwargs = kafka_client_kwargs(s)
    producer = AIOKafkaProducer(**kwargs)
    consumer = AIOKafkaConsumer(**kwargs)
    admin = AIOKafkaAdminClient(**kwargs)
    for client in (producer.client, consumer._client, admin._client):
        assert client._security_protocol == "SASL_SSL" and client._sasl_mechanism == "SCRAM-SHA-256"
        assert client._ssl_context is kwargs["ssl_context"]


async def test_oauthbearer_reads_a_rotated_token_on_each_login(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t1\n")
    kwargs = kafka_client_kwargs(
        Settings(
            kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="OAUTHBEARER", kafka_sasl_oauth_token_file=token
        )
    )
    provider: FileTokenProvider = kwargs["sasl_oauth_token_provider"]
    assert await provider.token() == "t1"
    token.write_text("t2")
    assert await provider.token() == "t2"
    AIOKafkaProducer(**kwargs)  # accepted by the client


def test_sasl_without_credentials_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="username and a password"):
        kafka_client_kwargs(Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="u"))
    with pytest.raises(ValueError, match="TOKEN_FILE"):
        kafka_client_kwargs(Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="OAUTHBEARER"))
