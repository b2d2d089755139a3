"""Fixtures for real infrastructure. Same tests on three paths:
KAFKA_BOOTSTRAP_SERVERS / REDIS_URL when set; testcontainers when a Docker engine answers;
otherwise local processes (the embedded Tansu broker and redis-server) on free ports."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from hypothesis import settings as hypothesis_settings

from devstack import infra, issuer, issuer_http
from devstack.stack import SERVICE_MODULES, RunningStack, spawn_services
from shared.web.auth import CLINICIAN, OPS

ROOT = Path(__file__).resolve().parent.parent
#: test artifacts (screenshots...), gitignored
ARTIFACTS = ROOT / "test-artifacts"

#: the notification timings of the test stack: short, so lifecycle tests run in seconds
TEST_SETTLE_S = 2.0
TEST_ESCALATION_S = 8.0

# CI is deterministic (same examples every run); local runs keep exploring new ones.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With `-n 2 --dist loadgroup` (`./osteocds test`'s in-process step): a file's tests on one worker (its module
    fixtures made once), and the two impact files on the same one (they share the crisis runs of
    tests/impact_shared.py, made once per process). NB: with pytest 9.2 and xdist 3.8 these marks are not applied
    (xdist's worker writes the group into `item._nodeid`, which pytest 9 no longer reads: a file's tests go to both
    workers); `./osteocds test`'s timings were measured so."""
    for item in items:
        group = "impact" if item.path.name.startswith("test_impact") else str(item.path)
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session", autouse=True)
def no_fixed_mllp_port() -> Iterator[int]:
    """Issue 20: no test binds a port of `./osteocds up` (the suite runs beside it). Every process a test
    starts from this environment (`devstack.stack.service_env` passes MLLP_PORT through, e.g. the chaos
    harness) gets a free MLLP port instead of 2575; the test stack sets its own below."""
    before = os.environ.get("MLLP_PORT")
    port = infra.free_port()
    os.environ["MLLP_PORT"] = str(port)
    yield port
    if before is None:
        os.environ.pop("MLLP_PORT", None)
    else:
        os.environ["MLLP_PORT"] = before


@pytest.fixture(scope="session")
def kafka_provisioned() -> Iterator[infra.Provisioned]:
    with infra.kafka() as k:
        yield k


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_provisioned: infra.Provisioned) -> str:
    return kafka_provisioned.url


@pytest.fixture(scope="session")
def kafka_settings(kafka_provisioned: infra.Provisioned) -> dict[str, str]:
    """Client settings that fit the broker in use (e.g. no idempotence on the embedded one)."""
    return kafka_provisioned.settings


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with infra.redis() as r:
        yield r.url


_ISSUER: list[issuer.LocalIssuer] = []


@pytest.fixture(scope="session")
def local_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[issuer.LocalIssuer]:
    """A local OIDC issuer (its own key, JWKS served on a free port) that the test stack trusts."""
    with issuer_http.serve(directory=tmp_path_factory.mktemp("issuer")) as local:
        _ISSUER.append(local)
        yield local
        _ISSUER.remove(local)


def token(role: str | None = CLINICIAN, user: str = "test-clinician", **kw: Any) -> str:
    """A token of the test issuer (role None: a token without roles)."""
    return _ISSUER[0].token(user, [] if role is None else [role], **kw)


def auth(role: str | None = CLINICIAN, user: str = "test-clinician") -> dict[str, str]:
    """Authorization header for a role; `integration` posts FHIR/HL7, `ops` reads metrics."""
    return {"Authorization": f"Bearer {token(role, user)}"}


@pytest.fixture(scope="session")
def stack_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service-logs")


@pytest.fixture(scope="session")
def stack(
    kafka_bootstrap: str,
    redis_url: str,
    kafka_settings: dict[str, str],
    stack_logs: Path,
    local_issuer: issuer.LocalIssuer,
) -> Iterator[RunningStack]:
    """The five services as real processes, exactly as `osteocds up` starts them (trusting the test issuer),
    with notification's settle window and escalation delay shortened."""
    ports = {name: infra.free_port() for name in SERVICE_MODULES}
    # lab-normalisation's MLLP listener: a free port, in the stack's env so that a restart keeps it (not 2575)
    mllp_port = infra.free_port()
    env = {
        "MLLP_PORT": str(mllp_port),
        **kafka_settings,
        **local_issuer.env(),
        "ALERT_SETTLE_SECONDS": str(TEST_SETTLE_S),
        "ALERT_ESCALATION_DELAY_SECONDS": str(TEST_ESCALATION_S),
        "TIMER_POLL_INTERVAL_S": "0.2",
        "LIVE_POLL_SECONDS": "0.2",
    }
    running = spawn_services(
        kafka_bootstrap, redis_url, env, ports=ports, log_dir=stack_logs, mllp_port=mllp_port, wait_ready=120
    )
    yield running
    running.stop()


def restart(
    stack: RunningStack,
    name: str,
    stack_logs: Path,
    down_for: float = 0,
    while_down: Callable[[], None] | None = None,
) -> None:
    """Stop one service (SIGTERM: it drains and commits), keep it down `down_for` seconds (running `while_down`
    first), start it again on the same port and wait until it is ready."""
    import signal
    import subprocess
    import sys
    import time

    from devstack.stack import wait_until_ready

    proc = stack.procs[name]
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    if while_down is not None:
        while_down()
    time.sleep(down_for)
    port = stack.urls[name].rsplit(":", 1)[1]
    log = open(stack_logs / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
    stack.procs[name] = subprocess.Popen(
        [sys.executable, "-m", SERVICE_MODULES[name][0]],
        cwd=ROOT,
        env={**stack.env, "HTTP_PORT": port},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    only = RunningStack(urls={name: stack.urls[name]}, procs={name: stack.procs[name]})
    wait_until_ready(only, 60)


def _idempotence(kafka_settings: dict[str, str]) -> bool:
    return kafka_settings.get("KAFKA_ENABLE_IDEMPOTENCE", "true") == "true"


@pytest.fixture
async def producer(kafka_bootstrap: str, kafka_settings: dict[str, str]) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=_idempotence(kafka_settings))
    await p.start()
    yield p
    await p.stop()


Publish = Callable[..., Awaitable[None]]


@pytest.fixture
def publish(producer: AIOKafkaProducer) -> Publish:
    """Publish a dict (as JSON, keyed by its patient_id) or raw bytes (with `key`, by default one that matches
    no patient: a raw message must be keyed by its patient, or it is dead-lettered)."""

    async def _publish(topic: str, value: Any, key: bytes = b"malformed") -> None:
        if isinstance(value, bytes):
            await producer.send_and_wait(topic, value, key=key)
            return
        key = str(value["patient_id"]).encode()
        if "resourceType" in value:  # raw FHIR: the patient ID travels only as the key
            value = {k: v for k, v in value.items() if k != "patient_id"}
        await producer.send_and_wait(topic, json.dumps(value, default=str).encode(), key=key)

    return _publish


@pytest.fixture
def patient_id() -> str:
    return f"pt-{uuid.uuid4().hex[:12]}"


def event(patient_id: str, occurred_at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    """A hospital event envelope plus its fields."""
    now = datetime.now(UTC)
    return {
        "event_id": str(uuid.uuid4()),
        "patient_id": patient_id,
        "occurred_at": (occurred_at or now - timedelta(hours=1)).isoformat(),
        "recorded_at": now.isoformat(),
        "source": "test-bus",
        **fields,
    }


def lab(
    patient_id: str,
    code: str,
    value: float | None,
    unit: str | None,
    *,
    result_id: str | None = None,
    status: str = "final",
    occurred_at: datetime | None = None,
    recorded_at: datetime | None = None,
) -> dict[str, Any]:
    doc = event(
        patient_id,
        occurred_at,
        result_id=result_id or f"r-{uuid.uuid4().hex[:8]}",
        code={"system": "http://loinc.org", "code": code},
        value=value,
        unit=unit,
        status=status,
    )
    if recorded_at is not None:
        doc["recorded_at"] = recorded_at.isoformat()
    return doc


async def wait_for(fn: Callable[[], Awaitable[Any]], timeout: float = 10, interval: float = 0.1) -> Any:
    """Poll `fn` until it returns something truthy; fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await fn()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


async def alerts(stack: RunningStack, patient_id: str, **params: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5, headers=auth(CLINICIAN)) as c:
        r = await c.get(f"{stack.urls['notification']}/alerts", params={"patient_id": patient_id, **params})
        r.raise_for_status()
        data: list[dict[str, Any]] = r.json()
        return data


async def metric(stack: RunningStack, svc: str, name: str, **labels: str) -> float:
    """Read one Prometheus sample from a service's /metrics."""
    async with httpx.AsyncClient(timeout=5, headers=auth(OPS, "test-ops")) as c:
        text = (await c.get(f"{stack.urls[svc]}/metrics")).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{"):
            lbl, value = line[len(name) + 1 :].rsplit("} ", 1)
            if ",".join(sorted(lbl.split(","))) == want:
                total += float(value)
    return total


async def consume_until(bootstrap: str, topic: str, predicate: Callable[[Any], bool], timeout: float = 10) -> Any:
    """Read a topic from the beginning (no consumer group) until a record satisfies `predicate`."""
    c = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await c.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            batch = await c.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if predicate(record):
                        return record
    finally:
        await c.stop()
    raise AssertionError(f"no matching record on {topic} within {timeout}s")


async def outcomes(stack: RunningStack, svc: str, topic: str, outcome: str) -> float:
    """How many messages of `topic` the service counted with this outcome (processed, duplicate...)."""
    return await metric(stack, svc, "osteocds_messages_total", service=svc, topic=topic, outcome=outcome)


async def wait_outcomes_above(
    stack: RunningStack, svc: str, topic: str, outcome: str, before: float, timeout: float = 10
) -> None:
    """Wait until the service has counted more messages with this outcome than `before`."""

    async def moved() -> bool:
        return await outcomes(stack, svc, topic, outcome) > before

    await wait_for(moved, timeout=timeout)
