"""Creates ./secrets/ for docker-compose.yml: a private CA, the broker's and Redis's TLS certificates, a random
password per principal (Kafka SCRAM users, Redis ACL users) and the Redis ACL file with their SHA-256 hashes; and
for the MLLP listener (issue 24) a CA of its own, its server certificate, one example sender's client certificate
(mllp-client-example.crt/.key, CN "lab-example") and the allowed senders binding that certificate to MSH-3
"LAB-EXAMPLE" / MSH-4 "LAB-EXAMPLE" (replace them with the hospital's senders: README, intake).

    python -m deploy.make_secrets [DIR]     # default ./secrets (git-ignored); existing files are kept

DIR is made private (0700) and every file written is readable by its owner only (0600, `--file-mode`); the paths
written are printed, never their contents. Docker Compose bind-mounts these files with their host permissions:
where the containers' users (uid 10001 for the services, Kafka's and Redis's own) differ from the owner of the
files, as with Docker Engine on Linux, they need `--file-mode 0644` (the 0700 directory still keeps every other
host user out).

A development and test convenience: in production the certificates come from the hospital's PKI and the
passwords from its secret store, mounted under the same names. Nothing here is imported by the services."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import ipaddress
import os
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from contracts.topics import SERVICES
from deploy.generate import PRINCIPALS, redis_acl_template

PEM = serialization.Encoding.PEM
VALIDITY = dt.timedelta(days=825)
DIR_MODE = 0o700
FILE_MODE = 0o600


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


MLLP_EXAMPLE_SENDERS = """\
# MLLP_ALLOWED_SENDERS_FILE: client certificate ("cn:<subject CN>" or "sha256:<fingerprint>") -> the sending
# applications (MSH-3) and facilities (MSH-4) it may send for. A certificate without an entry sends nothing.
"cn:lab-example":
  - {application: LAB-EXAMPLE, facility: LAB-EXAMPLE}
"""


def redis_acl(passwords: dict[str, str]) -> str:
    text = redis_acl_template()
    for user, password in passwords.items():
        text = text.replace("#{" + user + "}", "#" + hashlib.sha256(password.encode()).hexdigest())
    return text


def write_all(
    directory: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), file_mode: int = FILE_MODE
) -> list[Path]:
    """Everything docker-compose.yml mounts; files already there are kept (re-running rotates nothing). The
    directory is made 0700 and the files `file_mode` (created so, never readable by others in between); returns the
    files written."""
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    directory.chmod(DIR_MODE)
    written: list[Path] = []

    def write(path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file_mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        path.chmod(file_mode)  # an existing file's mode, and the umask, are not applied by os.open
        written.append(path)

    def put(name: str, data: bytes) -> None:
        path = directory / name
        if not path.exists():
            write(path, data)
        else:
            path.chmod(file_mode)  # kept, but no longer readable by others

    ca = make_ca()
    for name in ("ca.crt", "kafka.pem", "redis.key", "redis.crt"):
        if (directory / name).exists():
            (directory / name).chmod(file_mode)
    if not (directory / "ca.crt").exists():
        put("ca.crt", ca[1].public_bytes(PEM))
        for host in ("kafka", "redis"):
            key, cert = issue(ca, host, *hosts)
            if host == "kafka":  # Kafka's PEM key store: private key and certificate in one file
                put("kafka.pem", _key_pem(key) + cert.public_bytes(PEM))
            else:
                put("redis.key", _key_pem(key))
                put("redis.crt", cert.public_bytes(PEM))
    if not (directory / "mllp.crt").exists():  # issue 24: MLLP over TLS with client certificates
        mllp_ca = make_ca("OsteoCDS MLLP development CA")
        key, cert = issue(mllp_ca, "lab-normalisation", *hosts)
        put("mllp.key", _key_pem(key))
        put("mllp.crt", cert.public_bytes(PEM))
        put("mllp-client-ca.crt", mllp_ca[1].public_bytes(PEM))
        key, cert = issue(mllp_ca, "lab-example")
        put("mllp-client-example.key", _key_pem(key))
        put("mllp-client-example.crt", cert.public_bytes(PEM))
    put("mllp-allowed-senders.yaml", MLLP_EXAMPLE_SENDERS.encode())
    for p in PRINCIPALS:
        put(f"{p}-kafka-password", secrets.token_urlsafe(24).encode())
    for user in (*SERVICES, "healthcheck"):
        put(f"{user}-redis-password", secrets.token_urlsafe(24).encode())
    passwords = {u: (directory / f"{u}-redis-password").read_text() for u in (*SERVICES, "healthcheck")}
    acl = directory / "redis-users.acl"
    text = redis_acl(passwords).encode()
    if not acl.exists() or acl.read_bytes() != text:
        write(acl, text)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.make_secrets", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("directory", nargs="?", default="secrets", type=Path, help="where to write (default: secrets)")
    parser.add_argument(
        "--file-mode", default="0600", type=lambda v: int(v, 8), help="mode of the files written (octal, default 0600)"
    )
    args = parser.parse_args(argv)
    written = write_all(args.directory, file_mode=args.file_mode)
    print(f"{args.directory}/ (mode {DIR_MODE:04o}): {len(written)} file(s) written, mode {args.file_mode:04o}:")
    for path in written:
        print(f"  {path}")
    if not written:
        print("  none: every file was already there (existing secrets are kept)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
