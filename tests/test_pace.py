"""Issue 13: an idle consumer fetches with the long idle wait (shared/runtime/pace.py), and the first record brings back
the short one. The policy with a given clock, then a real service on the real broker."""

from __future__ import annotations

import asyncio
import json
import uuid

from contracts.base import Message, derived_id
from contracts.clinical import NormalisedLab
from contracts.hospital import LabResult
from contracts.topics import LABS_NORMALISED, Topic
from shared.runtime.kafka import ensure_topics
from shared.runtime.pace import FetchPace
from shared.runtime.service import Service
from shared.runtime.subscription import Context
from shared.settings import Settings
from tests.conftest import Publish, consume_until, lab
from tests.test_runtime import _settings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Fetcher:
    """What FetchPace touches of aiokafka's fetcher: the wait it puts in its next fetch request."""

    def __init__(self) -> None:
        self._fetch_max_wait_ms = 0


class Consumer:
    def __init__(self) -> None:
        self._fetcher = Fetcher()


def test_idle_after_the_quiet_spell_and_busy_at_the_first_record() -> None:
    clock = Clock()
    settings = Settings(kafka_fetch_max_wait_ms=20, kafka_idle_after_s=2.0, kafka_idle_fetch_max_wait_ms=500)
    pace, consumer = FetchPace(settings, clock), Consumer()
    pace.attach(consumer)
    assert consumer._fetcher._fetch_max_wait_ms == 20 and not pace.idle
    clock.now += 1.9
    pace.fetched(0)
    assert consumer._fetcher._fetch_max_wait_ms == 20  # not yet quiet for KAFKA_IDLE_AFTER_S
    clock.now += 0.2
    pace.fetched(0)
    assert pace.idle and consumer._fetcher._fetch_max_wait_ms == 500
    clock.now += 60
    pace.fetched(3)
    assert not pace.idle and consumer._fetcher._fetch_max_wait_ms == 20  # the first record: short wait again
    clock.now += 1.0
    pace.fetched(0)
    assert consumer._fetcher._fetch_max_wait_ms == 20  # the quiet spell counts from the last record


def test_an_idle_wait_not_longer_than_the_busy_one_changes_nothing() -> None:
    clock = Clock()
    pace, consumer = (
        FetchPace(Settings(kafka_fetch_max_wait_ms=500, kafka_idle_fetch_max_wait_ms=100), clock),
        Consumer(),
    )
    pace.attach(consumer)
    clock.now += 3600
    pace.fetched(0)
    assert not pace.idle and consumer._fetcher._fetch_max_wait_ms == 500


def test_an_aiokafka_without_the_fetch_wait_keeps_its_fixed_wait() -> None:
    pace = FetchPace(Settings(), Clock())
    pace.attach(object())  # no `_fetcher`: nothing to adapt, nothing raised
    pace.fetched(0)


async def test_a_real_consumer_goes_idle_and_a_record_brings_it_back(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    group = f"pace-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{group}", LabResult, ("test",), (group,), "pace test", partitions=1)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, group).model_copy(
        update={"kafka_idle_after_s": 0.5, "kafka_idle_fetch_max_wait_ms": 300}
    )
    busy = settings.kafka_fetch_max_wait_ms
    assert busy < 300
    await ensure_topics(settings, [topic])
    svc = Service(settings)

    @svc.subscriber(topic)
    async def normalise(event: LabResult, ctx: Context) -> list[Message]:
        assert event.value is not None
        return [
            NormalisedLab(
                event_id=derived_id("pace", event.event_id),
                patient_id=event.patient_id,
                occurred_at=event.occurred_at,
                recorded_at=event.recorded_at,
                source=group,
                analyte="total_calcium",
                result_id=event.result_id,
                value=event.value,
                unit="mmol/L",
            )
        ]

    waits: list[int] = []  # every wait the pace gave the fetcher, in order
    apply = svc.pace._apply

    def recorded() -> None:
        apply()
        waits.append(svc.pace._fetcher._fetch_max_wait_ms)

    svc.pace._apply = recorded  # type: ignore[method-assign]
    await svc.start()
    fetcher = svc._consumer._fetcher  # type: ignore[union-attr]
    try:
        for _ in range(200):  # nothing to read: idle once the quiet spell has passed
            if svc.pace.idle:
                break
            await asyncio.sleep(0.05)
        assert svc.pace.idle and fetcher._fetch_max_wait_ms == 300
        msg = lab(f"pt-{group}", "2000-8", 2.4, "mmol/L")
        await publish(topic.name, msg)
        out_id = str(derived_id("pace", msg["event_id"]))
        await consume_until(
            kafka_bootstrap, LABS_NORMALISED.name, lambda r: json.loads(r.value)["event_id"] == out_id, timeout=20
        )
        assert waits[:3] == [busy, 300, busy]  # started busy, idle, then the record brought the short wait back
    finally:
        await svc.stop()
    assert svc.fatal is None, repr(svc.fatal)
