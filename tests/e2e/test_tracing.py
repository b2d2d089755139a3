"""Issue 14: one input, one connected trace across the services (real broker, real Redis, the services' own
code run in this process so that one in-memory exporter sees every span), with the rule IDs decided and no
patient data."""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contracts.topics import LAB_RESULTS
from devstack import infra
from devstack.stack import SERVICE_MODULES
from shared.observability.tracing import Tracing
from shared.runtime.kafka import ensure_topics
from shared.runtime.service import Service
from shared.settings import Settings
from tests.conftest import lab, wait_for

pytestmark = pytest.mark.e2e

CA_MMOL = "2000-8"
ALBUMIN = "1751-7"


# This test gets a broker and a Redis of its own. On the session's broker the test stack's services also consume
# every input and publish the same (deterministic) outputs: the notification service of this test then sees the
# stack's copy of the crisis recommendation first and, rightly, drops this trace's copy as a duplicate.
@pytest.fixture(scope="module")
def kafka_provisioned_here() -> Iterator[infra.Provisioned]:
    with infra.kafka() as k:
        yield k


@pytest.fixture(scope="module")
def kafka_bootstrap(kafka_provisioned_here: infra.Provisioned) -> str:
    return kafka_provisioned_here.url


@pytest.fixture(scope="module")
def kafka_settings(kafka_provisioned_here: infra.Provisioned) -> dict[str, str]:
    return kafka_provisioned_here.settings


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with infra.redis() as r:
        yield r.url


@pytest.fixture
async def traced(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str]
) -> AsyncIterator[tuple[InMemorySpanExporter, dict[str, str]]]:
    """The five services, each in its own consumer group for this test, all exporting to one in-memory exporter."""
    exporter = InMemorySpanExporter()
    suffix = uuid.uuid4().hex[:6]
    names: dict[str, str] = {}
    services: list[Service] = []
    try:
        for name, (module, _) in SERVICE_MODULES.items():
            mod = importlib.import_module(f"{module}.settings")  # (__main__ imports it only after parsing --help)
            settings_cls: type[Settings] = next(
                v for v in vars(mod).values() if isinstance(v, type) and issubclass(v, Settings) and v is not Settings
            )
            doc: dict[str, object] = {k.lower(): v for k, v in kafka_settings.items()}
            doc.update(
                service_name=f"{name}-trace-{suffix}",
                kafka_bootstrap_servers=kafka_bootstrap,
                redis_url=redis_url,
                kafka_fetch_max_wait_ms=20,
                lag_interval_s=60,
                mllp_port=0,  # lab-normalisation: no MLLP listener here (it needs TLS, or plaintext opted in)
            )
            settings = settings_cls.model_validate(doc)
            service, _app = importlib.import_module(f"{module}.app").build(settings)
            service.tracing = Tracing(settings, exporter)
            await _start_at_the_end(service)
            await service.start()
            services.append(service)
            names[name] = settings.service_name

        async def all_ready() -> bool:
            return all([all((await s.readiness()).values()) for s in services])

        # start-up (topic creation, group joins) is not what this test measures
        await wait_for(all_ready, timeout=120, interval=0.5)
        yield exporter, names
    finally:
        for service in services:
            await service.stop()


async def _start_at_the_end(service: Service) -> None:
    """Commit the new group's offsets at the end of its topics: it skips what earlier tests published."""
    s = service.settings
    await ensure_topics(s, [sub.topic for sub in service.subscriptions.values()])
    c = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap_servers, group_id=s.service_name, enable_auto_commit=False)
    await c.start()
    try:
        await c.topics()  # metadata of every topic
        tps = [TopicPartition(t, p) for t in service.subscriptions for p in c.partitions_for_topic(t) or ()]
        c.assign(tps)
        await c.commit(await c.end_offsets(tps))
    finally:
        await c.stop()


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_one_lab_result_gives_one_connected_trace(
    traced: tuple[InMemorySpanExporter, dict[str, str]],
    producer: AIOKafkaProducer,
    patient_id: str,
) -> None:
    exporter, names = traced
    drawn = datetime.now(UTC) - timedelta(hours=2)

    async def send(doc: dict[str, Any]) -> tuple[int, int]:
        meta = await producer.send_and_wait(LAB_RESULTS.name, json.dumps(doc).encode(), key=patient_id.encode())
        return meta.partition, meta.offset

    def root_of(where: tuple[int, int]) -> list[ReadableSpan]:
        return [
            s
            for s in exporter.get_finished_spans()
            if _attrs(s).get("osteocds.service") == names["lab-normalisation"]
            and _attrs(s).get("messaging.destination.name") == LAB_RESULTS.name
            and (int(_attrs(s)["messaging.destination.partition.id"]), _attrs(s)["messaging.kafka.offset"]) == where
        ]

    first = await send(lab(patient_id, CA_MMOL, 3.30, "mmol/L", occurred_at=drawn))
    await wait_for(lambda: _async(root_of(first)), timeout=60)
    # the albumin completes the corrected calcium: its trace goes to the crisis alert (LAB-CA-CRISIS)
    second = await send(lab(patient_id, ALBUMIN, 28, "g/L", occurred_at=drawn))
    root = (await wait_for(lambda: _async(root_of(second)), timeout=30))[0]
    trace_id = root.context.trace_id

    def in_trace() -> list[ReadableSpan]:
        return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]

    def services_seen() -> set[str]:
        return {str(_attrs(s).get("osteocds.service")) for s in in_trace()}

    expected = {names[n] for n in ("lab-normalisation", "scoring", "systemic-planner", "notification")}
    await wait_for(lambda: _async(expected <= services_seen()), timeout=30)

    def crisis_decided_in(service: str) -> bool:
        return any(
            "LAB-CA-CRISIS" in _attrs(s).get("osteocds.rule_ids", ())
            for s in in_trace()
            if _attrs(s).get("osteocds.service") == names[service]
        )

    # each hop ends its span once its outputs are acknowledged: wait for the crisis hops themselves
    await wait_for(lambda: _async(crisis_decided_in("scoring") and crisis_decided_in("notification")), timeout=30)

    spans = in_trace()
    assert root.parent is None  # the bus sent no trace context: the trace starts at lab-normalisation
    ids = {s.context.span_id for s in spans}
    assert all(s.parent is not None and s.parent.span_id in ids for s in spans if s is not root), "one connected trace"
    scoring = [_attrs(s) for s in spans if _attrs(s)["osteocds.service"] == names["scoring"]]
    assert any("LAB-CA-CRISIS" in a.get("osteocds.rule_ids", ()) for a in scoring)  # one hop per input lab
    notification = [_attrs(s) for s in spans if _attrs(s)["osteocds.service"] == names["notification"]]
    assert any("LAB-CA-CRISIS" in a.get("osteocds.rule_ids", ()) for a in notification)
    assert all(a["osteocds.outcome"] == "processed" for a in map(_attrs, spans))
    # each hop is a child of the hop before it, through the record headers
    hops = {str(_attrs(s)["messaging.destination.name"]) for s in spans}
    assert {"hospital.lab-results.v1", "osteocds.labs.normalised.v1", "osteocds.recommendations.v1"} <= hops

    # no patient data: only these attributes (no key, no value, no event ID), and the patient ID nowhere
    assert {k for s in spans for k in _attrs(s)} <= ALLOWED_ATTRIBUTES
    assert patient_id not in json.dumps([_attrs(s) for s in spans], default=str)


ALLOWED_ATTRIBUTES = {
    "messaging.system",
    "messaging.operation.type",
    "messaging.destination.name",
    "messaging.destination.partition.id",
    "messaging.kafka.offset",
    "messaging.consumer.group.name",
    "osteocds.service",
    "osteocds.outcome",
    "osteocds.rule_ids",
    "osteocds.outputs",
    "osteocds.output_topics",
    "error.type",
}


async def _async(value: Any) -> Any:
    return value
