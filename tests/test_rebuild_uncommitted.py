"""HAZ-25-CHAOS-01: a rebuild replays what the topics hold, not only what the group committed.

A record past its partition's committed offset may have been applied live, its outputs acted on downstream: the batch
was not committed yet, or the partition's commit waits for an earlier record the fair backlog holds back. The replay
stopped at the committed offsets, so the rebuilt state lacked it; given again, in another order across topics, it
made scoring issue a Mirels score without the pain, which withdrew the critical alert downstream (chaos runs: 4 of 80
critical Mirels alerts lost, 2 withdrawn then raised again). Real broker and Redis (tests/conftest.py), the toy
aggregate of tests/test_changelog.py (it records every application, even a second one)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from contracts.topics import Topic
from shared.runtime.rebuild import in_flight_bound, past_committed
from shared.runtime.state import StateStore
from shared.settings import Settings
from tests.conftest import lab
from tests.test_changelog import CALCIUM, Counted, forget, instance, operator_rebuild, snapshot, toy, wait_until


async def applied_not_committed(
    topic: Topic, settings: Settings, producer: AIOKafkaProducer, store: StateStore, patient: str
) -> list[dict[str, Any]]:
    """Three results of `patient` through a live instance of the toy: the first applied and committed, the last two
    applied and not committed (the process dies before its commit). Returns them in order (also review RY's test)."""
    sent = [lab(patient, CALCIUM, 2.4 + k / 10, "mmol/L") for k in range(3)]
    tp = TopicPartition(topic.name, 0)
    live = instance(topic, settings)
    await live.start()
    assert live._consumer is not None
    consumer = live._consumer

    async def send(msg: dict[str, Any]) -> None:
        await producer.send_and_wait(topic.name, json.dumps(msg, default=str).encode(), key=patient.encode())

    def applied(n: int) -> Any:
        async def check() -> bool:
            state = await store.load(patient, Counted)
            return state is not None and len(state.applied) == n

        return check

    async def ready() -> bool:
        return all((await live.readiness()).values())

    async def committed_one() -> bool:
        return bool(await consumer.committed(tp) == 1)

    async def dies_before_committing(*_: Any, **__: Any) -> None:
        raise RuntimeError("the process dies before the commit")

    try:
        await wait_until(ready)  # consumed live (a start's rebuild replays what the topic holds by then)
        await send(sent[0])
        await wait_until(applied(1))
        await wait_until(committed_one)
        consumer.commit = dies_before_committing
        for msg in sent[1:]:
            await send(msg)
        await wait_until(applied(3))  # applied live (their outputs would be out), not committed
        await wait_until(lambda: asyncio.sleep(0, live.fatal is not None))
    finally:
        await live.stop()
    return sent


async def delivered_again(
    topic: Topic, settings: Settings, store: StateStore, patient: str, sent: list[dict[str, Any]]
) -> None:
    """A new live instance consumes the partition to its end: the results past the commit come again and are skipped
    (marked processed), so each of `sent` is applied exactly once (also review RY's test)."""
    tp = TopicPartition(topic.name, 0)
    again = instance(topic, settings)
    await again.start()
    try:

        async def committed_all() -> bool:
            assert again._consumer is not None
            return bool(await again._consumer.committed(tp) == len(sent))

        await wait_until(committed_all)
    finally:
        await again.stop()
    assert again.fatal is None, repr(again.fatal)
    after = await store.load(patient, Counted)
    assert after is not None and after.applied == [m["event_id"] for m in sent]


async def test_a_rebuild_holds_what_was_applied_past_the_committed_offset_and_applies_nothing_twice(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], producer: AIOKafkaProducer
) -> None:
    async with toy(kafka_bootstrap, redis_url, kafka_settings, state_changelog=False) as (topic, settings):
        patient = f"pt-{uuid.uuid4().hex[:10]}"
        r = aioredis.Redis.from_url(redis_url)
        store = StateStore(r, settings.service_name, 60)
        sent = await applied_not_committed(topic, settings, producer, store, patient)
        held = await store.load(patient, Counted)
        assert held is not None and held.applied == [m["event_id"] for m in sent]
        before = await snapshot(r, settings.service_name)

        await forget(r, settings.service_name)  # then Redis is lost
        report = await operator_rebuild(topic, settings)
        assert report.source == "replay" and report.events == 3, report  # was 1: the committed offset only
        assert (await snapshot(r, settings.service_name)).states == before.states  # the live state, byte for byte

        # the two come again (nothing committed them): marked processed by the rebuild, skipped, not applied twice
        await delivered_again(topic, settings, store, patient, sent)
        await r.aclose()


def test_a_replay_goes_past_the_committed_offset_as_far_as_a_record_applied_live_can_be() -> None:
    """`past_committed`: to the end, at most `in_flight_bound` past each committed offset (a partition never committed
    counts from 0); a group that never committed replays nothing (its records are processed live)."""
    settings = Settings(read_ahead_records=100, kafka_max_poll_records=10)
    bound = in_flight_bound(settings)
    assert bound == 120
    a, b, c = (TopicPartition("t", p) for p in range(3))
    ends = {a: 50, b: 1000, c: 500}
    assert past_committed({}, ends, settings) == {}
    assert past_committed({a: 40, b: 300}, ends, settings) == {a: 50, b: 300 + bound, c: bound}
