"""Issue 22: `python -m services.scoring rebuild` run by hand against `./osteocds up` failed with a bare
`UnknownError` (the embedded broker refuses idempotent producers) unless KAFKA_ENABLE_IDEMPOTENCE=false, which the
runbook did not say. Now the error names the setting and the ways out, and `./osteocds env` prints the running
`up`'s settings, with which the same command succeeds. On a real embedded broker and Redis."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import infra, stack
from shared.runtime.kafka import IdempotenceRefused, Producer
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def embedded() -> Iterator[tuple[infra.Provisioned, str]]:
    """An embedded broker and a Redis of the test's own, as `up` starts them by default."""
    with infra.local_tansu() as url, infra.local_redis() as redis_url:
        yield infra.Provisioned(url, "local", dict(infra.EMBEDDED_KAFKA_SETTINGS)), redis_url


async def test_an_idempotent_producer_refused_by_the_broker_names_the_setting(
    embedded: tuple[infra.Provisioned, str],
) -> None:
    kafka, _ = embedded
    producer = Producer(Settings(kafka_bootstrap_servers=kafka.url, kafka_enable_idempotence=True))
    with pytest.raises(IdempotenceRefused, match="KAFKA_ENABLE_IDEMPOTENCE=false") as refused:
        await producer.start()
    assert "./osteocds env" in str(refused.value)
    await producer.stop()


def _rebuild(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REDIS_", "OIDC_"))}
    return subprocess.run(
        [sys.executable, "-m", "services.scoring", "rebuild"],
        cwd=ROOT,
        env={**base, "HTTP_PORT": str(infra.free_port()), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_rebuild_by_hand_runs_with_the_settings_osteocds_env_prints(
    embedded: tuple[infra.Provisioned, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kafka, redis_url = embedded
    oidc = {"OIDC_ISSUER": "http://127.0.0.1:1", "OIDC_JWKS_URL": "http://127.0.0.1:1/jwks.json"}
    # the record `up` writes, of a stack on this broker (in a file of the test's own: an `up` may run beside it)
    record = tmp_path / "stack.json"
    record.write_text(json.dumps(stack.up_record(kafka, redis_url, {}, oidc, 30.0)))
    monkeypatch.setattr(stack, "STATE_FILE", record)

    # the operator's first try: the broker and Redis named, nothing else
    first = _rebuild({"KAFKA_BOOTSTRAP_SERVERS": kafka.url, "REDIS_URL": redis_url, **oidc})
    assert first.returncode != 0
    assert "KAFKA_ENABLE_IDEMPOTENCE=false" in first.stderr

    assert stack.main(["env"]) == 0
    exports = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in capsys.readouterr().out.splitlines()
    )
    assert exports["KAFKA_BOOTSTRAP_SERVERS"] == kafka.url and exports["REDIS_URL"] == redis_url
    assert exports["KAFKA_ENABLE_IDEMPOTENCE"] == "false"
    done = _rebuild(exports)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(report, dict)


def test_osteocds_env_without_a_running_up_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(stack, "STATE_FILE", tmp_path / "none.json")
    assert stack.main(["env"]) == 2
    assert "No running `./osteocds up`" in capsys.readouterr().err
