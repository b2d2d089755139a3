"""Issue 13, "Transport and data at rest": Redis over TLS with a per-service ACL user, and the Kafka TLS/SASL
settings every client is built with. The Redis test runs a real redis-server with --tls-port and an ACL (certificates
made here with `cryptography`). The embedded Kafka broker (Tansu) speaks neither TLS nor SASL, so the Kafka side is
checked on the clients' own configuration; docker-compose.yml runs it against Apache Kafka (tests/test_compose.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.exceptions
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import BaseModel, SecretStr

from shared import infra
from shared.service import Service
from shared.settings import Settings
from shared.state import StateStore
from shared.transport import FileTokenProvider, kafka_client_kwargs, redis_client


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca = _ca("osteocds test CA")
    _, other = _ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("redis"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (d / "ca.crt").write_bytes(ca.public_bytes(pem))
    (d / "other-ca.crt").write_bytes(other.public_bytes(pem))
    (d / "redis.crt").write_bytes(cert.public_bytes(pem))
    (d / "redis.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Pki(d / "ca.crt", d / "redis.crt", d / "redis.key", d / "other-ca.crt")


@pytest.fixture(scope="module")
def tls_redis(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """redis-server with TLS only (no plaintext port), the default user off, one ACL user per service prefix."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed")
    port = infra.free_port()
    d = tmp_path_factory.mktemp("tls-redis")
    proc = subprocess.Popen(
        [
            binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(d), "--tls-cert-file", str(pki.cert), "--tls-key-file", str(pki.key),
            "--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", "no",
            "--user", "default", "off",
            "--user", "scoring", "on", ">scoring-secret", "~osteocds:scoring:*", "&*", "+@all", "-@dangerous",
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


def _redis_settings(port: int, pki: Pki, password_file: Path, **over: object) -> Settings:
    doc: dict[str, object] = {
        "service_name": "scoring",
        "redis_url": f"rediss://127.0.0.1:{port}/0",
        "redis_username": "scoring",
        "redis_password_file": password_file,
        "redis_ssl_ca_certs": pki.ca,
    }
    return Settings.model_validate({**doc, **over})


async def test_redis_over_tls_with_the_service_acl_user(tls_redis: int, pki: Pki, tmp_path: Path) -> None:
    secret = tmp_path / "redis_password"
    secret.write_text("scoring-secret\n")
    settings = _redis_settings(tls_redis, pki, secret)
    service = Service(settings)  # the runtime builds its client from the settings
    try:
        assert await service.redis.ping()
        store = service.store

        def inc(c: Counter | None) -> tuple[Counter, int]:
            return Counter(n=(c.n if c else 0) + 1), 1

        await store.transact("pt-1", Counter, inc)
        assert await store.load("pt-1", Counter) == Counter(n=1)
        assert 0 < await service.redis.ttl(store.patient_key("pt-1")) <= settings.state_ttl_seconds
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
async def test_redis_refuses_wrong_credentials_or_plaintext(
    tls_redis: int, pki: Pki, tmp_path: Path, wrong: dict[str, object]
) -> None:
    secret = tmp_path / "redis_password"
    secret.write_text("scoring-secret")
    over = {k: (v.format(port=tls_redis) if isinstance(v, str) else v) for k, v in wrong.items()}
    client = redis_client(_redis_settings(tls_redis, pki, secret, **over))
    try:
        with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ConnectionError)):
            await asyncio.wait_for(client.set("osteocds:scoring:x", b"1"), timeout=5)
    finally:
        await client.aclose()


async def test_redis_tls_verifies_the_server_certificate(tls_redis: int, pki: Pki, tmp_path: Path) -> None:
    secret = tmp_path / "redis_password"
    secret.write_text("scoring-secret")
    client = redis_client(_redis_settings(tls_redis, pki, secret, redis_ssl_ca_certs=pki.other_ca))
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
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "osteocds test CA"),),)]
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
