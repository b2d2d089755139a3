"""Review RY (HAZ-25-CHAOS-01): the replay does not bound a patient's state by MAX_STATE_BYTES as the live loop does.

The live loop rejects an event whose state would pass MAX_STATE_BYTES (shared/runtime/aggregate.py `apply_events`:
dead-lettered, marked processed, state unchanged); rebuild.py `replay` mirrors the decoding refusals and the output
limit (review RO) but not this one. A rebuild then holds the rejected event (its outputs published as missing) and a
state above the limit, where every later event that grows it is rejected. Older than 85415ae (the committed records
were replayed the same way); since 85415ae the records past the committed offset too. Fixed (helper ZB): the replay
bounds each event as the live loop bounds an event delivered alone (rebuild.py `apply_one_per_batch`)."""

from __future__ import annotations

import json
import uuid

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from shared.runtime.state import StateStore
from tests.conftest import lab
from tests.test_changelog import CALCIUM, Counted, forget, instance, operator_rebuild, toy, wait_until


async def test_a_rebuild_holds_the_state_the_live_service_kept_under_max_state_bytes(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], producer: AIOKafkaProducer
) -> None:
    limit = len(Counted(applied=[str(uuid.uuid4())] * 2).model_dump_json())  # two events fit, not three
    async with toy(kafka_bootstrap, redis_url, kafka_settings, state_changelog=False, max_state_bytes=limit) as (
        topic,
        settings,
    ):
        patient = f"pt-{uuid.uuid4().hex[:10]}"
        sent = [lab(patient, CALCIUM, 2.4 + k / 10, "mmol/L") for k in range(3)]
        r = aioredis.Redis.from_url(redis_url)
        store = StateStore(r, settings.service_name, 60)
        live = instance(topic, settings)
        await live.start()
        try:
            for msg in sent:  # one batch each
                await producer.send_and_wait(topic.name, json.dumps(msg, default=str).encode(), key=patient.encode())
                await wait_until(lambda m=msg: store.seen(m["event_id"], patient))
        finally:
            await live.stop()
        assert live.fatal is None, repr(live.fatal)
        held = await store.load(patient, Counted)
        assert held is not None and held.applied == [m["event_id"] for m in sent[:2]]  # the third rejected live

        await forget(r, settings.service_name)
        await operator_rebuild(topic, settings)
        rebuilt = await store.load(patient, Counted)
        await r.aclose()
        assert rebuilt == held
