"""Creates ./secrets/ for docker-compose.yml: a private CA, the broker's and Redis's TLS certificates, a random
password per principal (Kafka SCRAM users, Redis ACL users) and the Redis ACL file with their SHA-256 hashes.

    python -m deploy.make_secrets [DIR]     # default ./secrets (git-ignored); existing files are kept

A development and test convenience: in production the certificates come from the hospital's PKI and the
passwords from its secret store, mounted under the same names. Nothing here is imported by the services."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from contracts.topics import SERVICES
from deploy.generate import PRINCIPALS, redis_acl_template

PEM = serialization.Encoding.PEM
VALIDITY = dt.timedelta(days=825)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def make_ca(cn: str = "OsteoCDS development CA") -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], host: str, *alt: str
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A server certificate for `host` (and `alt` names or IP addresses), signed by the CA."""
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for n in (host, *alt):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            names.append(x509.DNSName(n))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def redis_acl(passwords: dict[str, str]) -> str:
    text = redis_acl_template()
    for user, password in passwords.items():
        text = text.replace("#{" + user + "}", "#" + hashlib.sha256(password.encode()).hexdigest())
    return text


def write_all(directory: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> None:
    """Everything docker-compose.yml mounts; files already there are kept (re-running rotates nothing)."""
    directory.mkdir(parents=True, exist_ok=True)

    def put(name: str, data: bytes) -> None:
        path = directory / name
        if not path.exists():
            path.write_bytes(data)

    ca = make_ca()
    if not (directory / "ca.crt").exists():
        put("ca.crt", ca[1].public_bytes(PEM))
        for host in ("kafka", "redis"):
            key, cert = issue(ca, host, *hosts)
            if host == "kafka":  # Kafka's PEM key store: private key and certificate in one file
                put("kafka.pem", _key_pem(key) + cert.public_bytes(PEM))
            else:
                put("redis.key", _key_pem(key))
                put("redis.crt", cert.public_bytes(PEM))
    for p in PRINCIPALS:
        put(f"{p}-kafka-password", secrets.token_urlsafe(24).encode())
    for user in (*SERVICES, "healthcheck"):
        put(f"{user}-redis-password", secrets.token_urlsafe(24).encode())
    passwords = {u: (directory / f"{u}-redis-password").read_text() for u in (*SERVICES, "healthcheck")}
    (directory / "redis-users.acl").write_text(redis_acl(passwords))


if __name__ == "__main__":
    write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "secrets"))
