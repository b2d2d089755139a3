"""Where a batch is decoded (shared/runtime/service.py, shared/limits.DecodePool) and how the runtime's counts are
published (shared/metrics.Metrics): light JSON batches on the event loop, parsers in the threads; counts once
per batch."""

from __future__ import annotations

import asyncio
import threading

from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from contracts.hospital import ImagingFinding
from shared.observability.metrics import Metrics
from shared.runtime.decoding import checks_own_dates, json_decoder, light, not_future
from shared.runtime.limits import DecodePool
from shared.settings import Settings


def _record(i: int) -> ConsumerRecord:
    return ConsumerRecord("t", 0, i, 0, 0, b"k", b"{}", None, 0, 2, [])


def test_plain_json_decoders_are_light_and_parsers_are_not() -> None:
    plain = json_decoder(ImagingFinding)
    assert light(plain)
    assert light(not_future(plain, Settings()))  # the future-date check keeps it light

    def hl7(record: ConsumerRecord) -> BaseModel:
        return ImagingFinding.model_validate_json(record.value)

    assert not light(checks_own_dates(hl7))  # a parser of its own: always in the threads
    assert not light(not_future(hl7, Settings()))


def test_the_pool_runs_a_heavy_batch_in_its_threads_and_a_light_one_on_the_loop() -> None:
    pool = DecodePool(2, "test")

    def where(record: ConsumerRecord) -> tuple[int, str]:
        return record.offset, threading.current_thread().name

    async def run() -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        records = [_record(i) for i in range(10)]
        return await pool.map(where, records), await pool.map(where, records, inline=True)

    try:
        heavy, inline = asyncio.run(run())
    finally:
        pool.close()
    assert [offset for offset, _ in heavy] == [offset for offset, _ in inline] == list(range(10))  # order kept
    assert all(name.startswith("test-decode") for _, name in heavy)
    assert {name for _, name in inline} == {threading.main_thread().name}


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_counts_are_published_once_per_batch_and_the_handler_time_is_the_batch_mean() -> None:
    metrics = Metrics("svc")
    for _ in range(3):
        metrics.count("topic-a", "processed")
    metrics.count("topic-a", "duplicate")
    metrics.output("schema-x")
    for seconds in (0.25, 0.75, 0.5, 0.5):
        metrics.handled("topic-a", seconds)
    assert metrics.consumed == 4  # the plain counter moves at once (benchmarks read it)
    labels = {"service": "svc", "topic": "topic-a"}
    assert _sample(metrics.registry, "osteocds_messages_total", outcome="processed", **labels) is None
    metrics.flush()
    assert _sample(metrics.registry, "osteocds_messages_total", outcome="processed", **labels) == 3
    assert _sample(metrics.registry, "osteocds_messages_total", outcome="duplicate", **labels) == 1
    assert _sample(metrics.registry, "osteocds_outputs_total", service="svc", topic="schema-x") == 1
    assert _sample(metrics.registry, "osteocds_handler_seconds_count", **labels) == 1
    assert _sample(metrics.registry, "osteocds_handler_seconds_sum", **labels) == 0.5  # the mean of the four
    metrics.flush()  # nothing new: nothing added
    assert _sample(metrics.registry, "osteocds_messages_total", outcome="processed", **labels) == 3
    assert _sample(metrics.registry, "osteocds_handler_seconds_count", **labels) == 1
