"""Issue 22 on Apache Kafka: the changelogs are compacted by the broker (about one record per patient is left of many),
a restore from the compacted changelog gives the live state back, and the five services' restore check of
tests/test_changelog.py holds on Apache Kafka too (a private 1-node cluster: the services' own group and topic
names, none of the other tests' records)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.structs import TopicPartition

from contracts.hospital import LabResult
from contracts.topics import Topic, changelog_topic
from devstack import apache_kafka, infra
from devstack.cohort import Cohort
from shared.runtime import reading
from shared.runtime.kafka import ensure_topics
from shared.runtime.state import StateStore
from shared.settings import Settings
from tests.conftest import Publish, lab
from tests.test_changelog import (
    CALCIUM,
    Counted,
    forget,
    instance,
    operator_rebuild,
    restore_equals_replay,
    snapshot,
    wait_until,
)
from tests.test_runtime import _settings

#: a cohort's live state against its restore and its replay, order-dependent decisions excepted: alone in
#: `./osteocds test` (seen to differ once beside another worker on a loaded host)
pytestmark = pytest.mark.serial

#: a changelog that the broker compacts within the test: segments roll after 100 ms (the cleaner never touches the
#: active segment), any share of superseded records makes a segment worth cleaning
FAST_COMPACTION = {
    "cleanup.policy": "compact",
    "segment.ms": "100",
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": "100",
}
PATIENTS = 5
WAVES = 20


async def test_the_changelog_is_compacted_to_one_record_per_patient_and_restores_the_live_state(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    group = f"compact-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{group}", LabResult, ("test",), (group,), "compaction test", partitions=1)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, group).model_copy(update={"state_changelog": True})
    log = changelog_topic(group)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        rf = settings.kafka_replication_factor
        await admin.create_topics([NewTopic(log.name, log.partitions, rf, topic_configs=FAST_COMPACTION)])
    finally:
        await admin.close()
    await ensure_topics(settings, [topic])

    patients = [f"pt-{uuid.uuid4().hex[:10]}" for _ in range(PATIENTS)]
    svc = instance(topic, settings)
    await svc.start()
    store = StateStore(svc.redis, group, 60)
    for _ in range(WAVES):  # one batch per wave: one changelog record per patient each time
        wave = [lab(p, CALCIUM, 2.4, "mmol/L") for p in patients]
        for msg in wave:
            await publish(topic.name, msg)
        await wait_until(lambda w=wave: _all_seen(store, w))
    await svc.stop()
    written = sum(1 for _ in patients) * WAVES
    r = aioredis.Redis.from_url(redis_url)
    live = await snapshot(r, group)
    assert len(live.states) == PATIENTS

    # the newest records of each partition are in its active segment, which is never cleaned: one more record per
    # partition (a tombstone of no patient) after segment.ms rolls them all
    await asyncio.sleep(0.3)
    roller = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await roller.start()
    try:
        for partition in range(log.partitions):
            await roller.send_and_wait(log.name, None, key=b"roll", partition=partition)
    finally:
        await roller.stop()
    values: Counter[bytes] = Counter()
    for _ in range(120):
        values = await _values_per_key(kafka_bootstrap, log.name)
        if all(values[p.encode()] == 1 for p in patients):
            break
        await asyncio.sleep(1)
    print(f"changelog: {written} patient records written, {sum(values.values())} left: {dict(values)}")
    assert all(values[p.encode()] == 1 for p in patients), values  # one record per patient, its newest state

    await forget(r, group)
    report = await operator_rebuild(topic, settings)
    assert report.source == "changelog" and report.patients == PATIENTS
    restored = await snapshot(r, group)
    assert restored.states == live.states
    held = await StateStore(r, group, 60).load(patients[0], Counted)
    assert held is not None and len(held.applied) == WAVES
    await r.aclose()


async def _values_per_key(bootstrap: str, topic: str) -> Counter[bytes]:
    """How many records with a value each key has on the topic now (every record read, not only the newest)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = await reading.partitions(Settings(kafka_bootstrap_servers=bootstrap), [topic])
        ends = await consumer.end_offsets(parts)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out: Counter[bytes] = Counter()
        remaining = {tp for tp in parts if ends[tp] > 0}
        while remaining:
            for recs in (await consumer.getmany(*remaining, timeout_ms=500)).values():
                out.update(r.key for r in recs if r.value is not None and r.key is not None)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        return out
    finally:
        await consumer.stop()


async def _all_seen(store: StateStore, wave: list[dict[str, str]]) -> bool:
    return all([await store.seen(m["event_id"]) for m in wave])


async def test_restore_from_the_changelog_gives_the_live_state_of_every_service_on_apache_kafka() -> None:
    with apache_kafka.cluster(1) as cluster, infra.local_redis() as redis_url:
        cohort = Cohort(seed=22, patients=4, years=0.5, end=datetime.now(UTC))
        differs = await restore_equals_replay(cluster.bootstrap, redis_url, cluster.settings, cohort)
        print(f"services whose replay differs from the live state: {sorted(differs)}")


async def test_a_restore_needs_no_input_history_where_a_replay_rebuilds_nothing(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    """The broker deletes the inputs' old records (retention: the topics of deploy/ keep Apache Kafka's default of 7
    days; here the records are deleted by hand, as retention does). A replay then rebuilds the patient from nothing,
    without an error; the restore from the changelog gives the state back."""
    group = f"history-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{group}", LabResult, ("test",), (group,), "retention test", partitions=1)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, group).model_copy(update={"state_changelog": True})
    await ensure_topics(settings, [topic, changelog_topic(group)])
    patient = f"pt-{uuid.uuid4().hex[:10]}"
    sent = [lab(patient, CALCIUM, 2.4 + i / 10, "mmol/L") for i in range(3)]
    svc = instance(topic, settings)
    await svc.start()
    for msg in sent:
        await publish(topic.name, msg)
    store = StateStore(svc.redis, group, 60)
    await wait_until(lambda: _all_seen(store, sent))
    await svc.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:  # what retention does to records older than retention.ms
        await admin.delete_records({TopicPartition(topic.name, 0): RecordsToDelete(before_offset=len(sent))})
    finally:
        await admin.close()
    r = aioredis.Redis.from_url(redis_url)
    live = await snapshot(r, group)
    await forget(r, group)
    replayed = await operator_rebuild(topic, settings.model_copy(update={"state_changelog": False}))
    assert replayed.source == "replay" and replayed.patients == 0  # the patient is gone, and nothing says so
    await forget(r, group)
    restored = await operator_rebuild(topic, settings)
    assert restored.source == "changelog" and restored.patients == 1
    assert (await snapshot(r, group)).states == live.states
    held = await StateStore(r, group, 60).load(patient, Counted)
    assert held is not None and held.applied == [m["event_id"] for m in sent]
    await r.aclose()
