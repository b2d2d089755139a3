"""MLLP listener (HL7 v2 over TCP, the transport hospital interface engines use), secured as hospital interfaces
are (issue 24): TLS with client certificates (mutual TLS), each certificate bound to the sending applications and
facilities (MSH-3/MSH-4) it may send for; plaintext only on explicit opt-in and only on a loopback address.

- A connection whose first byte is not a TLS handshake is refused: plaintext MLLP on the TLS port gets one AR
  (in plaintext: it tells the sender to use TLS; nothing of its message is read but the MSH) and is closed; a
  failed handshake (no certificate, one the CA did not sign) is closed. Each refusal is an audit log line
  without PHI (reason code, peer address, certificate identity, MSH-3/4) and `osteocds_mllp_refused_total`.
- Framing: VT <message> FS, then CR; CR, LF or blanks between frames (and FS CR LF) are tolerated, so the next
  message is never lost. Anything else outside a frame closes the connection (logged and counted).
- The port is bound with retries: a busy port (or another bind error) is reported (readiness false with the
  reason, a log line, `osteocds_mllp_bind_failures_total`, `osteocds_mllp_listening` 0) and retried with
  backoff, while Kafka and HTTP intake keep running (it used to make the whole service exit, code 3).

Started and stopped with the HTTP app (its lifespan), so `python -m services.lab_normalisation` and
`./osteocds up` run it. What each message gets is decided by the handler (`app.py`: the sender binding, the
same checks and path as POST /hl7v2)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import ipaddress
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel

from services.lab_normalisation.common import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

VT, FS, CR = b"\x0b", b"\x1c", b"\r"
#: what may stand between two frames (real senders add CR LF before a frame or after FS CR)
_BETWEEN = b" \t\r\n"
_TLS_HANDSHAKE = 0x16  # the first byte of a TLS record carrying a ClientHello
LIMIT = MAX_MESSAGE_BYTES + 1024
#: what is read of a plaintext sender on the TLS port (unauthenticated) to answer its AR from the MSH: never more
#: (review of issue 24: its whole frame was buffered, up to LIMIT per connection, for the handshake time-out)
PLAINTEXT_REFUSAL_LIMIT = 64 * 1024


class MllpSender(BaseModel):
    """One sending application and facility a certificate may send for (MLLP_ALLOWED_SENDERS). Each is compared
    with the message's MSH-3 / MSH-4 (HD): a value without '^' with the namespace ID (first component), a value
    with '^' with every component given (e.g. "LAB^1.2.250.1.71.4.2.1^ISO")."""

    application: str
    facility: str

    def matches(self, application: Sequence[str], facility: Sequence[str]) -> bool:
        return _hd_matches(self.application, application) and _hd_matches(self.facility, facility)


def _hd_matches(wanted: str, hd: Sequence[str]) -> bool:
    parts = [p.strip() for p in wanted.split("^")]
    got = [*hd, *[""] * len(parts)]
    return bool(parts[0]) and all(w == g for w, g in zip(parts, got, strict=False))


@dataclass(frozen=True)
class Peer:
    """Who is on the other end of a connection: its address and, over TLS, its verified certificate."""

    address: str
    tls: bool
    cn: str | None = None
    fingerprint: str | None = None  # SHA-256 of the certificate (DER), lowercase hex

    @property
    def identities(self) -> list[str]:
        """The keys MLLP_ALLOWED_SENDERS may use for this peer, most specific first."""
        if not self.tls:
            return ["plaintext"]
        return [k for k in (self.fingerprint and f"sha256:{self.fingerprint}", self.cn and f"cn:{self.cn}") if k]

    @property
    def label(self) -> str:
        """For the audit line: the certificate's subject CN (or fingerprint), never anything of a patient."""
        return (self.identities or ["unknown"])[-1]


def _key(identity: str) -> str:
    """A fingerprint is compared in lowercase hex without colons; a CN as written."""
    identity = identity.strip()
    if identity.lower().startswith("sha256:"):
        return "sha256:" + identity[7:].replace(":", "").lower()
    return identity


class SenderPolicy:
    """MLLP_ALLOWED_SENDERS: certificate identity ("cn:<subject CN>" or "sha256:<fingerprint>") -> the MSH-3/4
    pairs it may send for. Over TLS a certificate with no entry sends nothing. Plaintext (loopback, opt-in)
    accepts every sender unless the mapping has a "plaintext" entry."""

    def __init__(self, allowed: Mapping[str, Sequence[MllpSender]]) -> None:
        self.allowed = {_key(k): list(v) for k, v in allowed.items()}

    def refusal(self, peer: Peer, application: Sequence[str], facility: Sequence[str]) -> tuple[str, str] | None:
        """(reason code, reason) when this peer may not send this message's MSH-3/4; None when it may."""
        keys = [k for k in peer.identities if k in self.allowed]
        if not peer.tls and not keys:
            return None
        if not keys:
            return "certificate_not_bound", "this client certificate is bound to no sending application (MSH-3/4)"
        if any(s.matches(application, facility) for k in keys for s in self.allowed[k]):
            return None
        return (
            "sender_not_allowed",
            "MSH-3/MSH-4 (sending application/facility) is not one this client certificate may send for",
        )


def tls_context(certfile: Path, keyfile: Path | None, cafile: Path) -> ssl.SSLContext:
    """Server side of mutual TLS: our certificate, and client certificates required and verified against
    `cafile` (the CA that issues the senders' certificates). TLS 1.2 at least."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(cafile))
    ctx.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class FramingError(ValueError):
    """Bytes outside an MLLP frame that are not blanks between frames."""


async def read_frame(reader: asyncio.StreamReader, restarted: Callable[[], None] | None = None) -> bytes | None:
    """The next framed message (without VT and FS), or None when the peer closed between frames. CR, LF and
    blanks before VT are skipped: a frame ending FS CR LF, or a CR LF before a frame, loses nothing. A start block
    inside a frame (a sender that lost an end block) starts the frame again: what came before it is dropped, never
    acknowledged (so sent again), instead of being glued to the next message under its MSH (`restarted` is told)."""
    try:
        before = await reader.readuntil(VT)
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip(_BETWEEN):
            raise FramingError("bytes outside a frame before the connection closed") from exc
        return None
    if before[:-1].strip(_BETWEEN):
        raise FramingError("bytes before the frame start (VT) that are not blanks")
    try:
        body = await reader.readuntil(FS)
    except asyncio.IncompleteReadError as exc:
        raise FramingError("the connection closed inside a frame") from exc
    if VT in body:
        if restarted is not None:
            restarted()
        body = body[body.rindex(VT) + 1 :]
    return body[:-1]


def frame(message: bytes) -> bytes:
    return VT + message + FS + CR


Handler = Callable[[bytes, Peer], Awaitable[bytes | None]]
#: (raw message, reason) -> the AR to send a plaintext sender on the TLS port
Refuser = Callable[[bytes, str], bytes]


@dataclass(frozen=True)
class ListenerConfig:
    host: str
    port: int
    tls: ssl.SSLContext | None
    retry_initial_s: float = 1.0
    retry_max_s: float = 30.0
    handshake_timeout_s: float = 10.0


class MllpMetrics:
    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.refused = Counter(
            "osteocds_mllp_refused_total",
            "MLLP connections or messages refused (no or untrusted client certificate, plaintext on the TLS port, "
            "sender not bound to the certificate)",
            ["service", "reason"],
            registry=registry,
        )
        self.bind_failures = Counter(
            "osteocds_mllp_bind_failures_total",
            "Failed attempts to bind the MLLP port (retried with backoff)",
            ["service", "reason"],
            registry=registry,
        )
        self.listening = Gauge(
            "osteocds_mllp_listening", "1 while the MLLP listener is bound", ["service"], registry=registry
        )
        self.framing = Counter(
            "osteocds_mllp_framing_errors_total",
            "MLLP connections closed on bytes outside a frame or a frame too large, and frames started again by a "
            "start block inside a frame",
            ["service"],
            registry=registry,
        )
        for reason in ("no_client_certificate", "untrusted_certificate", "plaintext_on_tls_port", "tls_handshake"):
            self.refused.labels(service, reason)
        self.listening.labels(service).set(0)
        self.framing.labels(service)

    def refuse(self, reason: str) -> None:
        self.refused.labels(self.service, reason).inc()


def audit_refusal(metrics: MllpMetrics, reason: str, peer: str, identity: str, detail: str = "") -> None:
    """One audit line per refusal: what was refused and why, who (address, certificate), never patient data."""
    metrics.refuse(reason)
    log.warning(
        "MLLP audit: refused reason=%s peer=%s identity=%s%s",
        reason,
        peer,
        identity,
        f" {detail}" if detail else "",
        extra={"reason_code": reason, "outcome": "refused"},
    )


class MllpListener:
    """Binds (with retries), accepts, does the TLS handshake itself (so a failure is audited), reads frames and
    answers each with what `handle` returns (None: no acknowledgement was asked for)."""

    def __init__(
        self, config: ListenerConfig, handle: Handler, refuse_plaintext: Refuser, metrics: MllpMetrics
    ) -> None:
        self.config = config
        self.handle = handle
        self.refuse_plaintext = refuse_plaintext
        self.metrics = metrics
        #: None while listening; else why not (readiness)
        self.problem: str | None = "not started"
        self.port: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._sock: socket.socket | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mllp-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for t in list(self._connections):
            t.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._sock is not None:
            self._sock.close()
        self.metrics.listening.labels(self.metrics.service).set(0)

    async def _run(self) -> None:
        c = self.config
        delay = c.retry_initial_s
        while True:
            try:
                self._sock = _bind(c.host, c.port)
                break
            except OSError as exc:
                code = errno.errorcode.get(exc.errno or 0, "error")
                code = "address_in_use" if exc.errno == errno.EADDRINUSE else code
                self.problem = f"port {c.port} {code.replace('_', ' ').lower()}, retrying"
                self.metrics.bind_failures.labels(self.metrics.service, code.lower()).inc()
                log.error(
                    "MLLP port %s not bound (%s); retrying in %.1f s, Kafka and HTTP intake go on",
                    c.port,
                    code,
                    delay,
                    extra={"reason_code": code.lower()},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, c.retry_max_s)
        self.port = self._sock.getsockname()[1]
        self.problem = None
        self.metrics.listening.labels(self.metrics.service).set(1)
        mode = "TLS, client certificates" if c.tls else "plaintext"
        log.info("MLLP listener started on port %s (%s)", self.port, mode)
        loop = asyncio.get_running_loop()
        while True:
            conn, addr = await loop.sock_accept(self._sock)
            task = asyncio.create_task(self._connection(conn, str(addr[0])))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def _connection(self, conn: socket.socket, address: str) -> None:
        conn.setblocking(False)
        writer: asyncio.StreamWriter | None = None
        try:
            tls = self.config.tls
            if tls is not None:
                first = await asyncio.wait_for(_peek(conn), self.config.handshake_timeout_s)
                if not first:
                    return
                if first[0] != _TLS_HANDSHAKE:
                    await self._plaintext_on_tls_port(conn, address, first)
                    return
            try:
                reader, writer = await _streams(conn, tls, self.config.handshake_timeout_s)
            except (ssl.SSLError, OSError, TimeoutError) as exc:
                audit_refusal(self.metrics, _handshake_reason(exc), address, "unknown", f"({type(exc).__name__})")
                return
            await self._messages(reader, writer, _peer(writer, address))
        except (ConnectionError, TimeoutError):
            return
        except asyncio.CancelledError:
            raise
        except Exception:  # e.g. the broker unreachable: no ACK, so the sender keeps the message and resends
            log.exception("MLLP: message not handled; connection closed without an ACK")
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            else:
                conn.close()

    async def _messages(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer) -> None:
        while True:
            try:
                block = await read_frame(reader, self._restarted)
            except (FramingError, asyncio.LimitOverrunError, ValueError) as exc:
                self.metrics.framing.labels(self.metrics.service).inc()
                why = exc if isinstance(exc, FramingError) else "frame too large"
                log.warning("MLLP: %s; closing the connection", why)
                return
            if block is None:
                return
            ack = await self.handle(block, peer)
            if ack is not None:
                writer.write(frame(ack))
                await writer.drain()

    def _restarted(self) -> None:
        self.metrics.framing.labels(self.metrics.service).inc()
        log.warning("MLLP: a start block (VT) inside a frame; the part before it is dropped, not acknowledged")

    async def _plaintext_on_tls_port(self, conn: socket.socket, address: str, first: bytes) -> None:
        """Plaintext MLLP on the TLS port: one AR saying so (its first frame's MSH only is read), audited."""
        audit_refusal(self.metrics, "plaintext_on_tls_port", address, "none")
        if first not in (VT, *(bytes([b]) for b in _BETWEEN)):
            return  # not MLLP either: nothing to answer
        reader, writer = await _streams(conn, None, self.config.handshake_timeout_s, PLAINTEXT_REFUSAL_LIMIT)
        try:
            with contextlib.suppress(FramingError, asyncio.LimitOverrunError, ValueError, TimeoutError):
                block = await asyncio.wait_for(read_frame(reader), self.config.handshake_timeout_s)
                if block is not None:
                    refusal = self.refuse_plaintext(block, "this MLLP port requires TLS with a client certificate")
                    writer.write(frame(refusal))
                    await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=128, reuse_port=False)
    sock.setblocking(False)
    return sock


async def _peek(conn: socket.socket) -> bytes:
    """The connection's first byte, left in the socket (b"" when the peer closed)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return conn.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(conn.fileno(), _resolve, ready)
            try:
                await ready
            finally:
                loop.remove_reader(conn.fileno())


def _resolve(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


async def _streams(
    conn: socket.socket, tls: ssl.SSLContext | None, handshake_s: float, limit: int = LIMIT
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit)
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _ = await loop.connect_accepted_socket(
        lambda: protocol, conn, ssl=tls, ssl_handshake_timeout=handshake_s if tls is not None else None
    )
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


def _handshake_reason(exc: BaseException) -> str:
    why = str(getattr(exc, "reason", "") or "").upper()
    if "NO_CERTIFICATE" in why or "DID_NOT_RETURN_A_CERTIFICATE" in why or "CERTIFICATE_REQUIRED" in why:
        return "no_client_certificate"
    if "CERTIFICATE" in why or "UNKNOWN_CA" in why or "BAD_CERTIFICATE" in why:
        return "untrusted_certificate"
    return "tls_handshake"


def _peer(writer: asyncio.StreamWriter, address: str) -> Peer:
    obj = writer.get_extra_info("ssl_object")
    if obj is None:
        return Peer(address=address, tls=False)
    der = obj.getpeercert(binary_form=True)
    cert = obj.getpeercert() or {}
    cn = next((v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"), None)
    return Peer(address=address, tls=True, cn=cn, fingerprint=hashlib.sha256(der).hexdigest() if der else None)


def serve_mllp(app: FastAPI, listener: MllpListener) -> None:
    """Run the listener for the app's lifetime (after the service has started)."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with inner(a):
            listener.start()
            try:
                yield
            finally:
                await listener.close()

    app.router.lifespan_context = lifespan
