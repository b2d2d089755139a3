"""Review RZ (HAZ-25-HEAL-01, HAZ-25-CHAOS-01): a heal's retried rebuild attempt dead-letters nothing twice.

The rebuild dead-letters a record past the committed offset that the pure code rejects (review RY), then writes the
state. When that write fails (Redis drops the connection), shared/runtime/healing.py retries the whole attempt with
backoff (HAZ-25-HEAL-01): each attempt replayed, found the same record and dead-lettered it again, one letter per
failed attempt for one refused input (an operator queue filling with copies during a Redis outage). The heal now keeps
the records its attempts dead-lettered, once acknowledged, and a retry skips them. Real broker and Redis
(tests/conftest.py); the failure is the service's derived-key writer (`rebuild_writes`) raising the error a dropped
connection raises, once, inside the rebuild's MULTI (nothing of that attempt is written)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.runtime import healing
from shared.runtime.state import StateStore
from tests.conftest import lab
from tests.test_changelog import CALCIUM, Counted, forget, run_until_committed, send_keyed, toy
from tests.test_rebuild_rejected_mark import REFUSED_ABOVE, instance, letters_for


async def test_a_retried_heal_attempt_dead_letters_a_refused_record_once(
    kafka_bootstrap: str,
    redis_url: str,
    kafka_settings: dict[str, str],
    producer: AIOKafkaProducer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(healing, "RETRY_FIRST_S", 0.05)  # the backoff's length is not under test
    async with toy(kafka_bootstrap, redis_url, kafka_settings, state_changelog=False) as (topic, settings):
        patient = f"pt-{uuid.uuid4().hex[:10]}"
        first = lab(patient, CALCIUM, 2.4, "mmol/L")
        refused = lab(patient, CALCIUM, REFUSED_ABOVE + 1, "mmol/L")
        r = aioredis.Redis.from_url(redis_url)
        await run_until_committed(instance, topic, settings, producer, patient, 1, first)  # the group commits it
        await send_keyed(producer, topic, patient, refused)  # past the commit, never applied nor dead-lettered live
        await forget(r, settings.service_name)  # Redis lost

        svc = instance(topic, settings)
        writes = 0

        def flaky_index(pipe: Any, states: Any) -> None:  # the first attempt's write fails, as on a dropped link
            nonlocal writes
            writes += 1
            if writes == 1:
                raise RedisConnectionError("review RZ: connection dropped during the rebuild's write")

        svc.rebuild_writes = flaky_index
        await svc.producer.start()
        try:
            report = await healing.ensure_state(svc)  # the start's heal: attempts retried until one is written
        finally:
            await svc.producer.stop()
            await svc.redis.aclose()
        assert writes == 2, writes  # one failed attempt, one written
        assert report is not None and report.skipped == 1, report
        held = await StateStore(r, settings.service_name, 60).load(patient, Counted)
        await r.aclose()
        assert held is not None and held.applied == [first["event_id"]]
        letters = await letters_for(settings, topic.name)
        # one letter for the one refused input (the old code: one per attempt, two)
        assert [(letter.offset, letter.error_type) for letter in letters] == [(1, "Rejected")], letters
