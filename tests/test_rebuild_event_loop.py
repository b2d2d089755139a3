"""Review RY (HAZ-25-CHAOS-01): a long replay leaves the event loop free.

The replay decoded and applied every event on the event loop: for the whole of a long replay nothing else ran, so
Kafka heartbeats, the rebuild lock's renewal (shared/runtime/healing.py) and /healthz starved (a lock that lapses
lets another instance rebuild at once). The replay's CPU work now runs in a worker thread, as the live loop's
transactions do. Real broker and Redis (tests/conftest.py); the toy aggregate of tests/test_changelog.py, each
application costing a fixed amount of CPU time (thread time, so a loaded host stretches it, never shortens it)."""

from __future__ import annotations

import asyncio
import gc
import json
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from contracts.base import Message
from contracts.hospital import LabResult
from shared.runtime.rebuild import rebuild
from shared.runtime.service import Service
from tests.conftest import lab
from tests.test_changelog import CALCIUM, Counted, count, toy

#: the event loop's longest gap, timed: alone in `./osteocds test`
pytestmark = pytest.mark.serial

EVENTS = 3000
PATIENTS = 30
#: CPU seconds of one application: the replay's pure work is EVENTS times this at least
APPLY_CPU_S = 0.0005
#: the longest the event loop may go without running another coroutine during the rebuild
MAX_GAP_S = 0.5


def costly(state: Counted, event: LabResult) -> tuple[Counted, list[Message]]:
    until = time.thread_time() + APPLY_CPU_S
    while time.thread_time() < until:
        pass
    return count(state, event)


async def test_a_long_replay_leaves_the_event_loop_free(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], producer: AIOKafkaProducer
) -> None:
    async with toy(kafka_bootstrap, redis_url, kafka_settings, state_changelog=False) as (topic, settings):
        sends = []
        for k in range(EVENTS):
            patient = f"pt-loop-{k % PATIENTS}"
            body = json.dumps(lab(patient, CALCIUM, 2.4, "mmol/L"), default=str).encode()
            sends.append(await producer.send(topic.name, body, key=patient.encode()))
        await asyncio.gather(*sends)
        # the group committed everything (a replay reads what a group committed; one that never did replays nothing)
        group = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=settings.service_name)
        await group.start()
        try:
            tp = TopicPartition(topic.name, 0)
            group.assign([tp])
            await group.commit({tp: EVENTS})
        finally:
            await group.stop()

        svc = Service(settings)
        svc.patient_aggregate((topic,), Counted, costly)
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticking() -> None:  # what the loop also runs: heartbeats, the lock's renewal, /healthz
            last = time.monotonic()
            while not done.is_set():
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        await svc.producer.start()
        gc.freeze()  # as a service at start (service.py `_tune_gc`): the test process's objects are not collected
        ticker = asyncio.create_task(ticking())
        try:
            report = await rebuild(svc, await svc.store.read_epoch())
        finally:
            done.set()
            await ticker
            gc.unfreeze()
            await svc.producer.stop()
            await svc.redis.aclose()
        assert report.events == EVENTS and report.patients == PATIENTS, report
        assert report.seconds >= EVENTS * APPLY_CPU_S  # the replay's work: longer than the gap allowed, 3 times
        assert len(gaps) > 10 and max(gaps) < MAX_GAP_S, f"max gap {max(gaps):.3f} s over {len(gaps)} ticks"
