"""Issue 13: one patient's flood must not delay another patient's critical alert, and a huge message must not
stop the event loop (health checks answer while it is handled). Measured through the real stack."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from contracts.clinical import DeadLetter
from contracts.topics import DEAD_LETTER, HL7V2, LAB_RESULTS, LABS_NORMALISED
from devstack import infra
from devstack.stack import RunningStack
from services.lab_normalisation.app import build
from services.lab_normalisation.settings import LabSettings
from shared.runtime.service import Service
from shared.web.auth import OPS
from tests.conftest import auth, consume_until, lab, outcomes, wait_for
from tests.e2e.test_lab_ingestion import crisis, oru, post_hl7

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # latencies under a flood: alone
PARTITIONS = 6


def partition_of(key: str) -> int:
    return int(DefaultPartitioner()(key.encode(), list(range(PARTITIONS)), list(range(PARTITIONS))))


def same_partition_as(patient: str) -> str:
    while True:
        other = f"pt-{uuid.uuid4().hex[:12]}"
        if partition_of(other) == partition_of(patient):
            return other


def huge_oru(patient_id: str, results: int) -> bytes:
    """One ORU^R01 with `results` calcium OBX (about 1 MB for 21,000), as in the fault-injection run."""
    # OBX-4 sub-IDs: distinct results (two OBX of one identity with different values are refused, issue 24)
    obx = [f"OBX||NM|17861-6^^LN|{i}|9.{i % 10}|mg/dL|||||F" for i in range(1, results + 1)]
    return oru(patient_id, f"BIG-{uuid.uuid4().hex[:6]}", *obx)


async def health_latencies(url: str, stop: asyncio.Event) -> list[float]:
    took: list[float] = []
    async with httpx.AsyncClient(timeout=30) as c:
        while not stop.is_set():
            t0 = time.monotonic()
            assert (await c.get(f"{url}/healthz")).status_code == 200
            took.append(time.monotonic() - t0)
            await asyncio.sleep(0.02)
    return took


async def test_a_21000_obx_message_is_refused_and_health_checks_keep_answering(
    stack: RunningStack, producer: AIOKafkaProducer, kafka_bootstrap: str, patient_id: str
) -> None:
    big = huge_oru(patient_id, 21_000)
    assert 850_000 < len(big) < 1_000_000
    url = stack.urls["lab-normalisation"]
    stop = asyncio.Event()
    probe = asyncio.create_task(health_latencies(url, stop))
    t0 = time.monotonic()
    await producer.send_and_wait(HL7V2.name, big, key=patient_id.encode())
    r = await post_hl7(stack, big)
    assert r.status_code == 400 and "MSA|AR" in r.text and "MAX_RESULTS_PER_MESSAGE=500" in r.text

    def refused(record: object) -> bool:
        letter = DeadLetter.model_validate_json(record.value)  # type: ignore[attr-defined]
        return letter.topic == HL7V2.name and letter.value_size == len(big) and letter.error_type == "Rejected"

    record = await consume_until(kafka_bootstrap, DEAD_LETTER.name, refused, timeout=60)
    took = time.monotonic() - t0
    stop.set()
    latencies = await probe
    letter = DeadLetter.model_validate_json(record.value)
    assert "21000 results in one message, above MAX_RESULTS_PER_MESSAGE=500" in letter.reason
    print(
        f"\n21,000-OBX message refused on HTTP and dead-lettered from Kafka in {took:.2f}s; /healthz answered "
        f"{len(latencies)} times meanwhile, slowest {max(latencies) * 1000:.0f} ms"
    )
    assert max(latencies) < 1.0


async def test_parsing_a_21000_obx_message_leaves_the_event_loop_free(redis_url: str, patient_id: str) -> None:
    """With the per-message limit lifted, the whole 21,000-OBX message is parsed, applied and published; parsing
    and the aggregate run in worker threads, so the event loop (which serves /healthz) keeps turning. On a broker
    of its own: its 42,000 outputs must not flood the shared stack's scoring and planners."""
    with infra.local_tansu() as bootstrap:
        await _parse_big_message(bootstrap, redis_url, patient_id)


async def _parse_big_message(kafka_bootstrap: str, redis_url: str, patient_id: str) -> None:
    kafka_settings = dict(infra.EMBEDDED_KAFKA_SETTINGS)
    group = f"lab-big-{uuid.uuid4().hex[:6]}"
    doc: dict[str, object] = {k.lower(): v for k, v in kafka_settings.items()}
    doc.update(
        service_name=group,
        kafka_bootstrap_servers=kafka_bootstrap,
        redis_url=redis_url,
        max_results_per_message=30_000,
        max_state_bytes=64_000_000,
        intake_patient_results_per_window=0,  # the admission budget lifted too (issue 25): one message, parsed whole
    )
    service, _ = build(LabSettings.model_validate(doc))
    await service.start()
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last - 0.01)
            last = now

    tick = asyncio.create_task(ticker())
    try:
        t0 = time.monotonic()
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        await producer.send_and_wait(HL7V2.name, huge_oru(patient_id, 21_000), key=patient_id.encode())
        await producer.stop()

        async def processed() -> bool:
            return await outcomes_of(service, HL7V2.name, "processed") >= 1

        await wait_for(processed, timeout=240, interval=0.05)
        took = time.monotonic() - t0
    finally:
        stop.set()
        await tick
        await service.stop()
    outputs = sum(s.value for m in service.metrics.outputs.collect() for s in m.samples if s.name.endswith("_total"))
    print(
        f"\n21,000-OBX message parsed, applied and {outputs:.0f} outputs acknowledged in {took:.1f}s; the event "
        f"loop's longest stall meanwhile {max(gaps) * 1000:.0f} ms ({len(gaps)} ticks)"
    )
    assert outputs >= 1
    # on the loop, parsing alone took 11 s here; in threads the loop still waits for the GIL during single long
    # serialisation calls of the 7 MB state and the 30 MB outbox (about 0.3 s each), hence the bound
    assert max(gaps) < 2.5


async def outcomes_of(service: Service, topic: str, outcome: str) -> float:
    return float(service.metrics.messages.labels(service.name, topic, outcome)._value.get())


async def test_a_flood_from_one_patient_does_not_delay_another_patients_crisis_alert(
    stack: RunningStack, producer: AIOKafkaProducer
) -> None:
    """Patient A sends FLOOD calcium results (each one re-derives a corrected calcium, so scoring and the planner
    have work for each); patient B, on the same partitions, then has a hypercalcaemic crisis. B's alert must come
    within a bound, and well before A's flood has even gone through lab-normalisation: B is not queued behind A."""
    flood = 2000
    a = f"pt-{uuid.uuid4().hex[:12]}"
    b = same_partition_as(a)
    drawn = datetime.now(UTC) - timedelta(days=2)
    before_lab = await outcomes(stack, "lab-normalisation", LAB_RESULTS.name, "processed")
    before_scoring = await outcomes(stack, "scoring", LABS_NORMALISED.name, "processed")
    docs = [lab(a, "1751-7", 40, "g/L", occurred_at=drawn)] + [
        lab(a, "2000-8", 2.30, "mmol/L", occurred_at=drawn + timedelta(seconds=i)) for i in range(flood)
    ]
    t0 = time.monotonic()
    acks = [await producer.send(LAB_RESULTS.name, json.dumps(d).encode(), key=a.encode()) for d in docs]
    await asyncio.gather(*acks)
    t_b = time.monotonic()
    for d in (lab(b, "2000-8", 3.5, "mmol/L"), lab(b, "1751-7", 30, "g/L")):
        await producer.send_and_wait(LAB_RESULTS.name, json.dumps(d).encode(), key=b.encode())
    await wait_for(lambda: crisis(stack, b), timeout=120, interval=0.05)
    latency = time.monotonic() - t_b
    lab_then = await outcomes(stack, "lab-normalisation", LAB_RESULTS.name, "processed") - before_lab
    scoring_then = await outcomes(stack, "scoring", LABS_NORMALISED.name, "processed") - before_scoring

    async def first_hop_drained() -> bool:
        done = await outcomes(stack, "lab-normalisation", LAB_RESULTS.name, "processed") - before_lab
        return done >= len(docs) + 2

    await wait_for(first_hop_drained, timeout=300, interval=0.2)
    drain = time.monotonic() - t0
    print(
        f"\nflood={flood}: B's crisis alert {latency:.2f}s after B's results; A's flood through lab-normalisation "
        f"after {drain:.1f}s; when B's alert came, lab-normalisation had processed {lab_then:.0f} and scoring "
        f"{scoring_then:.0f} of the flood's records"
    )
    await quiet(stack)  # let the rest of A's flood through every service before the next test
    assert partition_of(a) == partition_of(b)
    assert latency < 10, latency
    assert latency < drain / 2, (latency, drain)


async def quiet(stack: RunningStack, timeout: float = 300) -> None:
    """Wait until no service has consumed anything for two seconds."""

    async def total() -> float:
        async with httpx.AsyncClient(timeout=5, headers=auth(OPS, "test-ops")) as c:
            responses = [await c.get(f"{url}/metrics") for url in stack.urls.values()]
        texts = [r.raise_for_status().text for r in responses]
        return sum(
            float(line.rsplit(" ", 1)[1])
            for text in texts
            for line in text.splitlines()
            if line.startswith("osteocds_messages_total{")
        )

    deadline = time.monotonic() + timeout
    last = await total()
    while time.monotonic() < deadline:
        await asyncio.sleep(2)
        now = await total()
        if now == last:
            return
        last = now
    raise AssertionError("the stack did not become quiet")
