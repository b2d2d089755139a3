"""The MLLP listener's configuration and its handling of a message (issue 24): TLS with client certificates bound to
MSH-3/4 (the allowed senders, from settings and a file), plaintext on loopback only when MLLP_PLAINTEXT says so;
a sender refused is answered AR, audited and counted; else the message takes POST /hl7v2's path (app.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from pydantic import TypeAdapter

from services.lab_normalisation.hl7_acks import Hl7Answer
from services.lab_normalisation.hl7_segments import header_of
from services.lab_normalisation.mllp import (
    ListenerConfig,
    MllpMetrics,
    MllpSender,
    Peer,
    SenderPolicy,
    audit_refusal,
    is_loopback,
    tls_context,
)
from services.lab_normalisation.settings import LabSettings


def mllp_handlers(
    senders: SenderPolicy,
    metrics: MllpMetrics,
    handle_hl7: Callable[..., Any],
    answer: Callable[..., Hl7Answer],
) -> tuple[Callable[[bytes, Peer], Any], Callable[[bytes, str], bytes]]:
    """What the listener does with a message: the sender binding first (MSH-3/4 against the certificate; a
    refusal is an AR, an audit line and a metric), then POST /hl7v2's path; and the AR of a plaintext sender on
    the TLS port."""

    async def handle(raw: bytes, peer: Peer) -> bytes | None:
        header = header_of(raw)
        refused = senders.refusal(peer, header.application_hd, header.facility_hd)
        if refused is not None:
            reason, why = refused
            detail = f"msh3={_shown(header.application_hd)} msh4={_shown(header.facility_hd)}"
            audit_refusal(metrics, reason, peer.address, peer.label, f"{detail} control_id={header.control_id[:40]!r}")
            return answer(header, "AR", [why], 403).encoded()
        source = f"mllp:{peer.label}" if peer.tls else f"mllp:plaintext@{peer.address}"
        got: Hl7Answer = await handle_hl7(raw, source, "mllp")
        return got.encoded() if got.send else None

    def refuse_plaintext(raw: bytes, why: str) -> bytes:
        return answer(header_of(raw), "AR", [why], 403).encoded()

    return handle, refuse_plaintext


def allowed_senders(settings: LabSettings) -> dict[str, list[MllpSender]]:
    """MLLP_ALLOWED_SENDERS and MLLP_ALLOWED_SENDERS_FILE (YAML or JSON, the same shape) together."""
    out = {k: list(v) for k, v in settings.mllp_allowed_senders.items()}
    if settings.mllp_allowed_senders_file is not None:
        doc = yaml.safe_load(settings.mllp_allowed_senders_file.read_text(encoding="utf-8")) or {}
        for identity, senders in SENDERS_FILE.validate_python(doc).items():
            out.setdefault(identity, []).extend(senders)
    return out


SENDERS_FILE = TypeAdapter(dict[str, list[MllpSender]])


def mllp_config(settings: LabSettings) -> tuple[ListenerConfig | None, str]:
    """TLS when its files are set; plaintext only when MLLP_PLAINTEXT asks for it on a loopback host."""
    s = settings
    retry = {
        "retry_initial_s": s.mllp_bind_retry_initial_s,
        "retry_max_s": s.mllp_bind_retry_max_s,
        "handshake_timeout_s": s.mllp_handshake_timeout_s,
    }
    if s.mllp_tls_certfile or s.mllp_tls_client_cafile or s.mllp_tls_keyfile:
        if not (s.mllp_tls_certfile and s.mllp_tls_client_cafile):
            return None, "TLS needs MLLP_TLS_CERTFILE (and MLLP_TLS_KEYFILE) and MLLP_TLS_CLIENT_CAFILE"
        try:
            ctx = tls_context(s.mllp_tls_certfile, s.mllp_tls_keyfile, s.mllp_tls_client_cafile)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            return None, f"TLS files not usable ({type(exc).__name__})"
        return ListenerConfig(s.mllp_host, s.mllp_port, ctx, **retry), ""
    if s.mllp_plaintext and is_loopback(s.mllp_host):
        return ListenerConfig(s.mllp_host, s.mllp_port, None, **retry), ""
    if s.mllp_plaintext:
        return None, f"plaintext MLLP only on a loopback MLLP_HOST, not {s.mllp_host[:60]}"
    return None, "no TLS configured (MLLP_TLS_*), and plaintext needs MLLP_PLAINTEXT=true on a loopback MLLP_HOST"


def _shown(hd: list[str]) -> str:
    """MSH-3/4 for the audit line: printable, bounded (names of systems, never of patients)."""
    return repr("^".join(hd)[:64])
