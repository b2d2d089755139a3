"""The test stack's ports and its start-up report (CI of stop 40: lab-normalisation's MLLP port, taken from the
kernel's ephemeral range, was never bound and the stack timed out saying only "not ready after 60s")."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import infra
from devstack.stack import RunningStack, wait_until_ready


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    low = infra._ephemeral_low()
    ports = [infra.free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(infra.LOWEST_PORT <= port < low for port in ports)
    for port in ports[:20]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free: raises if not


def test_xdist_workers_draw_from_disjoint_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    slices = []
    for worker in ("gw0", "gw1", "gw2", "gw3"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        slices.append(set(infra._slice()))
    for i, one in enumerate(slices):
        assert one
        for other in slices[i + 1 :]:
            assert not one & other


def test_a_port_in_use_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw7")
    held = []
    try:
        for port in list(infra._slice())[:50]:  # hold most of the start of the slice
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            s.listen()
            held.append(s)
        taken = {s.getsockname()[1] for s in held}
        assert taken
        handed = {infra.free_port() for _ in range(100)}
        assert not handed & taken
    finally:
        for s in held:
            s.close()


class _NotReady(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"ready": false, "reasons": {"mllp: address in use": "failing"}}'
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def not_ready_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", infra.free_port()), _NotReady)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_timeout_says_which_check_failed_and_ends_with_the_service_log(not_ready_server: str, tmp_path: Path) -> None:
    (tmp_path / "lab-normalisation.log").write_text("first line\nMLLP bind failed, retrying\n")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        stack = RunningStack(
            urls={"lab-normalisation": not_ready_server}, procs={"lab-normalisation": proc}, log_dir=tmp_path
        )
        with pytest.raises(TimeoutError) as raised:
            wait_until_ready(stack, 0.5)
    finally:
        proc.kill()
        proc.wait()
    message = str(raised.value)
    assert message.startswith("not ready after 0.5s: lab-normalisation")
    assert "/readyz 503" in message and "mllp: address in use" in message
    assert "log: MLLP bind failed, retrying" in message
