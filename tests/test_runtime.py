"""The shared runtime against a real broker and a real Redis: state store concurrency, and the
consumer loop's at-least-once contract (no commit before the output is acknowledged)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import TopicPartition
from pydantic import BaseModel

from contracts.base import Message, derived_id
from contracts.clinical import NormalisedLab
from contracts.hospital import LabResult
from contracts.topics import LABS_NORMALISED, Topic
from shared.observability.logging import JsonFormatter
from shared.runtime.kafka import ensure_topics
from shared.runtime.service import Service
from shared.runtime.state import StateStore
from shared.runtime.subscription import Context
from shared.settings import Settings
from tests.conftest import Publish, consume_until, lab, wait_for


class Counter(BaseModel):
    n: int = 0


async def test_transact_loses_no_concurrent_update(redis_url: str) -> None:
    r = aioredis.Redis.from_url(redis_url)
    store = StateStore(r, f"t-{uuid.uuid4().hex[:6]}", 60)

    def inc(c: Counter | None) -> tuple[Counter, int]:
        new = Counter(n=(c.n if c else 0) + 1)
        return new, new.n

    results = await asyncio.gather(*[store.transact("p", Counter, inc) for _ in range(25)])
    assert sorted(results) == list(range(1, 26))
    assert (await store.load("p", Counter)) == Counter(n=25)
    await store.mark_seen(["e1", "e2"])
    assert await store.seen_many(["e1", "e3", "e2"]) == {"e1", "e2"}
    await r.aclose()


def _changelog(topic: str) -> bool:
    """A state changelog topic (issue 22; STATE_CHANGELOG=true on the Apache Kafka tier): written by the runtime
    beside the outputs, left alone by the faults these tests inject into the outputs."""
    return topic.startswith("osteocds.changelog.")


def _settings(kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], group: str) -> Settings:
    doc: dict[str, object] = {k.lower(): v for k, v in kafka_settings.items()}
    doc.update(
        service_name=group,
        kafka_bootstrap_servers=kafka_bootstrap,
        redis_url=redis_url,
        retry_max_attempts=2,
        retry_initial_backoff_s=0.01,
        retry_max_backoff_s=0.02,
    )
    return Settings.model_validate(doc)


class Applied(BaseModel):
    """A toy aggregate that, like the real ones, has no output for an event it already holds."""

    event_ids: list[str] = []


def _normalised(event: LabResult, source: str) -> NormalisedLab:
    assert event.value is not None
    return NormalisedLab(
        event_id=derived_id("rt", event.event_id),
        patient_id=event.patient_id,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        source=source,
        analyte="total_calcium",
        result_id=event.result_id,
        value=event.value,
        unit="mmol/L",
    )


async def test_no_commit_until_output_is_produced(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    group = f"runtime-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{group}", LabResult, ("test",), (group,), "runtime test", partitions=1)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, group)
    msg = lab(f"pt-{group}", "2000-8", 2.4, "mmol/L")
    await ensure_topics(settings, [topic])  # one partition, so the committed offset is on partition 0
    await publish(topic.name, msg)

    # 1. the handler keeps failing on a transient error: the loop gives up without committing
    failing = Service(settings)
    calls: list[str] = []

    @failing.subscriber(topic)
    async def broken(event: LabResult, ctx: Context) -> list[Message]:
        calls.append(str(event.event_id))
        raise redis.exceptions.ConnectionError("redis away")

    await failing.start()
    for _ in range(200):
        if failing.fatal is not None:
            break
        await asyncio.sleep(0.05)
    assert isinstance(failing.fatal, redis.exceptions.ConnectionError)
    assert calls == [msg["event_id"]] * settings.retry_max_attempts
    await failing.stop()

    # 2. a restarted consumer in the same group gets the same record again and produces the output
    working = Service(settings)

    @working.subscriber(topic)
    async def ok(event: LabResult, ctx: Context) -> list[Message]:
        return [_normalised(event, group)]

    await working.start()
    out_id = str(derived_id("rt", msg["event_id"]))
    record = await consume_until(
        kafka_bootstrap, LABS_NORMALISED.name, lambda r: json.loads(r.value)["event_id"] == out_id, timeout=20
    )
    assert record.key == msg["patient_id"].encode()
    # marked once every output is acknowledged, so just after the output is readable (at once on Apache Kafka)
    await wait_for(lambda: working.store.seen(msg["event_id"]), timeout=10)
    await working.stop()  # drains and commits
    assert working.fatal is None, repr(working.fatal)

    check = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await check.start()
    try:
        assert await check.committed(TopicPartition(topic.name, 0)) == 1
    finally:
        await check.stop()


async def test_outputs_survive_a_crash_between_the_state_write_and_the_broker_ack(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    """The aggregate's new state is written, then the broker never acknowledges the output and the service
    stops. The redelivered record finds a state that already holds it (no output from the pure code), so the
    output must come from the patient's outbox, written in the same transaction as the state."""
    group = f"outbox-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{group}", LabResult, ("test",), (group,), "runtime test", partitions=1)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, group)
    msg = lab(f"pt-{group}", "2000-8", 2.4, "mmol/L")
    await ensure_topics(settings, [topic])
    await publish(topic.name, msg)

    def apply(state: Applied, event: LabResult) -> tuple[Applied, list[Message]]:
        if str(event.event_id) in state.event_ids:
            return state, []
        return Applied(event_ids=[*state.event_ids, str(event.event_id)]), [_normalised(event, group)]

    def instance() -> Service:
        svc = Service(settings)
        svc.patient_aggregate((topic,), Applied, apply)
        return svc

    # 1. the broker takes no output: the state is written, the output is not acknowledged, the loop stops
    crashing = instance()

    real_send, real_send_many = crashing.producer.send, crashing.producer.send_many

    async def unacknowledged(message: Any, headers: Any = None) -> asyncio.Future[Any]:
        if _changelog(getattr(message, "topic", "")):  # the broker fails the outputs; the changelog is not an output
            return await real_send(message, headers)
        raise KafkaTimeoutError("no acknowledgement")

    async def unacknowledged_many(outputs: Any) -> list[asyncio.Future[Any]]:
        if all(_changelog(out.topic) for out, _ in outputs):
            return await real_send_many(outputs)
        raise KafkaTimeoutError("no acknowledgement")

    crashing.producer.send = unacknowledged  # type: ignore[method-assign]
    crashing.producer.send_many = unacknowledged_many  # type: ignore[method-assign]
    await crashing.start()
    for _ in range(200):
        if crashing.fatal is not None:
            break
        await asyncio.sleep(0.05)
    assert isinstance(crashing.fatal, KafkaTimeoutError)
    await crashing.stop()
    r = aioredis.Redis.from_url(redis_url)
    store = StateStore(r, group, 60)
    held = await store.load(msg["patient_id"], Applied)
    assert held is not None and held.event_ids == [msg["event_id"]]  # the dangerous moment: state ahead of output
    assert await r.exists(store.patient_key(msg["patient_id"], "outbox"))

    # 2. restarted: the record comes again, the pure code has nothing to add, the outbox sends the output
    working = instance()
    await working.start()
    out_id = str(derived_id("rt", msg["event_id"]))
    await consume_until(
        kafka_bootstrap, LABS_NORMALISED.name, lambda rec: json.loads(rec.value)["event_id"] == out_id, timeout=20
    )
    for _ in range(100):
        if await store.seen(msg["event_id"]):
            break
        await asyncio.sleep(0.05)
    assert await store.seen(msg["event_id"])
    assert not await r.exists(store.patient_key(msg["patient_id"], "outbox"))  # cleared once acknowledged
    await working.stop()
    assert working.fatal is None, repr(working.fatal)
    await r.aclose()


async def _outputs_of(bootstrap: str, patient_id: str) -> list[tuple[str, str]]:
    """(source, event_id) of this patient's normalised labs, in topic order (read to the end, no group)."""
    c = AIOKafkaConsumer(LABS_NORMALISED.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await c.start()
    try:
        found: list[tuple[str, str]] = []
        empty = 0
        while empty < 3:
            batch = await c.getmany(timeout_ms=300)
            empty = 0 if batch else empty + 1
            for records in batch.values():
                for r in records:
                    doc = json.loads(r.value)
                    if doc.get("patient_id") == patient_id:
                        found.append((doc["source"], doc["event_id"]))
        return found
    finally:
        await c.stop()


async def test_pipelined_finish_commits_nothing_past_an_unacknowledged_output_and_keeps_order(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    """Issue 13: a batch's acks and commit overlap the next batch. The broker fails one batch's acknowledgement
    only once the next batch has been processed and sent (the overlap): the loop stops, the committed offset is
    the failed batch's first record (the later batch, although acknowledged, is not committed either), and a
    restarted instance produces every output from there on, in the input order."""
    group = f"pipe-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{group}", LabResult, ("test",), (group,), "runtime test", partitions=1)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, group).model_copy(
        update={"kafka_max_poll_records": 5}
    )
    await ensure_topics(settings, [topic])
    patient = f"pt-{group}"
    sent = [lab(patient, "2000-8", 2.0 + i / 100, "mmol/L") for i in range(30)]
    for m in sent:
        await publish(topic.name, m)
    out_ids = [str(derived_id("rt", m["event_id"])) for m in sent]
    index = {out_id: i for i, out_id in enumerate(out_ids)}

    def instance(source: str) -> Service:
        svc = Service(settings)

        @svc.subscriber(topic)
        async def normalise(event: LabResult, ctx: Context) -> list[Message]:
            return [_normalised(event, source)]

        return svc

    # 1. the batch holding input 10: its acknowledgement fails when the next batch's outputs are queued
    first = instance("first")
    real_send_many = first.producer.send_many
    failing: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    failed_batch: list[int] = []  # input indices of the batch whose ack fails
    overlapped: list[int] = []  # input indices of the next batch, processed and sent while that ack was pending

    async def send_many(outputs: Any) -> list[asyncio.Future[Any]]:
        futures = await real_send_many(outputs)
        if all(_changelog(out.topic) for out, _ in outputs):  # the state changelog (on on Apache Kafka)
            return futures
        batch = [index[json.loads(out.value)["event_id"]] for out, _ in outputs]
        if failed_batch and not overlapped:
            overlapped.extend(batch)
            failing.set_exception(KafkaTimeoutError("no acknowledgement"))
        elif 10 in batch:
            failed_batch.extend(batch)
            return [*futures, failing]
        return futures

    first.producer.send_many = send_many  # type: ignore[method-assign]
    await first.start()
    for _ in range(400):
        if first.fatal is not None:
            break
        await asyncio.sleep(0.05)
    assert isinstance(first.fatal, KafkaTimeoutError)
    await first.stop()
    assert overlapped and min(overlapped) > max(failed_batch)  # the next batch went out before the failure
    check = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await check.start()
    try:
        committed = await check.committed(TopicPartition(topic.name, 0))
    finally:
        await check.stop()
    assert committed == min(failed_batch) <= 10  # every earlier batch committed, nothing from the failed one on
    r = aioredis.Redis.from_url(redis_url)
    store = StateStore(r, group, 60)
    marked = [i for i, m in enumerate(sent) if await store.seen(m["event_id"])]
    assert marked == list(range(min(failed_batch)))  # marked processed only once acknowledged, in order
    await r.aclose()

    # 2. restarted: everything from the committed offset is processed again, in order, and committed
    second = instance("second")
    await second.start()
    out = []
    for _ in range(100):
        out = await _outputs_of(kafka_bootstrap, patient)
        if sum(1 for source, _ in out if source == "second") >= len(sent) - min(failed_batch):
            break
    await second.stop()
    assert second.fatal is None, repr(second.fatal)
    by_first = [index[e] for source, e in out if source == "first"]
    by_second = [index[e] for source, e in out if source == "second"]
    assert by_first == list(range(len(by_first)))  # each instance's outputs in the input order
    assert by_second == list(range(min(failed_batch), len(sent)))
    check = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await check.start()
    try:
        assert await check.committed(TopicPartition(topic.name, 0)) == len(sent)
    finally:
        await check.stop()


async def test_scaling_out_mid_stream_loses_nothing_and_stops_no_instance(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    """An operator starts a second instance while the first is busy: the group rebalances under it. A commit
    for partitions it no longer owns is not an error (their records go to the new owner, where the processed
    IDs make a second delivery harmless). Every record is processed, and both instances keep running."""
    group = f"scale-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{group}", LabResult, ("test",), (group,), "runtime test", partitions=4)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, group).model_copy(
        update={"kafka_max_poll_records": 20}
    )
    await ensure_topics(settings, [topic])
    sent = [lab(f"pt-{group}-{i % 40}", "2000-8", 2.4, "mmol/L") for i in range(600)]
    for m in sent:
        await publish(topic.name, m)

    processed: dict[str, list[str]] = {"a": [], "b": []}

    def instance(name: str) -> Service:
        svc = Service(settings)

        @svc.subscriber(topic)
        async def handle(event: LabResult, ctx: Context) -> list[Message]:
            processed[name].append(str(event.event_id))
            await asyncio.sleep(0.004)  # busy enough to be mid-batch when the group rebalances
            return []

        return svc

    a, b = instance("a"), instance("b")
    await a.start()
    try:
        for _ in range(400):
            if len(processed["a"]) >= 40:
                break
            await asyncio.sleep(0.02)
        await b.start()
        expected = {m["event_id"] for m in sent}
        for _ in range(1500):
            if set(processed["a"]) | set(processed["b"]) >= expected or a.fatal or b.fatal:
                break
            await asyncio.sleep(0.02)
        assert a.fatal is None and b.fatal is None, (a.fatal, b.fatal)
        assert set(processed["a"]) | set(processed["b"]) == expected
        assert processed["b"], "the second instance took over some partitions"
    finally:
        await b.stop()
        await a.stop()
    assert a.fatal is None and b.fatal is None


def test_json_logs_drop_unlisted_fields() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "processed", None, None)
    record.__dict__.update({"patient_id": "pt-secret", "value": 3.3, "topic": "t", "event_id": "e"})
    doc = json.loads(JsonFormatter("svc").format(record))
    assert doc["topic"] == "t" and doc["event_id"] == "e"
    assert "patient_id" not in doc and "value" not in doc and "pt-secret" not in json.dumps(doc)


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"null",
        b"[]",
        b'{"event_id": "SECRET-42"}',
        "SECRET-42 é".encode("latin-1"),
        b'{"event_id": "7f4e2a4e-3f9e-4a57-9d0f-6b1c5a1d2e3f", "patient_id": "SECRET-42", "value": "SECRET-42"}',
    ],
)
def test_decoder_dead_letters_with_reason_that_never_echoes_values(bad: bytes) -> None:
    svc = Service(Settings(service_name="decoder-test"))
    topic = Topic("test.decoder", LabResult, (), (), "")

    @svc.subscriber(topic)
    async def h(event: LabResult, ctx: Context) -> list[Message]:
        return []

    from aiokafka.structs import ConsumerRecord

    rec = ConsumerRecord("test.decoder", 0, 0, int(datetime.now(UTC).timestamp()), 0, None, bad, None, len(bad), 0, [])
    decoded = svc.batches.decode(rec)
    assert decoded.error is not None and decoded.message is None
    error_type, reason = decoded.error
    assert error_type and reason and "SECRET-42" not in reason
