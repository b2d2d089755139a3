"""Rebuild a service's Redis state from the Kafka topics: Redis is a cache, the topics are the record.

    python -m services.<name> rebuild

Reads every topic the service's patient aggregate subscribes to, from the beginning up to the service's
committed offsets (exactly what the live service had applied), decodes and applies the events with the same
pure code, and writes each patient's aggregate and the processed event IDs. Nothing is published. Run it
with the service stopped (or paused), so that the live consumer does not write at the same time.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord, TopicPartition
from pydantic import BaseModel

from shared.service import Service
from shared.transport import kafka_client_kwargs

log = logging.getLogger(__name__)


@dataclass
class RebuildReport:
    patients: int
    events: int
    skipped: int
    duplicates: int


async def _committed_offsets(service: Service, topics: list[str]) -> dict[TopicPartition, int]:
    """The group's committed offsets, read through the admin API so that nothing joins or leaves the live group
    (explicit partitions: the embedded broker drops the connection without them)."""
    s = service.settings
    admin = AIOKafkaAdminClient(**kafka_client_kwargs(s))
    await admin.start()
    try:
        meta = await admin.describe_topics(topics)
        parts = [TopicPartition(t["topic"], p["partition"]) for t in meta for p in t["partitions"]]
        offsets = await admin.list_consumer_group_offsets(service.name, partitions=parts)
        return {tp: meta_.offset for tp, meta_ in offsets.items() if meta_.offset > 0}
    finally:
        await admin.close()


async def _read_committed(service: Service) -> list[ConsumerRecord]:
    """Every record of the aggregate's topics below the group's committed offsets (a group-less reader)."""
    s = service.settings
    topics = [name for name, sub in service.subscriptions.items() if sub.aggregate is not None]
    ends = await _committed_offsets(service, topics)
    if not ends:
        return []
    consumer = AIOKafkaConsumer(
        **kafka_client_kwargs(s),
        group_id=None,
        enable_auto_commit=False,
        client_id=f"{s.kafka_client_id_prefix}-{service.name}-rebuild",
    )
    await consumer.start()
    try:
        wanted = list(ends)
        consumer.assign(wanted)
        await consumer.seek_to_beginning(*wanted)
        records: list[ConsumerRecord] = []
        remaining = set(wanted)
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, recs in batch.items():
                records += [r for r in recs if r.offset < ends[tp]]
                if recs and recs[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
            for tp in list(remaining):  # a partition whose position already reached its committed offset
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


async def rebuild(service: Service) -> RebuildReport:
    records = await _read_committed(service)
    # per patient, events in the order they were published (per partition order is kept)
    records.sort(key=lambda r: (r.timestamp, r.topic, r.partition, r.offset))
    per_patient: dict[str, list[Any]] = defaultdict(list)
    seen: set[str] = set()
    skipped = duplicates = 0
    model: type[BaseModel] | None = None
    for record in records:
        sub = service.subscriptions[record.topic]
        assert sub.aggregate is not None
        model = sub.aggregate[0]
        try:
            message = sub.decode(record)
            key = sub.idempotency_key(message)
        except Exception:  # it was dead-lettered by the live service too
            skipped += 1
            continue
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        per_patient[message.patient_id].append((sub.aggregate[1], message))  # type: ignore[attr-defined]
    if model is None:
        return RebuildReport(0, 0, skipped, duplicates)
    for patient_id, events in per_patient.items():
        state: Any = model()
        for apply, message in events:
            try:
                state, _ = apply(state, message)
            except Exception:  # rejected by the live service as well: dead-lettered, state unchanged
                skipped += 1
        await service.redis.set(
            service.store.patient_key(patient_id), state.model_dump_json(), ex=service.store.state_ttl
        )
        if service.timers is not None:  # the patient's next deadline, as the live service writes it
            await service.timers.schedule(patient_id, service.due(state))
    await service.store.mark_seen(sorted(seen))
    report = RebuildReport(len(per_patient), len(seen), skipped, duplicates)
    log.info("rebuild done", extra={"count": report.events})
    return report
