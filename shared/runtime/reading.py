"""Reading topics outside any consumer group (rebuild, restore, changelogs): the partitions a broker lists, a
group-less consumer, and the records of a range of offsets. One place, so every reader resets to the earliest record
still held when its start was deleted (retention, compaction) instead of jumping to the end."""

from __future__ import annotations

import asyncio
import heapq
import operator
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import ConsumerRecord, TopicPartition

from shared.settings import Settings
from shared.transport import kafka_client_kwargs

_timestamp = operator.attrgetter("timestamp")
T = TypeVar("T")

#: the longest a read to an end may go without any of its partitions moving forward (review RZ, HAZ-25-HEAL-01): a
#: partition without a leader, or an end no longer there (a topic recreated shorter), waited without end; now a
#: transient error, retried with backoff and logged by the heal
READ_STALL_S = 60.0


class Stall:
    """`check` raises KafkaTimeoutError once the positions of a read have not moved for READ_STALL_S."""

    def __init__(self, purpose: str) -> None:
        self.purpose = purpose
        self.last: dict[TopicPartition, int] = {}
        self.since = time.monotonic()

    @staticmethod
    async def bounded(step: Awaitable[T]) -> T:
        """A seek or a position of the read: waits for the partition's offset, so bounded too (TimeoutError)."""
        return await asyncio.wait_for(step, READ_STALL_S)

    def check(self, positions: Mapping[TopicPartition, int]) -> None:
        now = time.monotonic()
        if positions != self.last:
            self.last, self.since = dict(positions), now
        elif now - self.since >= READ_STALL_S:  # counts only: no topic content
            raise KafkaTimeoutError(
                f"{self.purpose} read: {len(positions)} partition(s) short of their end, none moved for "
                f"{READ_STALL_S:g} s"
            )


def in_publication_order(records: list[ConsumerRecord], sort: bool = False) -> list[ConsumerRecord]:
    """The records merged by publication time, each partition's own order kept: what the live consumer applies and
    what a replay must apply. A partition's timestamps are not monotonic when several producers write to it (the
    three deciding services all publish a patient's recommendations to one partition; a record stamped first may be
    appended second), so a plain sort by time would reorder one patient's events. `sort`: put each partition's
    records in offset order first (a fetch already returns them so). Equal timestamps of two partitions go by topic
    and partition, in a live batch as in a replay (review RO: a batch's fetch order put a tick or an action before or
    after a recommendation of the same millisecond, where the replay put them by topic name)."""
    parts: dict[tuple[str, int], list[ConsumerRecord]] = {}
    for r in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)) if sort else records:
        parts.setdefault((r.topic, r.partition), []).append(r)
    if len(parts) < 2:
        return next(iter(parts.values()), [])
    return list(heapq.merge(*(parts[tp] for tp in sorted(parts)), key=_timestamp))


async def partitions(settings: Settings, topics: Sequence[str]) -> list[TopicPartition]:
    """The topics' partitions, from the broker (a consumer's own metadata may not list them: Apache Kafka answers a
    metadata request naming no topic with none). A topic the broker does not know has none."""
    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings))
    await admin.start()
    try:
        meta = await admin.describe_topics(list(topics))
        return [
            TopicPartition(t["topic"], p["partition"]) for t in meta if not t["error_code"] for p in t["partitions"]
        ]
    finally:
        await admin.close()


@asynccontextmanager
async def consumer(settings: Settings, purpose: str, **options: Any) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer in no group, committing nothing; `purpose` names it in the broker's client ID. An offset
    no longer held (deleted by retention or compaction) resets to the earliest one held."""
    c = AIOKafkaConsumer(
        **kafka_client_kwargs(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id=f"{settings.kafka_client_id_prefix}-{settings.service_name}-{purpose}",
        fetch_max_wait_ms=50,
        **options,
    )
    await c.start()
    try:
        yield c
    finally:
        await c.stop()


async def end_offsets(settings: Settings, parts: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
    """Each partition's end (the offset the next record will get)."""
    if not parts:
        return {}
    async with consumer(settings, "probe") as c:
        return dict(await c.end_offsets(list(parts)))


async def read_range(
    settings: Settings,
    purpose: str,
    ends: Mapping[TopicPartition, int],
    starts: Mapping[TopicPartition, int] | None = None,
    max_partition_fetch_bytes: int = 4 * 1024 * 1024,
    whole_batches: bool = False,
) -> list[ConsumerRecord]:
    """The records from `starts` (default: the earliest held) below `ends`, per partition. `whole_batches`: also the
    records fetched past an end in the batch that holds it (the embedded broker reports the start of a partition's
    last batch as its end: with `end_offsets`, this reads to the real end)."""
    starts = starts or {}
    wanted = {tp: end for tp, end in ends.items() if starts.get(tp, 0) < end}
    if not wanted:
        return []  # (a consumer stopped right after its start raises CancelledError)
    async with consumer(settings, purpose, max_partition_fetch_bytes=max_partition_fetch_bytes) as c:
        c.assign(list(wanted))
        for tp in wanted:
            if starts.get(tp, 0) > 0:
                c.seek(tp, starts[tp])
            else:
                await Stall.bounded(c.seek_to_beginning(tp))
        records: list[ConsumerRecord] = []
        remaining = set(wanted)
        stall = Stall(purpose)
        while remaining:
            batch = await c.getmany(*remaining, timeout_ms=500, max_records=10_000)
            for tp, recs in batch.items():
                records += recs if whole_batches else [r for r in recs if r.offset < wanted[tp]]
            positions = {tp: await Stall.bounded(c.position(tp)) for tp in remaining}
            for tp, at in positions.items():  # its position reached its end (also past records compacted away)
                if at >= wanted[tp]:
                    remaining.discard(tp)
            if remaining:
                stall.check(positions)  # bounded (review RZ)
        return records
