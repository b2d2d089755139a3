"""Messages per second through the runtime's pass-through (shared/runtime/service.py: decode, validate, deduplicate,
handler, produce, wait for the acknowledgements, mark processed, commit), next to a raw aiokafka hop (consume,
produce the same bytes, wait for the acknowledgements, commit) on the same broker settings and the same
messages, measured alternately in the same run. The raw hop is the baseline: the ratio is the share of the
client's own speed that the runtime keeps.

    .venv/bin/python bench/runtime.py [--events 20000] [--rounds 5]

Also printed (not in the RESULT line): the same pass-through written as a per-patient aggregate (state in Redis,
outbox), the path every service takes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import BaseModel

from bench.harness import Run, alternate, bench_settings, cli, consume_rate, passthrough, preload, result_line
from contracts.base import Message, derived_id
from contracts.clinical import NormalisedLab
from contracts.hospital import LabResult
from contracts.topics import LAB_RESULTS, LABS_NORMALISED
from devstack import infra
from shared.runtime.service import Service
from shared.settings import Settings

NOW = datetime.now(UTC)


def docs(n: int) -> list[dict[str, object] | bytes]:
    return [
        {
            "event_id": str(uuid.uuid4()),
            "patient_id": f"bench-{i % max(1, n // 10)}",
            "source": "bench",
            "occurred_at": (NOW - timedelta(minutes=n - i)).isoformat(),
            "recorded_at": NOW.isoformat(),
            "result_id": f"r-{i}",
            "code": {"system": "http://loinc.org", "code": "2000-8"},
            "value": 2.2 + (i % 10) / 10,
            "unit": "mmol/L",
        }
        for i in range(n)
    ]


def echo(event: Message) -> Message:
    assert isinstance(event, LabResult) and event.value is not None
    return NormalisedLab(
        event_id=derived_id("echo", event.event_id),
        patient_id=event.patient_id,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        source="bench",
        analyte="total_calcium",
        result_id=event.result_id,
        value=event.value,
        unit="mmol/L",
    )


class Seen(BaseModel):
    n: int = 0


def aggregate_passthrough(settings: Settings) -> Service:
    service = Service(settings)

    def apply(state: Seen, event: LabResult) -> tuple[Seen, Sequence[Message]]:
        return Seen(n=state.n + 1), [echo(event)]

    service.patient_aggregate((LAB_RESULTS,), Seen, apply)
    return service


async def raw_hop(settings: Settings, total: int) -> Run:
    """consume -> produce -> acknowledgements -> commit, with aiokafka alone (same settings as the runtime)."""
    s = settings
    producer = AIOKafkaProducer(
        bootstrap_servers=s.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=s.kafka_enable_idempotence,
        linger_ms=s.kafka_linger_ms,
        max_batch_size=s.kafka_max_batch_bytes,
    )
    consumer = AIOKafkaConsumer(
        LAB_RESULTS.name,
        bootstrap_servers=s.kafka_bootstrap_servers,
        group_id=s.service_name,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=s.kafka_session_timeout_ms,
        heartbeat_interval_ms=s.kafka_heartbeat_interval_ms,
        fetch_max_wait_ms=s.kafka_fetch_max_wait_ms,
        max_poll_records=s.kafka_max_poll_records,
    )
    await producer.start()
    await consumer.start()
    try:
        done, t0 = 0, 0.0
        while done < total:
            batch = await consumer.getmany(timeout_ms=200, max_records=s.kafka_max_poll_records)
            if not batch:
                continue
            if done == 0:
                t0 = time.perf_counter()
            acks = [await producer.send(LABS_NORMALISED.name, r.value, key=r.key) for rs in batch.values() for r in rs]
            await asyncio.gather(*acks)
            await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batch.items()})
            done += len(acks)
        return Run("raw hop", total, time.perf_counter() - t0, {"processed": float(total)})
    finally:
        await consumer.stop()
        await producer.stop()


async def measure(n: int, which: str) -> Run:
    with infra.kafka(prefer_docker=False) as kafka, infra.redis(prefer_docker=False) as redis:
        settings = bench_settings(kafka, redis.url, f"runtime-{uuid.uuid4().hex[:6]}")
        await preload(settings, LAB_RESULTS, docs(n))
        if which == "raw":
            return await raw_hop(settings, n)
        if which == "aggregate":
            return await consume_rate(aggregate_passthrough(settings), LAB_RESULTS, n, which)
        return await consume_rate(passthrough(settings, LAB_RESULTS, echo), LAB_RESULTS, n, which)


async def main(n: int, rounds: int) -> None:
    raw, runtime = await alternate(rounds, lambda: measure(n, "raw"), lambda: measure(n, "pass-through"))
    agg = await measure(n, "aggregate")
    print(f"the median of {rounds} rounds (each a raw hop and a runtime pass-through run back to back)")
    print(f"raw aiokafka hop       {raw.rate:10.1f} msg/s  ({raw.messages} in {raw.seconds:.2f} s)")
    print(f"runtime pass-through   {runtime.rate:10.1f} msg/s  ({runtime.rate / raw.rate:.1%} of the raw hop)")
    print(f"aggregate pass-through {agg.rate:10.1f} msg/s  (one run after the rounds; state, outbox)")
    print(result_line("runtime", runtime.rate, "msg/s", raw.rate))


if __name__ == "__main__":
    cli(__doc__, main, default=20000)
