"""Review of issue 24's MLLP listener (H-review24), with real TLS clients against the real listener and the service's
own sender check (the fixtures of tests/test_issue24_mllp.py): each message of a connection is checked against the
certificate's binding, a batch (FHS/BHS) is never let through under a bound sender, and a start block inside a frame
(a sender that lost its end block) starts a new frame instead of gluing two messages under the first one's MSH."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

import pytest

from services.lab_normalisation.mllp import FS, VT, MllpSender, SenderPolicy, is_loopback, tls_context
from tests.test_issue24_mllp import Pki, _until, client_context, exchange, listening, msa, oru, pki

__all__ = ["pki"]


async def test_every_message_of_one_connection_is_checked_against_the_certificate(pki: Pki) -> None:
    async with listening(tls_context(pki.server.cert, pki.server.key, pki.ca.path)) as srv:
        acks = await exchange(
            srv.port,
            client_context(pki, pki.lab),
            oru("ONE-1"),
            oru("ONE-2", app="RIS^1.2.250.1.71.4.2.9^ISO"),  # another sender on the same connection
            oru("ONE-3"),
        )
        assert [msa(a)[1:3] for a in acks] == [["AA", "ONE-1"], ["AR", "ONE-2"], ["AA", "ONE-3"]]
        assert srv.handled == [oru("ONE-1"), oru("ONE-3")]


async def test_a_batch_or_a_look_alike_sender_is_refused_under_a_bound_certificate(pki: Pki) -> None:
    batch = b"FHS|^~\\&|GLIMS|CHU-LYON-BIO\rBHS|^~\\&|GLIMS|CHU-LYON-BIO\r" + oru("B-1") + b"BTS|1\rFTS|1\r"
    look_alikes = [
        oru("L-1", app="glims^1.2.250.1.71.4.2.1^ISO"),  # another case: another application
        oru("L-2").replace(b"CHU-LYON-BIO^", b"CHU-LYON-BIO2^"),
        oru("L-3").replace(b"|GLIMS^", b"|\\T\\GLIMS^"),  # an escape sequence before the name
    ]
    async with listening(tls_context(pki.server.cert, pki.server.key, pki.ca.path)) as srv:
        acks = await exchange(srv.port, client_context(pki, pki.lab), batch, *look_alikes)
        assert [msa(a)[1] for a in acks] == ["AR"] * 4 and srv.handled == []


async def test_a_start_block_inside_a_frame_starts_a_new_frame() -> None:
    """A sender that lost a frame's end block (VT <part> VT <message> FS CR): the part is dropped (never
    acknowledged, so the sender sends it again), the message is handled under its own MSH."""
    async with listening(None) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        try:
            writer.write(VT + oru("N-1")[:60] + VT + oru("N-2") + FS + b"\r")
            await writer.drain()
            block = await asyncio.wait_for(reader.readuntil(FS), 10)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        assert msa(block[block.index(VT) + 1 : -1])[1:3] == ["AA", "N-2"]
        assert srv.handled == [oru("N-2")]
        assert srv.metrics.framing.labels("lab-test")._value.get() == 1  # counted


def test_only_loopback_names_and_addresses_are_loopback() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "", "::ffff:127.0.0.1", "127.1", "localhost.", "lab.chu", "10.0.0.1"):
        assert not is_loopback(host), host


def test_a_binding_without_components_compares_the_namespace_id_only() -> None:
    """Documented: "GLIMS" binds MSH-3 "GLIMS^<any>^<any>"; "GLIMS^<oid>^ISO" binds that HD exactly."""
    loose = MllpSender(application="GLIMS", facility="CHU-LYON-BIO")
    strict = MllpSender(application="GLIMS^1.2.250.1.71.4.2.1^ISO", facility="CHU-LYON-BIO")
    assert loose.matches(["GLIMS", "9.9.9", "ISO"], ["CHU-LYON-BIO"])
    assert not strict.matches(["GLIMS", "9.9.9", "ISO"], ["CHU-LYON-BIO"])
    assert not loose.matches(["GLIMS2"], ["CHU-LYON-BIO"]) and not loose.matches([], [])
    assert SenderPolicy({"cn:lab.chu": [loose]}).allowed["cn:lab.chu"] == [loose]


@pytest.mark.serial  # timed (closed at once, not after the handshake time-out): alone in `./osteocds test`
async def test_plaintext_on_the_tls_port_is_never_buffered_beyond_its_header(pki: Pki) -> None:
    """A sender without TLS (anyone who reaches the port) gets one AR read from its MSH; a frame with no end block is
    not buffered up to the message limit (1 MB per connection, for the handshake time-out, with no certificate): the
    connection is closed once more than a header's worth has come without one."""
    async with listening(tls_context(pki.server.cert, pki.server.key, pki.ca.path)) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        try:
            writer.write(VT + oru("BIG-1") + b"OBX|2|ST|X||" + b"x" * 200_000)
            await writer.drain()
            started = asyncio.get_running_loop().time()
            rest = await asyncio.wait_for(reader.read(), 10)
            waited = asyncio.get_running_loop().time() - started
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        assert rest == b"" and waited < 2.0  # closed at once, not after the 5-s handshake time-out
        assert srv.refused("plaintext_on_tls_port") == 1 and srv.handled == []


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_a_client_limited_to_tls_1_1_is_refused(pki: Pki) -> None:
    """TLS 1.2 at least: a client that offers only TLS 1.1 (a downgrade) gets no session, and nothing is handled."""
    client = client_context(pki, pki.lab)
    client.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    client.maximum_version = ssl.TLSVersion.TLSv1_1
    with contextlib.suppress(ssl.SSLError):
        client.set_ciphers("DEFAULT:@SECLEVEL=0")
    async with listening(tls_context(pki.server.cert, pki.server.key, pki.ca.path)) as srv:
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            await exchange(srv.port, client, oru("OLD-1"))
        await _until(lambda: srv.refused("tls_handshake") == 1)  # refused by the listener, audited
        assert srv.handled == []
