"""Issue 13: the rebuild publishes what the service should have said and its topics do not show, once; a loss
seen by a transaction stops the batch before anything is computed from the empty state."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from contracts.base import Message, derived_id
from contracts.clinical import NormalisedLab
from contracts.hospital import LabResult
from contracts.topics import LABS_NORMALISED, Topic
from shared.runtime import healing
from shared.runtime.kafka import ensure_topics
from shared.runtime.rebuild import rebuild as real_rebuild
from shared.runtime.service import Service
from shared.runtime.state import StateLost, StateStore
from tests.conftest import Publish, lab
from tests.test_runtime import Applied, _settings


def _normalised(event: LabResult, source: str) -> NormalisedLab:
    assert event.value is not None
    return NormalisedLab(
        event_id=derived_id("heal", event.event_id),
        patient_id=event.patient_id,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        source=source,
        analyte="total_calcium",
        result_id=event.result_id,
        value=event.value,
        unit="mmol/L",
    )


async def _count(bootstrap: str, topic: str, event_id: str) -> int:
    """How many records of `topic` carry this event ID (read to the end, no group)."""
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await c.start()
    try:
        n, empty = 0, 0
        while empty < 3:
            batch = await c.getmany(timeout_ms=300)
            empty = 0 if batch else empty + 1
            n += sum(1 for rs in batch.values() for r in rs if json.loads(r.value).get("event_id") == event_id)
        return n
    finally:
        await c.stop()


async def test_rebuild_publishes_the_outputs_missing_from_the_topics_once(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    """The input is committed but its output is not on the topic (what an empty cache during a gap, or the
    old `rebuild` that recorded replayed outputs as published, left behind). Starting without state rebuilds
    and publishes it; a second loss publishes nothing again."""
    group = f"heal-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{group}", LabResult, ("test",), (group,), "healing test", partitions=1)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, group)
    await ensure_topics(settings, [topic])
    msg = lab(f"pt-{group}", "2000-8", 2.4, "mmol/L")
    await publish(topic.name, msg)
    committer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await committer.start()
    committer.assign([TopicPartition(topic.name, 0)])
    await committer.commit({TopicPartition(topic.name, 0): OffsetAndMetadata(1, "")})
    await committer.stop()

    def apply(state: Applied, event: LabResult) -> tuple[Applied, list[Message]]:
        if str(event.event_id) in state.event_ids:
            return state, []
        return Applied(event_ids=[*state.event_ids, str(event.event_id)]), [_normalised(event, group)]

    out_id = str(derived_id("heal", msg["event_id"]))
    r = aioredis.Redis.from_url(redis_url)
    store = StateStore(r, group, 60)
    first = True
    for _ in range(2):  # a first loss publishes the missing output, a second finds it on the topic
        svc = Service(settings)
        svc.patient_aggregate((topic,), Applied, apply)
        await svc.start()
        for _ in range(200):
            if await svc.store.read_epoch() is not None:
                break
            await asyncio.sleep(0.05)
        await svc.stop()
        assert svc.fatal is None, repr(svc.fatal)
        held = await store.load(msg["patient_id"], Applied)
        assert held is not None and held.event_ids == [msg["event_id"]]
        if not settings.state_changelog or first:
            # a replay marks every input it applied processed; a restore from the changelog (Apache Kafka tier,
            # the second loss) only the uncommitted tail: the committed input is not delivered again
            assert await store.seen(msg["event_id"])
        first = False
        assert await _count(kafka_bootstrap, LABS_NORMALISED.name, out_id) == 1
        for key in [k async for k in r.scan_iter(match=f"osteocds:{group}:*")]:
            await r.delete(key)  # the loss
    await r.aclose()


async def test_a_transaction_on_a_lost_state_computes_nothing(redis_url: str) -> None:
    r = aioredis.Redis.from_url(redis_url)
    store = StateStore(r, f"t-{uuid.uuid4().hex[:6]}", 60)
    store.guarded, store.epoch = True, b"e1"
    await r.set(store.epoch_key, b"e1")
    calls: list[int] = []

    def fn(
        states: dict[str, Applied | None], boxes: dict[str, bytes | None]
    ) -> tuple[dict[str, Applied | bytes], dict[str, bytes], None]:
        calls.append(1)
        return {p: Applied(event_ids=["x"]) for p in states}, {}, None

    await store.transact_many(["p"], Applied, fn)
    assert len(calls) == 1
    await r.delete(store.epoch_key)  # Redis lost it
    with pytest.raises(StateLost):
        await store.transact_many(["q"], Applied, fn)
    with pytest.raises(StateLost):
        await store.finish({}, ["e"])
    assert len(calls) == 1 and not await store.seen("e") and await r.get(store.patient_key("q")) is None
    await r.aclose()


async def test_two_instances_noticing_one_loss_rebuild_once(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish, monkeypatch: Any
) -> None:
    """Issue 13: two instances of one service see the same loss (and, before, the same empty Redis at start).
    Only the one holding the rebuild lock rebuilds; the other stays not-ready until the new epoch is there,
    adopts it and goes on consuming."""
    group = f"heal2-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{group}", LabResult, ("test",), (group,), "healing test", partitions=2)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, group)
    await ensure_topics(settings, [topic])
    before = [lab(f"pt-{group}-{i}", "2000-8", 2.4, "mmol/L") for i in range(4)]
    for m in before:
        await publish(topic.name, m)

    rebuilt_by: list[int] = []  # which instance ran a rebuild
    gate = asyncio.Event()

    async def gated(service: Service, expected: bytes | None = None) -> Any:
        rebuilt_by.append(id(service))
        await gate.wait()  # held while the other instance notices the same loss
        return await real_rebuild(service, expected)

    monkeypatch.setattr(healing, "rebuild", gated)

    def apply(state: Applied, event: LabResult) -> tuple[Applied, list[Message]]:
        if str(event.event_id) in state.event_ids:
            return state, []
        return Applied(event_ids=[*state.event_ids, str(event.event_id)]), [_normalised(event, group)]

    def instance() -> Service:
        svc = Service(settings)
        svc.patient_aggregate((topic,), Applied, apply)
        return svc

    async def until(condition: Any, what: str, tries: int = 400) -> None:
        for _ in range(tries):
            if await condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(what)

    r = aioredis.Redis.from_url(redis_url)
    store = StateStore(r, group, 60)
    a, b = instance(), instance()

    async def all_seen(events: list[dict[str, Any]]) -> bool:
        return all([await store.seen(m["event_id"]) for m in events])

    async def both_ready() -> bool:
        return all([(await svc.readiness())["state"] for svc in (a, b)])

    await asyncio.gather(a.start(), b.start())
    try:
        # 1. at start, no epoch: one rebuild (the other instance waits for it)
        await until(lambda: asyncio.sleep(0, len(rebuilt_by) == 1), "no instance rebuilt at start")
        assert not a._state_checked and not b._state_checked  # neither consumes before the state is there
        await asyncio.sleep(1.0)  # time for the other to reach the lock
        gate.set()
        await until(both_ready, "not both ready after the first rebuild")
        await until(lambda: all_seen(before), "the events before the loss were not processed")
        assert len(rebuilt_by) == 1
        losses = [svc.metrics.state_losses.labels(svc.name)._value.get() for svc in (a, b)]

        # 2. the loss, noticed by both (idle watchdogs): one rebuilds, the other waits not-ready, then adopts
        gate.clear()
        for key in [k async for k in r.scan_iter(match=f"osteocds:{group}:*")]:
            await r.delete(key)
        await until(lambda: asyncio.sleep(0, a.healing and b.healing), "both did not notice the loss")
        await until(lambda: asyncio.sleep(0, len(rebuilt_by) == 2), "nobody rebuilt after the loss")
        waiting = b if rebuilt_by[-1] == id(a) else a
        assert waiting.healing and not (await waiting.readiness())["state"]
        assert await r.exists(healing.lock_key(waiting))
        gate.set()
        await until(both_ready, "not both ready after the rebuild")
        assert len(rebuilt_by) == 2  # the second instance adopted the first's rebuild
        assert a.store.epoch == b.store.epoch == await store.read_epoch()
        assert not await r.exists(healing.lock_key(a))  # released
        for svc, lost in zip((a, b), losses, strict=True):
            assert svc.metrics.state_losses.labels(svc.name)._value.get() == lost + 1

        # 3. both go on: new events on both partitions are processed
        after = [lab(f"pt-{group}-{i}", "2000-8", 2.5, "mmol/L") for i in range(4)]
        for m in after:
            await publish(topic.name, m)
        await until(lambda: all_seen(after), "processing did not resume")
        held = {m["patient_id"]: await store.load(m["patient_id"], Applied) for m in before}
        assert all(h is not None and len(h.event_ids) == 2 for h in held.values())  # rebuilt state + the new one
    finally:
        gate.set()
        await asyncio.gather(a.stop(), b.stop())
        await r.aclose()
    assert a.fatal is None and b.fatal is None, (a.fatal, b.fatal)
