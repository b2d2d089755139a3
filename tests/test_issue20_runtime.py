"""Issue 20: every service module has a --help that starts nothing; a clean start's rebuild is not a warning;
the test suite binds no port of `./osteocds up` (it runs beside it)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from devstack import infra, issuer
from devstack.stack import MLLP_PORT, SERVICE_MODULES, RunningStack, service_env, wait_until_ready
from shared.runtime import healing
from shared.runtime.rebuild import RebuildReport

ROOT = Path(__file__).resolve().parent.parent

#: the ports `./osteocds up` binds by default: MLLP, the local issuer and the services (8100-8110), the
#: embedded broker, Redis
UP_PORTS = frozenset(
    {MLLP_PORT, issuer.DEFAULT_PORT, 9092, 6379, *range(8100, 8111), *(p for _, p in SERVICE_MODULES.values())}
)


# --- 1. --help -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [*sorted(m for m, _ in SERVICE_MODULES.values()), "shared.runtime.lag"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_service_module_prints_its_usage_and_starts_nothing(module: str, flag: str) -> None:
    """Before: `python -m services.scoring --help` started the service (it tried its broker until killed)."""
    with _held(infra.free_port()) as port:  # the service's HTTP port is taken: serving would fail, not hang
        env = {
            **os.environ,
            "HTTP_PORT": str(port),
            "MLLP_PORT": str(port),
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{infra.free_port()}",
            "REDIS_URL": f"redis://127.0.0.1:{infra.free_port()}/0",
        }
        try:
            done = subprocess.run(
                [sys.executable, "-m", module, flag], cwd=ROOT, env=env, capture_output=True, text=True, timeout=20
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{module} {flag} did not return: it started the service") from exc
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"usage: python -m {module}"), done.stdout
    expected = ("HTTP_PORT",) if module == "shared.runtime.lag" else ("run", "rebuild", "HTTP_PORT")
    for command in expected:
        assert command in done.stdout
    assert done.stderr == ""  # no log line: nothing was configured or started


def test_an_unknown_command_is_refused_not_served() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.scoring", "rebiuld"], cwd=ROOT, capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 2 and "invalid choice: 'rebiuld'" in done.stderr


# --- 2. the rebuild's log level ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "level"),
    [
        (RebuildReport(patients=0, events=0, skipped=0, duplicates=0), logging.INFO),  # a clean start
        (RebuildReport(patients=3, events=41, skipped=0, duplicates=0, published=2), logging.WARNING),  # a loss
        (RebuildReport(patients=2, events=7, skipped=0, duplicates=0), logging.WARNING),
    ],
)
async def test_state_rebuilt_is_a_warning_only_when_something_was_rebuilt(
    report: RebuildReport, level: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: `state rebuilt from Kafka` with count 0 on every clean start was a WARNING."""

    async def fake_rebuild(service: Any, expected: bytes | None) -> RebuildReport:
        return report

    observed: list[float] = []
    histogram = SimpleNamespace(labels=lambda *_: SimpleNamespace(observe=observed.append))
    service: Any = SimpleNamespace(name="scoring", metrics=SimpleNamespace(rebuild_seconds=histogram))
    monkeypatch.setattr(healing, "rebuild", fake_rebuild)
    with caplog.at_level(logging.DEBUG, logger=healing.__name__):
        assert await healing._rebuild(service, None) is report
    [record] = [r for r in caplog.records if r.getMessage().startswith("state rebuilt from Kafka")]
    assert record.levelno == level
    assert record.__dict__["count"] == report.events
    assert len(observed) == 1


# --- 3. no fixed port in the tests -----------------------------------------------------------------------------


@contextlib.contextmanager
def _held(port: int) -> Iterator[int]:
    """Listen on 127.0.0.1:`port`; when something already does (e.g. a running `./osteocds up`), it stays taken."""
    s = socket.socket()
    try:
        with contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port))
            s.listen()
        yield port
    finally:
        s.close()


def test_the_session_gives_spawned_services_a_free_mllp_port(no_fixed_mllp_port: int) -> None:
    """What a test starts from this environment (devstack.stack.service_env passes it on) gets no port of `up`."""
    assert os.environ["MLLP_PORT"] == str(no_fixed_mllp_port)
    assert no_fixed_mllp_port not in UP_PORTS
    assert service_env("k:1", "redis://r:1/0", {})["MLLP_PORT"] == str(no_fixed_mllp_port)


@pytest.mark.e2e
def test_lab_normalisation_started_as_the_fixtures_start_it_runs_while_up_holds_its_ports(
    kafka_bootstrap: str,
    redis_url: str,
    kafka_settings: dict[str, str],
    local_issuer: issuer.LocalIssuer,
    tmp_path: Path,
) -> None:
    """The chaos harness and the restarts start lab-normalisation from `service_env(...)` plus HTTP_PORT only.
    Before: it bound MLLP 2575, so with `./osteocds up` running it exited during start-up."""
    with _held(MLLP_PORT), _held(LAB_PORT := SERVICE_MODULES["lab-normalisation"][1]):
        assert LAB_PORT in UP_PORTS
        env = service_env(kafka_bootstrap, redis_url, {**kafka_settings, **local_issuer.env()})
        port = infra.free_port()
        log = (tmp_path / "lab.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.lab_normalisation"],
            cwd=ROOT,
            env={**env, "HTTP_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        lab = RunningStack(urls={"lab-normalisation": f"http://127.0.0.1:{port}"}, procs={"lab-normalisation": proc})
        try:
            wait_until_ready(lab, 60)
            assert int(env["MLLP_PORT"]) not in UP_PORTS
        except Exception as exc:
            raise AssertionError((tmp_path / "lab.log").read_text()[-3000:]) from exc
        finally:
            lab.stop()
            log.close()


@pytest.mark.e2e
def test_the_test_stack_binds_no_port_of_up_and_keeps_its_mllp_port_across_restarts(stack: RunningStack) -> None:
    """Before: the stack's env had no MLLP_PORT, so a service restarted from it (conftest.restart) took 2575."""
    assert stack.mllp_port not in UP_PORTS
    assert stack.env["MLLP_PORT"] == str(stack.mllp_port)
    assert {int(url.rsplit(":", 1)[1]) for url in stack.urls.values()}.isdisjoint(UP_PORTS)
