"""Review RZ (HAZ-25-CHAOS-01): a batch format's bad part past the committed offset is dead-lettered by the rebuild.

The live loop dead-letters a decoded message's `rejections` (an HL7 message with one bad OBX, a FHIR Bundle with one
bad Observation: lab_normalisation's `Ingested`) as `PartiallyRejected` and applies its good part
(shared/runtime/service.py `patient_aggregate`). The rebuild's replay applied the good part of such a record past the
committed offset and marked it processed, but never dead-lettered its bad part: the live loop then skipped the record
as processed, and the bad result was never put before an operator (review RY's defect, for the partial refusals). The
replay now dead-letters it as the live loop does, before its write marks the record. Real broker and Redis
(tests/conftest.py), the toy aggregate of tests/test_changelog.py with a batch format's decoder."""

from __future__ import annotations

import uuid
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from pydantic import Field

from contracts.hospital import LabResult
from contracts.topics import Topic
from shared.runtime import healing
from shared.runtime.service import Service
from shared.runtime.state import StateStore
from shared.settings import Settings
from tests.conftest import lab
from tests.test_changelog import CALCIUM, Counted, count, forget, send_keyed, toy
from tests.test_changelog import run_until_committed as committed_live
from tests.test_rebuild_rejected_mark import REFUSED_ABOVE, letters_for

BAD_PART = "toy: OBX 2: value out of range"


class Partial(LabResult):
    """A batch format's message: its good part applies, its bad part is listed (as lab_normalisation's `Ingested`)."""

    rejections: list[str] = Field(default_factory=list)


def decode_partial(record: ConsumerRecord) -> Partial:
    message = LabResult.model_validate_json(record.value)
    bad = [BAD_PART] if message.value is not None and message.value > REFUSED_ABOVE else []
    return Partial(**message.model_dump(), rejections=bad)


def instance(topic: Topic, settings: Settings) -> Service:
    svc = Service(settings)
    svc.patient_aggregate((topic,), Counted, count, decode=decode_partial)
    return svc


async def test_a_partly_rejected_record_past_the_commit_is_dead_lettered_as_the_live_loop_does(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], producer: AIOKafkaProducer
) -> None:
    async with toy(kafka_bootstrap, redis_url, kafka_settings, state_changelog=False) as (topic, settings):
        patient = f"pt-{uuid.uuid4().hex[:10]}"
        first = lab(patient, CALCIUM, 2.4, "mmol/L")
        partial_live = lab(patient, CALCIUM, REFUSED_ABOVE + 1, "mmol/L")  # applied by the live loop
        partial_past = lab(patient, CALCIUM, REFUSED_ABOVE + 2, "mmol/L")  # past the commit when Redis is lost
        r = aioredis.Redis.from_url(redis_url)

        async def run_until_committed(offset: int, *msgs: dict[str, Any]) -> None:
            await committed_live(instance, topic, settings, producer, patient, offset, *msgs)

        await run_until_committed(2, first, partial_live)  # the live loop: good part applied, bad part lettered
        await send_keyed(
            producer, topic, patient, partial_past
        )  # no instance running: never applied, never dead-lettered live
        await forget(r, settings.service_name)  # Redis lost

        svc = instance(topic, settings)
        await svc.producer.start()
        try:
            report = await healing.ensure_state(svc)  # the start's rebuild replays past the commit
        finally:
            await svc.producer.stop()
            await svc.redis.aclose()
        assert report is not None and report.dead_lettered == 1, report
        await run_until_committed(3)  # the record past the commit comes again: skipped as processed

        held = await StateStore(r, settings.service_name, 60).load(patient, Counted)
        await r.aclose()
        good = [first["event_id"], partial_live["event_id"], partial_past["event_id"]]
        assert held is not None and held.applied == good  # every good part once
        letters = await letters_for(settings, topic.name)
        # one letter per bad part, the rebuild's as the live loop's (the old replay: none for the one past the commit)
        assert [(letter.offset, letter.error_type, letter.reason) for letter in letters] == [
            (1, "PartiallyRejected", BAD_PART),
            (2, "PartiallyRejected", BAD_PART),
        ], letters
