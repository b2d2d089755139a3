"""Consumer lag read from the broker (issue 14): committed offsets against end offsets per consumer group, and the age
of the oldest record not yet committed (its broker timestamp). A service samples its own group (`LagMonitor`, on its
/metrics while it runs); the lag exporter (`python -m shared.runtime.lag`) samples every group, so a stopped service's
growing lag shows too. Labels: service, topic, partition only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge

from shared.settings import Settings
from shared.transport import kafka_client_kwargs

log = logging.getLogger(__name__)


class LagGauges:
    """The broker-side gauges, in a registry of a service or of the lag exporter."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.lag = Gauge(
            "osteocds_consumer_lag",
            "Records not yet committed by the service's consumer group",
            ["service", "topic", "partition"],
            registry=registry,
        )
        self.oldest_age = Gauge(
            "osteocds_oldest_unprocessed_age_seconds",
            "Age of the oldest record not yet committed (0 when none waits)",
            ["service", "topic", "partition"],
            registry=registry,
        )
        self.errors = Counter(
            "osteocds_lag_sample_errors_total", "Lag samples that failed", ["service"], registry=registry
        )


@dataclass(frozen=True)
class LagSample:
    group: str
    topic: str
    partition: int
    lag: int
    oldest_age_s: float


class LagMonitor:
    """Consumer lag of consumer groups, read from the broker: end offset minus committed offset per partition,
    and the age of the first uncommitted record. (The embedded Tansu broker under-reports end offsets of a
    batch produced in one request — notes: "End offsets are wrong" — so there the lag may read low, never
    high; real Kafka is exact.)"""

    def __init__(self, settings: Settings, groups: Mapping[str, Iterable[str]], gauges: LagGauges) -> None:
        self.settings = settings
        self.groups = {g: sorted(set(ts)) for g, ts in groups.items()}
        self.gauges = gauges
        for group in self.groups:  # at 0 from the start: OsteoCDSLagNotMeasured reads its increase (issue 20)
            gauges.errors.labels(group)
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        s = self.settings
        self._admin = AIOKafkaAdminClient(**kafka_client_kwargs(s))
        await self._admin.start()
        self._consumer = AIOKafkaConsumer(**kafka_client_kwargs(s), group_id=None, enable_auto_commit=False)
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()

    async def _partitions(self, topic: str) -> list[TopicPartition]:
        assert self._consumer is not None and self._admin is not None
        parts = self._consumer.partitions_for_topic(topic)
        if not parts:
            await self._consumer.topics()  # refreshes the metadata of every topic (the embedded broker)
            parts = self._consumer.partitions_for_topic(topic) or set()
        if not parts:  # issue 22: Apache Kafka's metadata names no topic the consumer did not ask for
            described = await self._admin.describe_topics([topic])
            parts = {p["partition"] for t in described if t["topic"] == topic for p in t["partitions"]}
        return [TopicPartition(topic, p) for p in sorted(parts)]

    async def sample(self) -> list[LagSample]:
        """Measure every group once and set the gauges."""
        assert self._admin is not None and self._consumer is not None
        consumer = self._consumer
        samples: list[LagSample] = []
        for group, topics in self.groups.items():
            tps = [tp for t in topics for tp in await self._partitions(t)]
            if not tps:
                continue
            committed = await self._admin.list_consumer_group_offsets(group, partitions=tps)
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            waiting: dict[TopicPartition, int] = {}
            for tp in tps:
                meta = committed.get(tp)
                done = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
                lag = max(0, ends[tp] - done)
                if lag:
                    waiting[tp] = done
                samples.append(LagSample(group, tp.topic, tp.partition, lag, 0.0))
            ages = await self._oldest_ages(waiting) if waiting else {}
            for i, s in enumerate(samples):
                tp = TopicPartition(s.topic, s.partition)
                if s.group == group and tp in ages:
                    samples[i] = LagSample(s.group, s.topic, s.partition, s.lag, ages[tp])
        for s in samples:
            labels = (s.group, s.topic, str(s.partition))
            self.gauges.lag.labels(*labels).set(s.lag)
            self.gauges.oldest_age.labels(*labels).set(s.oldest_age_s)
        return samples

    async def _oldest_ages(self, waiting: dict[TopicPartition, int], wait_s: float = 2) -> dict[TopicPartition, float]:
        """Read the first uncommitted record of each partition (a group-less consumer: nothing is committed)."""
        assert self._consumer is not None
        consumer = self._consumer
        consumer.assign(list(waiting))
        for tp, offset in waiting.items():
            consumer.seek(tp, offset)
        ages: dict[TopicPartition, float] = {}
        deadline = time.monotonic() + wait_s
        while len(ages) < len(waiting) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=len(waiting) * 50)
            now = time.time()
            for tp, records in batch.items():
                if tp not in ages and records:
                    ages[tp] = max(0.0, now - records[0].timestamp / 1000)
                    consumer.pause(tp)
        consumer.assign([])
        return ages

    async def run(self, stopping: asyncio.Event, interval_s: float, on_sample: Callable[[], Awaitable[None]]) -> None:
        """Sample every `interval_s` until `stopping`; a failed sample is counted and logged, never fatal."""
        while not stopping.is_set():
            try:
                await self.sample()
                await on_sample()
            except Exception as exc:  # monitoring must never stop a service
                for group in self.groups:
                    self.gauges.errors.labels(group).inc()
                log.warning("lag sample failed", extra={"error_type": type(exc).__name__})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=interval_s)
