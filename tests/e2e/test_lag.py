"""Issue 14: the consumer-lag metric rises while a service is stopped and falls after it restarts (real broker,
real Redis, the services as processes, the lag exporter `python -m shared.runtime.lag` as a process)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from contracts.examples import EXAMPLES
from contracts.topics import LABS_NORMALISED, SCORING
from devstack import infra
from devstack.stack import ROOT, SERVICE_MODULES, RunningStack, wait_until_ready
from shared.web.auth import OPS
from tests.conftest import auth, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def exporter(stack: RunningStack) -> Iterator[str]:
    port = infra.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.runtime.lag"],
        cwd=ROOT,
        env={**stack.env, "HTTP_PORT": str(port), "LAG_INTERVAL_S": "0.5"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(RunningStack(urls={"lag-exporter": url}, procs={"lag-exporter": proc}), 30)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


async def samples(url: str, name: str, **labels: str) -> dict[tuple[str, str], float]:
    """(topic, partition) -> value of one metric's series matching `labels`, from a /metrics page."""
    async with httpx.AsyncClient(timeout=5) as c:
        r = await c.get(f"{url}/metrics", headers=auth(OPS))
        r.raise_for_status()
        text = r.text
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                found[s.labels["topic"], s.labels["partition"]] = s.value
    return found


async def lag(url: str) -> float:
    return sum((await samples(url, "osteocds_consumer_lag", service=SCORING, topic=LABS_NORMALISED.name)).values())


async def test_lag_rises_while_scoring_is_stopped_and_falls_after_restart(
    stack: RunningStack, exporter: str, producer: AIOKafkaProducer, stack_logs: Path
) -> None:
    async def caught_up() -> bool:
        return await lag(exporter) == 0

    await wait_for(caught_up, timeout=60, interval=0.5)
    # the service's own /metrics has the same gauge for its group
    own = await samples(stack.urls[SCORING], "osteocds_consumer_lag", service=SCORING, topic=LABS_NORMALISED.name)
    assert len(own) == LABS_NORMALISED.partitions

    proc = stack.procs[SCORING]
    proc.terminate()  # SIGTERM: drains, commits, exits
    await asyncio.to_thread(proc.wait, 30)

    async def publish(n: int) -> None:
        for _ in range(n):
            doc = {**EXAMPLES[LABS_NORMALISED.name], "event_id": str(uuid.uuid4())}
            doc["patient_id"] = f"pt-lag-{uuid.uuid4().hex[:8]}"
            await producer.send_and_wait(LABS_NORMALISED.name, json.dumps(doc).encode(), key=doc["patient_id"].encode())

    await publish(12)

    async def at_least(n: float) -> float | None:
        value = await lag(exporter)
        return value if value >= n else None

    first = await wait_for(lambda: at_least(12), timeout=20, interval=0.5)
    ages = await samples(exporter, "osteocds_oldest_unprocessed_age_seconds", service=SCORING)
    assert max(ages.values()) > 0  # records wait: the oldest has an age
    await publish(8)
    second = await wait_for(lambda: at_least(first + 8), timeout=20, interval=0.5)
    assert second >= first + 8  # rising while the service is stopped

    # restart scoring as `osteocds up` starts it: the backlog is consumed and the lag falls to zero
    await asyncio.to_thread(restart, stack, SCORING, stack_logs, {"LAG_INTERVAL_S": "0.5"})
    await wait_for(caught_up, timeout=60, interval=0.5)
    ages = await samples(exporter, "osteocds_oldest_unprocessed_age_seconds", service=SCORING)
    assert max(ages.values()) == 0

    async def own_zero() -> bool:
        own = await samples(stack.urls[SCORING], "osteocds_consumer_lag", service=SCORING)
        return bool(own) and sum(own.values()) == 0

    await wait_for(own_zero, timeout=30, interval=0.5)


def restart(stack: RunningStack, name: str, logs: Path, extra_env: dict[str, str]) -> None:
    """Start a stopped service of the stack again, as `osteocds up` starts it, and wait until it is ready."""
    module, _ = SERVICE_MODULES[name]
    port = stack.urls[name].rsplit(":", 1)[1]
    log = open(logs / f"{name}.restarted.log", "wb")  # noqa: SIM115 - lives with the process
    stack.procs[name] = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env={**stack.env, "HTTP_PORT": port, **extra_env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_until_ready(RunningStack(urls={name: stack.urls[name]}, procs=stack.procs), 60)
