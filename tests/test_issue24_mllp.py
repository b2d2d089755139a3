"""Issue 24: MLLP secured (mutual TLS, each client certificate bound to the MSH-3/4 it may send for), tolerant
framing, and a busy port that no longer stops lab-normalisation. Real TLS clients (Python's ssl module) against
the real listener and the service's own sender check and ACK builder; certificates made here (`cryptography`)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client import CollectorRegistry

from devstack import infra
from services.lab_normalisation.hl7_acks import Hl7Answer, ack_codec, hl7_ack
from services.lab_normalisation.hl7_segments import Hl7Message, header_of
from services.lab_normalisation.mllp import (
    FS,
    VT,
    ListenerConfig,
    MllpListener,
    MllpMetrics,
    MllpSender,
    SenderPolicy,
    tls_context,
)
from services.lab_normalisation.mllp_intake import allowed_senders, mllp_config, mllp_handlers
from services.lab_normalisation.settings import LabSettings

ROOT = Path(__file__).resolve().parent.parent
PEM = serialization.Encoding.PEM


# ---- a private CA, the server's certificate, clients' certificates --------------------------------------------
@dataclass
class Issued:
    cert: Path
    key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


class Ca:
    def __init__(self, name: str, directory: Path) -> None:
        self.dir = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.path = directory / f"{name}-ca.crt"
        self.path.write_bytes(self.cert.public_bytes(PEM))

    def issue(self, cn: str, server: bool = False) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        out = Issued(self.dir / f"{cn}.crt", self.dir / f"{cn}.key")
        out.cert.write_bytes(cert.public_bytes(PEM))
        out.key.write_bytes(_key_pem(key))
        return out


@dataclass
class Pki:
    ca: Ca
    server: Issued
    lab: Issued  # bound to GLIMS / CHU-LYON-BIO
    other: Issued  # trusted, bound to another application/facility
    unbound: Issued  # trusted, bound to nothing
    rogue: Issued  # signed by another CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca, rogue_ca = Ca("hospital", d), Ca("rogue", d)
    return Pki(
        ca,
        ca.issue("localhost", server=True),
        ca.issue("lab.chu"),
        ca.issue("radio.chu"),
        ca.issue("x.chu"),
        rogue_ca.issue("lab.chu-rogue"),
    )


ORU = (
    "MSH|^~\\&|GLIMS^1.2.250.1.71.4.2.1^ISO|CHU-LYON-BIO^1.2.250.1.71.4.2.2^ISO|OSTEOCDS|CHU|20261127091231+0100||"
    "ORU^R01^ORU_R01|{control}|P^T|2.5.1\r"
    "PID|1||PT-24A^^^CHU^PI\r"
    "OBR|1|P1|F1|CHEM|||202611270740\r"
    "OBX|1|NM|2000-8^Ca^LN||2.4|mmol/L|||||F\r"
)


def oru(control: str = "C1", app: str = "GLIMS^1.2.250.1.71.4.2.1^ISO") -> bytes:
    return ORU.format(control=control).replace("GLIMS^1.2.250.1.71.4.2.1^ISO", app).encode()


# ---- the listener, wired as app.py wires it (the sender check and ACK builder are the service's own) -------------
RECEIVING = ("OSTEOCDS^1.2.250.1.999.9^ISO", "CHU-LYON")
SENDERS = {
    "cn:lab.chu": [MllpSender(application="GLIMS", facility="CHU-LYON-BIO")],
    "cn:radio.chu": [MllpSender(application="RIS", facility="CHU-LYON-RAD")],
}


def answer(header: Hl7Message, code: str, reasons: list[str], status: int, send: bool = True) -> Hl7Answer:
    return Hl7Answer(hl7_ack(header, code, reasons, receiving=RECEIVING), code, status, send, ack_codec(header))  # type: ignore[arg-type]


@dataclass
class Running:
    listener: MllpListener
    metrics: MllpMetrics
    handled: list[bytes]

    @property
    def port(self) -> int:
        assert self.listener.port is not None
        return self.listener.port

    def refused(self, reason: str) -> float:
        return float(self.metrics.refused.labels("lab-test", reason)._value.get())


@contextlib.asynccontextmanager
async def listening(
    tls: ssl.SSLContext | None, port: int = 0, retry: float = 1.0, senders: SenderPolicy | None = None
) -> AsyncIterator[Running]:
    metrics = MllpMetrics(CollectorRegistry(), "lab-test")
    handled: list[bytes] = []

    async def handle_hl7(raw: bytes, source: str, path: str) -> Hl7Answer:  # publishing: tested on the stack
        handled.append(raw)
        return answer(header_of(raw), "AA", [], 200)

    handle, refuse = mllp_handlers(senders or SenderPolicy(SENDERS), metrics, handle_hl7, answer)
    listener = MllpListener(ListenerConfig("127.0.0.1", port, tls, retry, retry * 4, 5.0), handle, refuse, metrics)
    listener.start()
    running = Running(listener, metrics, handled)
    try:
        if port == 0:
            await _until(lambda: listener.problem is None)
        yield running
    finally:
        await listener.close()


async def _until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def client_context(pki: Pki, who: Issued | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca.path))
    if who is not None:
        ctx.load_cert_chain(str(who.cert), str(who.key))
    return ctx


async def exchange(port: int, ctx: ssl.SSLContext | None, *messages: bytes, raw: bytes | None = None) -> list[bytes]:
    """Send framed messages (or `raw` bytes) over one connection; the framed answers read back."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname="localhost" if ctx else None
    )
    acks: list[bytes] = []
    try:
        if raw is not None:
            writer.write(raw)
        for m in messages:
            writer.write(VT + m + FS + b"\r")
        await writer.drain()
        for _ in range(len(messages) if raw is None else raw.count(VT)):
            block = await asyncio.wait_for(reader.readuntil(FS), 10)
            acks.append(block[block.index(VT) + 1 : -1])
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return acks


def msa(ack: bytes) -> list[str]:
    return ack.decode().split("\r")[1].split("|")


# ---- item 1: mutual TLS, certificates bound to MSH-3/4 --------------------------------------------------------
async def test_a_trusted_bound_sender_is_accepted_over_tls(pki: Pki) -> None:
    async with listening(tls_context(pki.server.cert, pki.server.key, pki.ca.path)) as srv:
        [ack] = await exchange(srv.port, client_context(pki, pki.lab), oru("OK-1"))
    assert msa(ack)[:3] == ["MSA", "AA", "OK-1"] and len(srv.handled) == 1
    msh = ack.decode().split("\r")[0].split("|")
    assert msh[2:6] == [
        "OSTEOCDS^1.2.250.1.999.9^ISO",
        "CHU-LYON",
        "GLIMS^1.2.250.1.71.4.2.1^ISO",
        "CHU-LYON-BIO^1.2.250.1.71.4.2.2^ISO",
    ]


async def test_a_certificate_bound_to_another_sender_gets_AR_and_is_audited(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    async with listening(tls_context(pki.server.cert, pki.server.key, pki.ca.path)) as srv:
        [other] = await exchange(srv.port, client_context(pki, pki.other), oru("OTHER-1"))
        [unbound] = await exchange(srv.port, client_context(pki, pki.unbound), oru("UNBOUND-1"))
        [wrong_app] = await exchange(srv.port, client_context(pki, pki.lab), oru("APP-1", app="ADT^1.2.3^ISO"))
        assert srv.handled == []  # none of them reached the intake
        assert srv.refused("sender_not_allowed") == 2 and srv.refused("certificate_not_bound") == 1
    assert msa(other)[:3] == ["MSA", "AR", "OTHER-1"] and b"not one this client certificate may send for" in other
    assert msa(unbound)[1] == "AR" and b"bound to no sending application" in unbound
    assert msa(wrong_app)[1] == "AR"
    audit = [r.getMessage() for r in caplog.records if r.getMessage().startswith("MLLP audit: refused")]
    assert len(audit) == 3 and "identity=cn:radio.chu" in audit[0] and "PT-24A" not in " ".join(audit)


async def test_no_certificate_an_unknown_certificate_and_plaintext_are_refused(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    async with listening(tls_context(pki.server.cert, pki.server.key, pki.ca.path)) as srv:
        for who in (None, pki.rogue):
            with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
                await exchange(srv.port, client_context(pki, who), oru("TLS-1"))
        # plaintext MLLP on the TLS port: one AR saying so, in plaintext, then the connection is closed
        [plain] = await exchange(srv.port, None, oru("PLAIN-1"))
        await _until(lambda: srv.refused("no_client_certificate") + srv.refused("untrusted_certificate") == 2)
        assert srv.refused("no_client_certificate") == 1 and srv.refused("untrusted_certificate") == 1
        assert srv.refused("plaintext_on_tls_port") == 1 and srv.handled == []
    assert msa(plain)[:3] == ["MSA", "AR", "PLAIN-1"] and b"requires TLS with a client certificate" in plain
    audit = " ".join(r.getMessage() for r in caplog.records)
    assert "reason=no_client_certificate" in audit and "reason=untrusted_certificate" in audit


async def test_a_certificate_bound_by_fingerprint_and_full_hd(pki: Pki) -> None:
    """The stricter binding: the certificate's SHA-256 fingerprint (colons and case as printed by openssl), and
    MSH-3 compared on every HD component."""
    der = x509.load_pem_x509_certificate(pki.other.cert.read_bytes()).public_bytes(serialization.Encoding.DER)
    fingerprint = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    policy = SenderPolicy(
        {f"SHA256:{fingerprint}": [MllpSender(application="GLIMS^1.2.250.1.71.4.2.1^ISO", facility="CHU-LYON-BIO")]}
    )
    async with listening(tls_context(pki.server.cert, pki.server.key, pki.ca.path), senders=policy) as srv:
        [ok] = await exchange(srv.port, client_context(pki, pki.other), oru("FP-1"))
        [wrong_oid] = await exchange(
            srv.port, client_context(pki, pki.other), oru("FP-2", app="GLIMS^1.2.250.1.71.4.2.9^ISO")
        )
        [by_cn] = await exchange(srv.port, client_context(pki, pki.lab), oru("FP-3"))  # not this certificate
    assert [msa(a)[1] for a in (ok, wrong_oid, by_cn)] == ["AA", "AR", "AR"]


def test_plaintext_only_on_opt_in_and_only_on_loopback(pki: Pki) -> None:
    assert mllp_config(LabSettings())[0] is None  # neither TLS nor the opt-in: not started
    assert "no TLS configured" in mllp_config(LabSettings())[1]
    on_all = mllp_config(LabSettings(mllp_plaintext=True, mllp_host="0.0.0.0"))
    assert on_all[0] is None and "loopback" in on_all[1]
    loopback = mllp_config(LabSettings(mllp_plaintext=True, mllp_host="127.0.0.1"))[0]
    assert loopback is not None and loopback.tls is None
    tls = LabSettings(
        mllp_host="0.0.0.0",
        mllp_tls_certfile=pki.server.cert,
        mllp_tls_keyfile=pki.server.key,
        mllp_tls_client_cafile=pki.ca.path,
    )
    config = mllp_config(tls)[0]
    assert config is not None and config.tls is not None and config.tls.verify_mode == ssl.CERT_REQUIRED
    assert mllp_config(LabSettings(mllp_tls_certfile=pki.server.cert))[0] is None  # no client CA: not started


def test_compose_serves_mllp_over_tls_with_client_certificates() -> None:
    import yaml

    env = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["lab-normalisation"]["environment"]
    assert env.get("MLLP_PLAINTEXT", "false") == "false"
    assert {"MLLP_TLS_CERTFILE", "MLLP_TLS_KEYFILE", "MLLP_TLS_CLIENT_CAFILE"} <= set(env)


async def test_the_compose_secrets_let_their_example_sender_in_and_no_one_else(tmp_path: Path) -> None:
    """deploy/make_secrets.py writes what docker-compose.yml mounts for MLLP: with those files (the settings compose
    sets, paths aside) the example client certificate sends for LAB-EXAMPLE and nothing else."""
    from deploy import make_secrets

    d = tmp_path / "secrets"
    assert make_secrets.main([str(d)]) == 0
    settings = LabSettings(
        mllp_host="0.0.0.0",
        mllp_tls_certfile=d / "mllp.crt",
        mllp_tls_keyfile=d / "mllp.key",
        mllp_tls_client_cafile=d / "mllp-client-ca.crt",
        mllp_allowed_senders_file=d / "mllp-allowed-senders.yaml",
    )
    config = mllp_config(settings)[0]
    assert config is not None and config.tls is not None
    client = ssl.create_default_context(cafile=str(d / "mllp-client-ca.crt"))
    client.load_cert_chain(str(d / "mllp-client-example.crt"), str(d / "mllp-client-example.key"))
    example = oru("EX-1", app="LAB-EXAMPLE").replace(b"CHU-LYON-BIO^1.2.250.1.71.4.2.2^ISO", b"LAB-EXAMPLE")
    async with listening(config.tls, senders=SenderPolicy(allowed_senders(settings))) as srv:
        [ok] = await exchange(srv.port, client, example)
        [other] = await exchange(srv.port, client, oru("EX-2"))
    assert msa(ok)[1] == "AA" and msa(other)[1] == "AR"


# ---- item 4: framing -------------------------------------------------------------------------------------------
async def test_blanks_between_frames_and_fs_cr_lf_lose_no_message() -> None:
    async with listening(None) as srv:
        stream = (
            b"\r\n" + VT + oru("F-1") + FS + b"\r\n" + b"\r\n \t" + VT + oru("F-2") + FS + b"\r" + VT + oru("F-3") + FS
        )
        acks = await exchange(srv.port, None, raw=stream)
    assert [msa(a)[2] for a in acks] == ["F-1", "F-2", "F-3"] and len(srv.handled) == 3


async def test_garbage_outside_a_frame_closes_the_connection_and_is_counted() -> None:
    async with listening(None) as srv:
        with pytest.raises(asyncio.IncompleteReadError):
            await exchange(srv.port, None, raw=b"hello" + VT + oru("G-1") + FS + b"\r")
        assert srv.metrics.framing.labels("lab-test")._value.get() == 1


# ---- item 2: a busy port -----------------------------------------------------------------------------------------
async def test_a_busy_port_is_reported_and_retried_until_free(caplog: pytest.LogCaptureFixture) -> None:
    blocker = socket.create_server(("127.0.0.1", 0))
    port = blocker.getsockname()[1]
    async with listening(None, port=port, retry=0.05) as srv:
        await _until(lambda: srv.metrics.bind_failures.labels("lab-test", "address_in_use")._value.get() >= 2)
        assert srv.listener.problem == f"port {port} address in use, retrying"
        assert any("not bound (address_in_use)" in r.getMessage() for r in caplog.records)
        blocker.close()
        await _until(lambda: srv.listener.problem is None)
        [ack] = await exchange(port, None, oru("BUSY-1"))
    assert msa(ack)[1] == "AA"


@pytest.fixture
def blocked_port() -> Iterator[tuple[socket.socket, int]]:
    blocker = socket.create_server(("127.0.0.1", 0))
    try:
        yield blocker, blocker.getsockname()[1]
    finally:
        blocker.close()


def test_the_service_stays_up_with_its_mllp_port_busy(
    redis_url: str, blocked_port: tuple[socket.socket, int], tmp_path: Path
) -> None:
    """Before: the MLLP port in use made `python -m services.lab_normalisation` exit with code 3, with Kafka and
    HTTP intake. Now it answers /healthz, says why it is not ready, and binds once the port is free. On a broker
    of its own (it consumes every intake topic from the start)."""
    blocker, port = blocked_port
    http = infra.free_port()
    with infra.local_tansu() as bootstrap:
        env = {
            **os.environ,
            **infra.EMBEDDED_KAFKA_SETTINGS,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "REDIS_URL": redis_url,
            "SERVICE_NAME": f"lab-busy-{port}",
            "HTTP_PORT": str(http),
            "MLLP_PORT": str(port),
            "MLLP_PLAINTEXT": "true",
            "MLLP_BIND_RETRY_INITIAL_S": "0.2",
            "MLLP_BIND_RETRY_MAX_S": "0.5",
        }
        log = (tmp_path / "lab.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.lab_normalisation"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{http}"
            busy = f"mllp: port {port} address in use, retrying"

            def only_mllp_failing(doc: dict[str, Any]) -> bool:
                # the other checks (state, consumer joining its group) come true once the start is done
                return busy in doc["checks"] and all(v for k, v in doc["checks"].items() if not k.startswith("mllp"))

            body = _wait_json(f"{url}/readyz", only_mllp_failing, proc)
            assert body["ready"] is False and body["checks"][busy] is False
            assert list(body["reasons"]) == [busy]  # HAZ-25-HEAL-01: /readyz says which check fails
            assert httpx.get(f"{url}/healthz").status_code == 200 and proc.poll() is None
            blocker.close()
            _wait_json(f"{url}/readyz", lambda doc: doc["ready"] and doc["checks"].get("mllp") is True, proc)
        finally:
            proc.terminate()
            proc.wait(30)
            log.close()
    assert "not bound (address_in_use)" in (tmp_path / "lab.log").read_text()


def _wait_json(url: str, ok: Any, proc: subprocess.Popen[bytes], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the service exited with code {proc.returncode}"
        with contextlib.suppress(httpx.HTTPError, ValueError):
            last = httpx.get(url, timeout=2).json()
            if ok(last):
                return last  # type: ignore[return-value]
        time.sleep(0.2)
    raise AssertionError(f"{url}: {last}")
