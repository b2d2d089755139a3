"""Issue 22: state restored from the services' changelogs (shared/runtime/changelog.py, shared/runtime/rebuild.py).

The restore logic needs no compaction (the newest record per patient wins when the changelog is read), so these run
on the broker `OSTEOCDS_KAFKA` selects: the embedded one by default, Apache Kafka in its tier (tests/apache/ adds the
compaction itself)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition
from pydantic import BaseModel

from contracts.base import Message
from contracts.changelog import COMPLETE_KEY
from contracts.hospital import LabResult
from contracts.topics import SERVICES, TOPICS, Topic, changelog_topic
from devstack import infra
from devstack.cohort import Cohort
from devstack.replay import build_services
from shared.runtime import changelog, reading
from shared.runtime.kafka import ensure_topics
from shared.runtime.rebuild import RebuildReport, rebuild
from shared.runtime.service import Service
from shared.runtime.state import StateStore
from shared.settings import Settings
from tests.conftest import Publish, lab
from tests.test_runtime import _settings

ALBUMIN = "1751-7"
CALCIUM = "2000-8"


# ---- the five services through a cohort ----------------------------------------------------------------------------
@dataclass
class Snapshot:
    """What a service holds in Redis: patient states, deadlines, and its other derived keys (indexes)."""

    states: dict[bytes, bytes]
    timers: list[tuple[bytes, float]]
    others: dict[bytes, Any]


async def snapshot(r: aioredis.Redis, name: str) -> Snapshot:
    ns = f"osteocds:{name}:"
    states: dict[bytes, bytes] = {}
    others: dict[bytes, Any] = {}
    async for key in r.scan_iter(match=f"{ns}*", count=1000):
        kind = key.decode()[len(ns) :].split(":", 1)[0]
        if kind == "state":
            states[key] = await r.get(key)  # type: ignore[assignment]
        elif kind not in ("seen", "epoch", "seq", "timers", "rebuild-lock", "outbox"):  # seq: per process
            others[key] = await r.dump(key)
    timers: list[tuple[bytes, float]] = list(await r.zrange(f"{ns}timers", 0, -1, withscores=True))  # type: ignore[arg-type]
    return Snapshot(states, timers, others)


def differ(a: Snapshot, b: Snapshot) -> list[str]:
    """Where two snapshots' states differ (key, first differing byte and what is around it)."""
    out = []
    for k in sorted(set(a.states) | set(b.states)):
        x, y = a.states.get(k, b""), b.states.get(k, b"")
        if x != y:
            i = next((i for i in range(min(len(x), len(y))) if x[i] != y[i]), min(len(x), len(y)))
            out.append(f"{k!r} at {i}: {x[max(0, i - 80) : i + 80]!r} / {y[max(0, i - 80) : i + 80]!r}")
    return out


async def forget(r: aioredis.Redis, name: str) -> None:
    """The loss: every key of the service gone."""
    keys = [k async for k in r.scan_iter(match=f"osteocds:{name}:*", count=1000)]
    if keys:
        await r.delete(*keys)


async def committed(bootstrap: str, services: dict[str, Service]) -> dict[str, Counter[str]]:
    """Each group's committed offsets, summed per topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        out: dict[str, Counter[str]] = {}
        for name, svc in services.items():
            parts = await reading.partitions(svc.settings, list(svc.subscriptions))
            offsets = await admin.list_consumer_group_offsets(name, partitions=parts)
            per: Counter[str] = Counter()
            for tp, meta in offsets.items():
                if meta is not None and meta.offset > 0:
                    per[tp.topic] += meta.offset
            out[name] = per
        return out
    finally:
        await admin.close()


async def coordinators(bootstrap: str, timeout: float = 60) -> None:
    """Every service's group coordinator found: a fresh Apache Kafka cluster creates its offsets topic on the first
    request and answers GroupCoordinatorNotAvailable meanwhile (a consumer started then may wait long to join)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for name in SERVICES:
            for _ in range(int(timeout)):
                try:
                    await admin.find_coordinator(name)
                    break
                except KafkaError:
                    await asyncio.sleep(1)
    finally:
        await admin.close()


async def publish_cohort(bootstrap: str, cohort: Cohort) -> Counter[str]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    counts: Counter[str] = Counter()
    try:
        futures = []
        for g in cohort.events():
            futures.append(await producer.send(g.topic, g.value(), key=g.key.encode(), timestamp_ms=g.timestamp_ms))
            counts[g.topic] += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return counts


async def run_until_quiet(
    bootstrap: str, overrides: dict[str, Any], counts: Counter[str], quiet: float = 4, timeout: float = 300
) -> dict[str, Service]:
    """The five services in this process until every group has committed every hospital input of its topics and
    no committed offset moved for `quiet` seconds (deadlines falling due included); then drained and stopped."""
    services = build_services({name: overrides for name in SERVICES})
    for svc in services.values():
        await svc.start()
    try:
        last, still, loop = None, 0.0, asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            await asyncio.sleep(1)
            for svc in services.values():
                assert svc.fatal is None, repr(svc.fatal)
            now = await committed(bootstrap, services)
            inputs_done = all(
                now[n][t] >= counts[t] for n, s in services.items() for t in s.subscriptions if t in counts
            )
            still = still + 1 if now == last else 0
            last = now
            if inputs_done and still >= quiet:
                return services
        raise AssertionError(f"the services did not go through the cohort in {timeout} s: {last}")
    finally:
        for svc in services.values():
            await svc.stop()


async def rebuilt(name: str, overrides: dict[str, Any]) -> RebuildReport:
    """`python -m services.<name> rebuild` in process: a fresh instance's producer, the rebuild, closed."""
    svc = build_services({name: overrides}, names=[name])[name]
    await svc.producer.start()
    try:
        return await rebuild(svc, await svc.store.read_epoch())
    finally:
        await svc.producer.stop()
        await svc.redis.aclose()


async def restore_equals_replay(
    bootstrap: str, redis_url: str, broker: dict[str, str], cohort: Cohort
) -> dict[str, list[str]]:
    """The shared check of this file and of tests/apache/: the cohort through the five services with their changelogs
    on; then per service, Redis lost and restored from the changelog, lost again and rebuilt by replaying the inputs.
    The restored states are the live ones byte for byte, with the deadlines and indexes a replay writes. Returns the
    services whose replay differs from the live state, with the differences."""
    replay_differs: dict[str, list[str]] = {}
    overrides: dict[str, Any] = {k.lower(): v for k, v in broker.items()}
    overrides.update(
        kafka_bootstrap_servers=bootstrap,
        redis_url=redis_url,
        state_changelog=True,
        timer_poll_interval_s=0.5,
        kafka_fetch_max_wait_ms=20,
    )
    await ensure_topics(Settings(**overrides), TOPICS)
    await coordinators(bootstrap)
    counts = await publish_cohort(bootstrap, cohort)
    await run_until_quiet(bootstrap, overrides, counts)
    r = aioredis.Redis.from_url(redis_url)
    try:
        # downstream first: a replay reads its inputs past the committed offsets (HAZ-25-CHAOS-01), and an upstream
        # service's replay publishes what it finds missing; its consumers, checked before, never see it here
        for name in reversed(SERVICES):
            live = await snapshot(r, name)
            assert live.states, f"{name}: no patient state at all (the cohort did not reach it)"
            await forget(r, name)
            restored_report = await rebuilt(name, overrides)
            restored = await snapshot(r, name)
            await forget(r, name)
            replayed_report = await rebuilt(name, {**overrides, "state_changelog": False})
            replayed = await snapshot(r, name)
            assert restored_report.source == "changelog" and replayed_report.source == "replay", name
            assert restored_report.patients == len(live.states), name
            assert restored.states == live.states, f"{name}: a restored state differs from the live one"
            if _same_decisions(name, replayed.states, live.states):
                # then the deadlines and indexes written from them are the same too
                assert restored.timers == replayed.timers, f"{name}: deadlines differ"
                assert restored.others == replayed.others, f"{name}: derived keys differ"
            else:
                replay_differs[name] = differ(live, replayed)
    finally:
        await r.aclose()
    # The replay itself does not give every live state back: it applies each patient's events sorted by publication
    # time, hospital inputs first (their records carry their old recorded time, the services' outputs the time they
    # were produced), while the live services applied them as they arrived. Decisions that depend on that order
    # (issue 22, "Decisions that depend on processing order", helper H4) change a plan's version, the order facts
    # were kept in, lab-normalisation's intake counts of late records. The restore gives the live state whatever the
    # order; the replay differs from it in those services only, and in none other.
    unexpected = {name: diff for name, diff in replay_differs.items() if name not in ORDER_DEPENDENT}
    assert not unexpected, unexpected
    return replay_differs


#: what a replay may legitimately give differently from the live state, per service: scoring's `score_ids`, the IDs
#: of the score versions it published, which name the version each replaced (HAZ-22-ORDER-03), so a replay applying
#: the events in another order went through other versions; the decisions themselves are the same
VERSION_IDS: dict[str, tuple[str, ...]] = {"scoring": ("score_ids",)}


def _same_decisions(name: str, a: dict[bytes, bytes], b: dict[bytes, bytes]) -> bool:
    if a == b:
        return True
    drop = VERSION_IDS.get(name)
    if not drop or set(a) != set(b):
        return False

    def strip(raw: bytes) -> dict[str, object]:
        return {k: v for k, v in json.loads(raw).items() if k not in drop}

    return all(strip(a[k]) == strip(b[k]) for k in a)


#: services whose replay of the cohort is not yet the live state (see `restore_equals_replay`)
ORDER_DEPENDENT = frozenset({"lab-normalisation", "systemic-planner", "radiotherapy-planner"})


@contextlib.contextmanager
def private_stack() -> Iterator[tuple[infra.Provisioned, str]]:
    """A broker (of the engine OSTEOCDS_KAFKA selects) and a Redis of its own: the services' own group and topic names,
    without the other tests' records on them."""
    with infra.local_kafka() as kafka, infra.local_redis() as redis_url:
        yield kafka, redis_url


async def test_restore_from_the_changelog_gives_the_live_and_the_replayed_state_of_every_service() -> None:
    with private_stack() as (kafka, redis_url):
        cohort = Cohort(seed=22, patients=4, years=0.5, end=datetime.now(UTC))
        await restore_equals_replay(kafka.url, redis_url, kafka.settings, cohort)


# ---- a toy aggregate: the crash windows ------------------------------------------------------------------------------
class Counted(BaseModel):
    """Every application of an event, even a second one of the same event (which the runtime must prevent)."""

    applied: list[str] = []


def count(state: Counted, event: LabResult) -> tuple[Counted, list[Message]]:
    if event.code.code == ALBUMIN:  # the toy's "forget this patient": the empty aggregate
        return Counted(), []
    return Counted(applied=[*state.applied, str(event.event_id)]), []


@contextlib.asynccontextmanager
async def toy(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], **extra: Any
) -> AsyncIterator[tuple[Topic, Settings]]:
    group = f"changelog-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{group}", LabResult, ("test",), (group,), "changelog test", partitions=1)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, group).model_copy(
        update={"state_changelog": True, **extra}
    )
    await ensure_topics(settings, [topic, changelog_topic(group)])
    yield topic, settings


def instance(topic: Topic, settings: Settings) -> Service:
    svc = Service(settings)
    svc.patient_aggregate((topic,), Counted, count)
    return svc


async def wait_until(check: Any, timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def operator_rebuild(
    topic: Topic, settings: Settings, make: Callable[[Topic, Settings], Service] = instance
) -> RebuildReport:
    """An operator's rebuild of `make`'s service (the toy by default) from Redis's epoch."""
    svc = make(topic, settings)
    await svc.producer.start()
    try:
        return await rebuild(svc, await svc.store.read_epoch())
    finally:
        await svc.producer.stop()
        await svc.redis.aclose()


async def send_keyed(producer: AIOKafkaProducer, topic: Topic, patient: str, *msgs: dict[str, Any]) -> None:
    """`msgs` as JSON on `topic`, keyed by `patient` (one partition, in order)."""
    for msg in msgs:
        await producer.send_and_wait(topic.name, json.dumps(msg, default=str).encode(), key=patient.encode())


async def run_until_committed(
    make: Callable[[Topic, Settings], Service],
    topic: Topic,
    settings: Settings,
    producer: AIOKafkaProducer,
    patient: str,
    offset: int,
    *msgs: dict[str, Any],
) -> None:
    """A live instance of `make`'s service: ready, then `msgs` sent, stopped once its group committed `offset` on
    partition 0; it must not have failed."""
    svc = make(topic, settings)
    await svc.start()
    assert svc._consumer is not None
    consumer, tp = svc._consumer, TopicPartition(topic.name, 0)

    async def ready() -> bool:
        return all((await svc.readiness()).values())

    async def committed() -> bool:
        return bool(await consumer.committed(tp) == offset)

    try:
        await wait_until(ready)
        await send_keyed(producer, topic, patient, *msgs)
        await wait_until(committed)
    finally:
        await svc.stop()
    assert svc.fatal is None, repr(svc.fatal)


async def test_a_crash_between_the_changelog_and_the_commit_applies_nothing_twice(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    """The batch's states reach the changelog, then the process dies before committing its offsets, and Redis is
    lost. The restored state already holds the batch's events; they are delivered again (nothing was committed) and
    must be skipped, not applied a second time."""
    async with toy(kafka_bootstrap, redis_url, kafka_settings) as (topic, settings):
        patient, other = f"pt-{uuid.uuid4().hex[:10]}", f"pt-{uuid.uuid4().hex[:10]}"
        sent = [lab(p, CALCIUM, 2.4, "mmol/L") for p in (patient, other, patient)]
        for msg in sent:  # one batch
            await publish(topic.name, msg)
        crashing = instance(topic, settings)
        await crashing.start()
        assert crashing._consumer is not None

        async def crash(*_: Any, **__: Any) -> None:
            raise RuntimeError("the process dies before the commit")

        crashing._consumer.commit = crash  # before the first batch: it first rebuilds (the first start)
        await wait_until(lambda: asyncio.sleep(0, crashing.fatal is not None))
        await crashing.stop()
        r = aioredis.Redis.from_url(redis_url)
        store = StateStore(r, settings.service_name, 60)
        held, _ = await changelog.read(crashing, changelog_topic(settings.service_name).name)
        assert held.get(patient) is not None and held.get(COMPLETE_KEY) is not None
        assert len(changelog.decode(held[patient] or b"").applied) == 1  # its records were not committed

        await forget(r, settings.service_name)  # the loss
        report = await operator_rebuild(topic, settings)
        assert report.source == "changelog" and report.patients == 2 and report.events == 3

        working = instance(topic, settings)
        await working.start()
        probe = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=settings.service_name)
        await probe.start()
        try:

            async def all_committed() -> bool:
                return bool(await probe.committed(TopicPartition(topic.name, 0)) == len(sent))

            await wait_until(all_committed)
        finally:
            await probe.stop()
        await working.stop()
        assert working.fatal is None, repr(working.fatal)
        mine = await store.load(patient, Counted)
        theirs = await store.load(other, Counted)
        assert mine is not None and theirs is not None
        assert mine.applied == [sent[0]["event_id"], sent[2]["event_id"]]  # once each
        assert theirs.applied == [sent[1]["event_id"]]
        await r.aclose()


async def test_a_tombstone_removes_a_patient_and_an_idle_state_expires(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    """A patient whose state becomes the empty aggregate gets a tombstone: a restore does not bring it back. A state
    idle past STATE_TTL_SECONDS is not restored either (Redis would have let it expire) and is tombstoned."""
    async with toy(kafka_bootstrap, redis_url, kafka_settings, state_ttl_seconds=3) as (topic, settings):
        gone, kept = f"pt-{uuid.uuid4().hex[:10]}", f"pt-{uuid.uuid4().hex[:10]}"
        svc = instance(topic, settings)
        await svc.start()

        async def ready() -> bool:
            return all((await svc.readiness()).values())

        await wait_until(ready)  # consumed live (a start's rebuild replays what the topic holds by then)
        for msg in (
            lab(gone, CALCIUM, 2.4, "mmol/L"),
            lab(kept, CALCIUM, 2.5, "mmol/L"),
            lab(gone, ALBUMIN, 40, "g/L"),
        ):
            await publish(topic.name, msg)
        name = changelog_topic(settings.service_name).name

        async def logged() -> bool:
            held, _ = await changelog.read(svc, name)
            return gone in held and held[gone] is None and held.get(kept) is not None

        await wait_until(logged)
        await svc.stop()
        r = aioredis.Redis.from_url(redis_url)
        await forget(r, settings.service_name)
        report = await operator_rebuild(topic, settings)
        store = StateStore(r, settings.service_name, 60)
        assert report.source == "changelog" and report.patients == 1
        assert await store.load(gone, Counted) is None
        assert await store.load(kept, Counted) is not None

        await asyncio.sleep(3.5)  # kept's state idles past its TTL (Redis expires it too)
        await forget(r, settings.service_name)
        report = await operator_rebuild(topic, settings)
        assert report.source == "changelog" and report.patients == 0
        assert await store.load(kept, Counted) is None
        held, _ = await changelog.read(svc, name)
        assert held[kept] is None  # tombstoned: compaction drops it
        await r.aclose()


async def test_a_replay_applies_each_partitions_records_in_offset_order_whatever_their_timestamps(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], producer: AIOKafkaProducer
) -> None:
    """Several producers write to one partition (scoring, the systemic and the radiotherapy planners all publish a
    patient's recommendations to the same one), so a record stamped earlier can be appended later. The live consumer
    applies a partition in offset order; a rebuild that replays the inputs must too, or the rebuilt state is not the
    live one (a CI run found notification's alerts in another order after a replay sorted by time alone)."""
    async with toy(kafka_bootstrap, redis_url, kafka_settings, state_changelog=False) as (topic, settings):
        patient = f"pt-{uuid.uuid4().hex[:10]}"
        now = datetime.now(UTC)
        sent = [
            lab(patient, CALCIUM, 2.4 + k / 10, "mmol/L", recorded_at=now - timedelta(minutes=10)) for k in range(4)
        ]
        stamps = [now - timedelta(seconds=s) for s in (1, 3, 2, 4)]  # appended in this order: not monotonic
        for msg, stamp in zip(sent, stamps, strict=True):
            await producer.send_and_wait(
                topic.name,
                json.dumps(msg, default=str).encode(),
                key=patient.encode(),
                timestamp_ms=int(stamp.timestamp() * 1000),
            )
        live = instance(topic, settings)
        await live.start()
        r = aioredis.Redis.from_url(redis_url)
        store = StateStore(r, settings.service_name, 60)

        async def applied_all() -> bool:
            state = await store.load(patient, Counted)
            return state is not None and len(state.applied) == len(sent)

        try:
            await wait_until(applied_all)
        finally:
            await live.stop()
        assert live.fatal is None, repr(live.fatal)
        in_offset_order = [msg["event_id"] for msg in sent]
        held = await store.load(patient, Counted)
        assert held is not None and held.applied == in_offset_order

        await forget(r, settings.service_name)
        report = await operator_rebuild(topic, settings)
        assert report.source == "replay" and report.events == len(sent)
        rebuilt = await store.load(patient, Counted)
        assert rebuilt is not None and rebuilt.applied == in_offset_order
        await r.aclose()


async def test_an_incomplete_changelog_is_never_restored(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    """Records written while the changelog was not complete (its `#complete` record tombstoned, as a replay does while
    it rewrites it) are not taken for the whole state: the rebuild replays, then completes the changelog."""
    async with toy(kafka_bootstrap, redis_url, kafka_settings) as (topic, settings):
        patient = f"pt-{uuid.uuid4().hex[:10]}"
        svc = instance(topic, settings)
        await svc.start()
        msg = lab(patient, CALCIUM, 2.4, "mmol/L")
        await publish(topic.name, msg)
        store = StateStore(svc.redis, settings.service_name, 60)
        await wait_until(lambda: store.seen(msg["event_id"]))
        await svc.stop()
        writer = changelog.Writer(settings.service_name)
        probe = instance(topic, settings)
        await probe.producer.start()
        await probe.producer.acknowledged([await probe.producer.tombstone(writer.topic.name, COMPLETE_KEY)])
        await probe.producer.stop()
        r = aioredis.Redis.from_url(redis_url)
        await forget(r, settings.service_name)
        report = await operator_rebuild(topic, settings)
        assert report.source == "replay" and report.patients == 1 and report.changelog_records == 1
        again = await operator_rebuild(topic, settings)
        assert again.source == "changelog" and again.patients == 1
        held = await StateStore(r, settings.service_name, 60).load(patient, Counted)
        assert held is not None and held.applied == [msg["event_id"]]
        await r.aclose()


@pytest.mark.parametrize("empty", [True, False])
def test_encode_writes_the_stored_bytes_or_a_tombstone(empty: bool) -> None:
    state = Counted() if empty else Counted(applied=["e1"])
    dumped = state.model_dump_json().encode()
    now = datetime.now(UTC)
    [change] = changelog.encode(
        "svc",
        {"pt-1": (state, dumped)},
        {"pt-1": None},
        {"pt-1": {"t:0": 7}},
        Counted().model_dump_json().encode(),
        now,
    )
    if empty:
        assert change.value is None
    else:
        assert change.value is not None
        decoded = changelog.decode(change.value.encode())
        assert decoded.state.encode() == dumped and decoded.applied == {"t:0": 7} and decoded.changed_at == now
