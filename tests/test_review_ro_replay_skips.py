"""Review RO (HAZ-22-ORDER-04): a rebuild that replays the inputs skips what the live loop dead-lettered before
applying it, so the rebuilt state is the live one.

The live loop refuses a record before its transition when it is larger than MAX_MESSAGE_BYTES, holds NaN or Infinity
in a JSON number, or is keyed by another patient than its message's (shared/runtime/limits.py, Batches.decode). The
replay skipped only what failed to decode: pydantic's JSON parser accepts NaN, and a record too large or keyed by
another patient decodes, so the replay applied the three to the patient and marked their IDs seen (a record sent again
correctly keyed was then skipped as a duplicate). Real broker and Redis (tests/conftest.py), the toy aggregate of
tests/test_changelog.py."""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from shared.runtime.state import StateStore
from tests.conftest import lab
from tests.test_changelog import CALCIUM, Counted, forget, instance, operator_rebuild, snapshot, toy, wait_until

#: a record above this many bytes is dead-lettered (the toy's MAX_MESSAGE_BYTES; a lab record is about 400 bytes)
LIMIT = 2000


async def test_a_replay_skips_what_the_live_loop_dead_lettered_before_applying_it(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], producer: AIOKafkaProducer
) -> None:
    async with toy(kafka_bootstrap, redis_url, kafka_settings, state_changelog=False, max_message_bytes=LIMIT) as (
        topic,
        settings,
    ):
        patient = f"pt-{uuid.uuid4().hex[:10]}"
        first = lab(patient, CALCIUM, 2.4, "mmol/L")
        misplaced = lab(patient, CALCIUM, 2.5, "mmol/L")
        not_finite = lab(patient, CALCIUM, float("nan"), "mmol/L")
        too_large = lab(patient, CALCIUM, 2.6, "mmol/L")

        async def send(msg: dict[str, Any], key: str = patient, padding: int = 0) -> None:
            body = json.dumps(msg, default=str) + " " * padding  # whitespace: valid JSON, only larger
            await producer.send_and_wait(topic.name, body.encode(), key=key.encode())

        await send(first)
        await send(misplaced, key=f"pt-{uuid.uuid4().hex[:10]}")  # keyed by another patient
        await send(not_finite)
        await send(too_large, padding=LIMIT)
        await send(misplaced)  # the same message again, keyed by its patient: applied
        live = instance(topic, settings)
        await live.start()
        r = aioredis.Redis.from_url(redis_url)
        store = StateStore(r, settings.service_name, 60)

        async def applied_two() -> bool:
            state = await store.load(patient, Counted)
            return state is not None and len(state.applied) == 2

        try:
            await wait_until(applied_two)  # one partition: the three refused records were processed before
        finally:
            await live.stop()
        assert live.fatal is None, repr(live.fatal)
        held = await store.load(patient, Counted)
        assert held is not None and held.applied == [first["event_id"], misplaced["event_id"]]
        before = await snapshot(r, settings.service_name)

        await forget(r, settings.service_name)
        report = await operator_rebuild(topic, settings)
        assert report.source == "replay"
        assert (report.events, report.skipped, report.duplicates) == (2, 3, 0)
        after = await snapshot(r, settings.service_name)
        assert after.states == before.states  # byte for byte
        await r.aclose()
