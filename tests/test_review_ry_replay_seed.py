"""Review RY (HAZ-25-CHAOS-01): a changelog seeded by a replay to the topics' end, then restored.

85415ae replays past the committed offsets and seeds the changelog with each patient's `applied` marks. A later
restore from that changelog must mark processed the records past the committed offset that the seeded states hold
(rebuild.py `held_tail`), else their redelivery applies them a second time. Real broker and Redis, the toy aggregate
of tests/test_changelog.py (it records every application, even a second one)."""

from __future__ import annotations

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from shared.runtime.state import StateStore
from tests.test_changelog import forget, operator_rebuild, toy
from tests.test_rebuild_uncommitted import applied_not_committed, delivered_again


async def test_a_restore_from_a_replay_seeded_changelog_applies_nothing_twice(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], producer: AIOKafkaProducer
) -> None:
    async with toy(kafka_bootstrap, redis_url, kafka_settings, state_restore="replay") as (topic, settings):
        patient = "pt-ry-seed"
        r = aioredis.Redis.from_url(redis_url)
        store = StateStore(r, settings.service_name, 60)
        sent = await applied_not_committed(topic, settings, producer, store, patient)

        await forget(r, settings.service_name)
        seeded = await operator_rebuild(topic, settings)  # a replay to the end, seeding the changelog
        assert seeded.source == "replay" and seeded.events == 3, seeded
        await forget(r, settings.service_name)  # lost again: this time restored from the seeded changelog
        restored = await operator_rebuild(topic, settings.model_copy(update={"state_restore": "changelog"}))
        assert restored.source == "changelog" and restored.events == 2, restored  # the two past the commit: held
        for msg in sent[1:]:
            assert await store.seen(msg["event_id"], patient)

        await delivered_again(topic, settings, store, patient, sent)  # never committed: skipped, not applied twice
        await r.aclose()
