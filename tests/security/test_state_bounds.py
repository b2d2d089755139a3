"""Issue 13, bounded state and the dead-letter topic: every per-patient key the services write expires, an ack
for an unknown patient leaves no key, a patient's aggregate cannot grow past MAX_STATE_BYTES, and the dead-letter
topic (original messages: patient data) is created with a retention."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from pydantic import BaseModel

from contracts.base import Message
from contracts.clinical import DeadLetter
from contracts.hospital import LabResult
from contracts.topics import DEAD_LETTER, LAB_RESULTS, Topic
from devstack.stack import RunningStack
from shared.runtime.kafka import ensure_topics
from shared.runtime.service import Service
from shared.settings import Settings
from tests.conftest import Publish, auth, consume_until, lab, wait_for
from tests.e2e.test_lab_ingestion import crisis

pytestmark = pytest.mark.e2e


async def test_an_ack_for_an_unknown_patient_leaves_no_key(stack: RunningStack, patient_id: str) -> None:
    async with httpx.AsyncClient(timeout=5, headers=auth()) as c:
        r = await c.post(f"{stack.urls['notification']}/alerts/{uuid.uuid4()}/ack", json={"patient_id": patient_id})
    assert r.status_code == 404
    r2 = aioredis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        assert [k async for k in r2.scan_iter(match=f"*{patient_id}*")] == []
    finally:
        await r2.aclose()


async def test_every_key_written_for_a_patient_expires(stack: RunningStack, publish: Publish, patient_id: str) -> None:
    """A crisis goes through the five services; then every Redis key holding this patient's data (states,
    outboxes) and every processed-event marker has a time to live."""
    await publish(LAB_RESULTS.name, lab(patient_id, "2000-8", 3.5, "mmol/L"))
    await publish(LAB_RESULTS.name, lab(patient_id, "1751-7", 30, "g/L"))
    await wait_for(lambda: crisis(stack, patient_id), timeout=30)
    r = aioredis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        keys = [k async for k in r.scan_iter(match=f"*{patient_id}*")]
        namespaces = {k.decode().split(":")[1] for k in keys}
        assert {"lab-normalisation", "scoring", "notification"} <= namespaces, namespaces
        seen = [k async for k in r.scan_iter(match="osteocds:*:seen:*", count=1000)]
        assert seen
        async with r.pipeline(transaction=False) as pipe:
            for k in [*keys, *seen]:
                pipe.ttl(k)
            ttls = await pipe.execute()
        forever = [k for k, t in zip([*keys, *seen], ttls, strict=True) if t < 0]
        assert forever == []
    finally:
        await r.aclose()


class Notes(BaseModel):
    notes: list[str] = []


async def test_a_patient_state_cannot_grow_past_the_limit(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    group = f"bounded-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{group}", LabResult, ("test",), (group,), "state bound test", partitions=1)
    doc: dict[str, object] = {k.lower(): v for k, v in kafka_settings.items()}
    doc.update(service_name=group, kafka_bootstrap_servers=kafka_bootstrap, redis_url=redis_url, max_state_bytes=3000)
    settings = Settings.model_validate(doc)
    await ensure_topics(settings, [topic])

    def grow(state: Notes, event: LabResult) -> tuple[Notes, list[Message]]:
        return Notes(notes=[*state.notes, "n" * 100]), []

    svc = Service(settings)
    svc.patient_aggregate((topic,), Notes, grow)
    flooding, other = f"pt-{group}-a", f"pt-{group}-b"
    for i in range(60):
        await publish(topic.name, lab(flooding, "2000-8", 2.4, "mmol/L"))
        if i == 59:
            await publish(topic.name, lab(other, "2000-8", 2.4, "mmol/L"))
    await svc.start()
    try:

        async def both_seen() -> bool:
            return svc.metrics.consumed >= 61

        await wait_for(both_seen, timeout=30)
        raw = await svc.redis.get(svc.store.patient_key(flooding))
        assert raw is not None and len(raw) <= 3000
        held = Notes.model_validate_json(raw).notes
        assert len(Notes(notes=[*held, "n" * 100]).model_dump_json()) > 3000  # filled up to the limit, not past it
        assert await svc.store.load(other, Notes) == Notes(notes=["n" * 100])  # the other patient is not affected

        def refused(record: object) -> bool:
            letter = DeadLetter.model_validate_json(record.value)  # type: ignore[attr-defined]
            return letter.topic == topic.name and "MAX_STATE_BYTES=3000" in letter.reason

        await consume_until(kafka_bootstrap, DEAD_LETTER.name, refused, timeout=20)
    finally:
        await svc.stop()


async def test_the_dead_letter_topic_has_a_retention(stack: RunningStack, kafka_bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, DEAD_LETTER.name)])
        [resource] = response.resources
        configs = {entry[0]: entry[1] for entry in resource[4]}
    finally:
        await admin.close()
    assert configs["retention.ms"] == str(Settings().dead_letter_retention_ms)
    assert json.loads(configs["retention.ms"]) <= 30 * 24 * 3600 * 1000
