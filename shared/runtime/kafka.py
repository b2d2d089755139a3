"""Kafka adapters: topic creation, the producer (acks=all, keyed by patient) and the dead-letter writer."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, UnknownError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord, RecordMetadata

from contracts.base import Message
from contracts.topics import DEAD_LETTER, TOPICS, Topic
from shared.observability.tracing import Headers, current_headers
from shared.runtime import deadletter
from shared.settings import Settings
from shared.transport import kafka_client_kwargs

log = logging.getLogger(__name__)

#: Value model -> the one topic it travels on.
TOPIC_FOR_MODEL: dict[type, Topic] = {t.value: t for t in TOPICS}


async def ensure_topics(settings: Settings, topics: Iterable[Topic] = TOPICS) -> None:
    """Create the topics with explicit partition counts (the embedded broker auto-creates with 4)."""
    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                t.name,
                num_partitions=min(t.partitions, settings.kafka_topic_partitions),
                replication_factor=settings.kafka_replication_factor,
                topic_configs=topic_configs(t, settings),
            )
            for t in topics
            if t.name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another service created them meanwhile
                await admin.create_topics(wanted)
            log.info("topics created", extra={"count": len(wanted)})
    finally:
        await admin.close()


def topic_configs(topic: Topic, settings: Settings) -> dict[str, str]:
    """Per-topic configuration set at creation: the dead-letter topic holds original messages, hence patient
    data, so it is kept no longer than `dead_letter_retention_ms` (README, "Dead letters")."""
    if topic.name == DEAD_LETTER.name:
        return {"retention.ms": str(settings.dead_letter_retention_ms), "cleanup.policy": "delete"}
    if topic.cleanup_policy == "compact":  # issue 22: a changelog keeps the newest record per patient
        return {"cleanup.policy": "compact"}
    return {}


@dataclass(slots=True)
class Outgoing:
    """One output, encoded once: what is sent, and what the outbox keeps until the broker acknowledges it (a plain
    dataclass: built once per output, ten times cheaper than a model; pydantic still reads and writes the outbox)."""

    topic: str
    key: str
    value: str
    schema_id: str

    @classmethod
    def of(cls, message: Message) -> Outgoing:
        # built from our own validated message: no second validation; `model_dump_json()` through the model's
        # pydantic-core serializer directly (the same JSON, without the wrapper: this runs once per output)
        model = type(message)
        value = model.__pydantic_serializer__.to_json(message).decode()
        return cls(TOPIC_FOR_MODEL[model].name, message.patient_id, value, message.schema_id)


_PARTITIONER = DefaultPartitioner()

#: issue 22: what an operator sees instead of aiokafka's bare UnknownError when the broker refuses InitProducerId
IDEMPOTENCE_REFUSED = (
    "the broker refused an idempotent producer (InitProducerId: UnknownError). The embedded broker of "
    "`./osteocds up` (Tansu) has none: run this command with KAFKA_ENABLE_IDEMPOTENCE=false, or with the settings "
    "of the running `up` (`eval $(./osteocds env)`; `./osteocds rebuild <service>` passes them itself), or start "
    "`./osteocds up --kafka apache`. Real Apache Kafka keeps it on (the default)."
)


class IdempotenceRefused(RuntimeError):
    """The broker does not support idempotent producers but KAFKA_ENABLE_IDEMPOTENCE is on."""


@functools.lru_cache(maxsize=65_536)
def _partition(key: bytes, partitions: tuple[int, ...]) -> int:
    """The partition of a key, as aiokafka's default partitioner (murmur2) places it, remembered per patient key
    and partition set (murmur2 is pure Python: a few µs per output)."""
    return int(_PARTITIONER(key, list(partitions), list(partitions)))


class Producer:
    """acks=all producer. Messages are keyed by patient_id, so one patient's events stay ordered."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.service = settings.service_name
        self._producer: AIOKafkaProducer | None = None
        #: issue 14: told of each dead letter (topic, error type), for shared/observability/metrics.py
        self.on_dead_letter: Callable[[str, str], None] | None = None

    @property
    def _p(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("producer not started")
        return self._producer

    async def start(self) -> None:
        s = self.settings
        self._producer = AIOKafkaProducer(  # created inside the running loop, as aiokafka requires
            **kafka_client_kwargs(s),
            max_request_size=s.kafka_max_request_bytes,
            client_id=f"{s.kafka_client_id_prefix}-{s.service_name}",
            acks="all",
            enable_idempotence=s.kafka_enable_idempotence,
            linger_ms=s.kafka_linger_ms,
            max_batch_size=s.kafka_max_batch_bytes,
        )
        try:
            await self._producer.start()
        except UnknownError as exc:
            if not s.kafka_enable_idempotence:
                raise
            raise IdempotenceRefused(IDEMPOTENCE_REFUSED) from exc

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def ready(self) -> bool:
        try:
            await asyncio.wait_for(self._p.client.fetch_all_metadata(), timeout=2)
            return True
        except Exception:
            return False

    async def send(self, message: Message | Outgoing, headers: Headers | None = None) -> asyncio.Future[RecordMetadata]:
        """Queue one message on its registered topic; await the returned future for the broker's ack.
        `headers`: origin time and trace context of the input it derives from (shared/observability/tracing.py)."""
        out = message if isinstance(message, Outgoing) else Outgoing.of(message)
        fut: asyncio.Future[RecordMetadata] = await self._p.send(
            out.topic,
            value=out.value.encode(),
            key=out.key.encode(),
            headers=[
                ("schema-id", out.schema_id.encode()),
                ("producer", self.service.encode()),
                *(headers if headers is not None else current_headers()),
            ],
        )
        return fut

    async def send_many(self, outputs: Sequence[tuple[Outgoing, Headers | None]]) -> list[asyncio.Future[Any]]:
        """Queue many outputs at once: one record batch per partition, filled in order (so one patient's outputs
        keep their order), partitioned like `send` (the default murmur2 partitioner on the key). Much cheaper per
        message than `send`. Each output comes with its headers (None: those of the current request, as `send`).
        Await the returned futures (or `acknowledged`) for the broker's acks."""
        p = self._p
        builders: dict[tuple[str, int], Any] = {}
        futures: list[asyncio.Future[Any]] = []
        parts: dict[str, tuple[int, ...]] = {}
        partition_of: dict[tuple[str, str], tuple[int, bytes]] = {}  # once per patient and topic in the batch
        producer = ("producer", self.service.encode())
        schema_headers: dict[str, tuple[str, bytes]] = {}
        for out, extra in outputs:
            placed = partition_of.get((out.topic, out.key))
            if placed is None:
                if out.topic not in parts:
                    parts[out.topic] = tuple(sorted(await p.partitions_for(out.topic)))
                key = out.key.encode()
                placed = partition_of[(out.topic, out.key)] = (_partition(key, parts[out.topic]), key)
            partition, key = placed
            schema = schema_headers.get(out.schema_id)
            if schema is None:
                schema = schema_headers[out.schema_id] = ("schema-id", out.schema_id.encode())
            headers = [schema, producer, *(extra if extra is not None else current_headers())]
            value = out.value.encode()
            builder = builders.get((out.topic, partition))
            if builder is None or builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                if builder is not None:  # full: queue it and start another
                    futures.append(await p.send_batch(builder, out.topic, partition=partition))
                builder = builders[(out.topic, partition)] = p.create_batch()
                if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    futures.append(await self.send(out, extra))  # larger than a batch: on its own
                    del builders[(out.topic, partition)]
        for (topic, partition), builder in builders.items():
            futures.append(await p.send_batch(builder, topic, partition=partition))
        return futures

    async def acknowledged(self, futures: Sequence[asyncio.Future[Any]]) -> None:
        """Wait for the broker's acknowledgement of every future, sending what is queued at once: the loop waits
        for its outputs before it commits, so lingering (`linger_ms`, meant to fill batches for callers that do
        not wait) would only add latency. Raises the first send error."""
        if not futures:
            return
        acc = getattr(self._p, "_message_accumulator", None)
        flush = getattr(acc, "flush_for_commit", None)  # closes the open batches and wakes the sender
        if flush is not None:
            await asyncio.gather(flush(), *futures)
        else:  # another aiokafka: the batches go when their linger ends
            await asyncio.gather(*futures)

    async def send_raw(
        self, topic: str, value: bytes, key: bytes | None, timestamp_ms: int | None = None
    ) -> asyncio.Future[RecordMetadata]:
        """A payload published as received (raw FHIR or HL7), keyed by patient; it starts its trace and its
        latency clock here (shared/observability/tracing.py)."""
        fut: asyncio.Future[RecordMetadata] = await self._p.send(
            topic, value=value, key=key, timestamp_ms=timestamp_ms, headers=current_headers()
        )
        return fut

    async def tombstone(self, topic: str, key: str) -> asyncio.Future[RecordMetadata]:
        """A record without a value: on a compacted topic it removes the key (issue 22, shared/runtime/changelog.py)."""
        fut: asyncio.Future[RecordMetadata] = await self._p.send(
            topic, value=None, key=key.encode(), headers=[("producer", self.service.encode())]
        )
        return fut

    async def dead_letter(self, record: ConsumerRecord, error_type: str, reason: str) -> asyncio.Future[RecordMetadata]:
        """Park an unprocessable record with its reason and original bytes (cut to fit the request limit:
        shared/runtime/deadletter.py); processing goes on."""
        if self.on_dead_letter is not None:
            self.on_dead_letter(record.topic, error_type)
        letter = deadletter.build(record, self.service, error_type, reason, self.settings)
        fut: asyncio.Future[RecordMetadata] = await self._p.send(
            DEAD_LETTER.name, value=deadletter.encode(letter, self.settings), key=deadletter.key_for(record)
        )
        return fut
