"""Review RY (HAZ-25-CHAOS-01): a record past the committed offset that the pure code rejects is dead-lettered, even
when the state comes back from a changelog that a replay seeded.

The replay left such a record unmarked ("the live loop dead-letters it when it comes again") but seeded the changelog
with each patient's highest replayed offset per partition (`applied`), that record's included. A restore from that
changelog marked it processed (rebuild.py `held_tail`), so the live loop skipped it: the refused input was never
dead-lettered. A mark capped below it would not do either when a later record of the patient on the same partition is
held by the state: restored, that one is delivered again and applied twice. The rebuild now dead-letters the record
itself before marking it processed. Real broker and Redis (tests/conftest.py), the toy aggregate of
tests/test_changelog.py with a refusal."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from contracts.base import Message
from contracts.clinical import DeadLetter
from contracts.hospital import LabResult
from contracts.topics import DEAD_LETTER, Topic
from shared.errors import Rejected
from shared.runtime import reading
from shared.runtime.service import Service
from shared.runtime.state import StateStore
from shared.settings import Settings
from tests.conftest import lab
from tests.test_changelog import (
    CALCIUM,
    Counted,
    count,
    forget,
    operator_rebuild,
    run_until_committed,
    send_keyed,
    toy,
)

#: the toy refuses a result above this value (a stand-in for any rule's `Rejected`)
REFUSED_ABOVE = 100.0


def count_or_refuse(state: Counted, event: LabResult) -> tuple[Counted, list[Message]]:
    if event.value is not None and event.value > REFUSED_ABOVE:
        raise Rejected("toy: value out of range")
    return count(state, event)


def instance(topic: Topic, settings: Settings) -> Service:
    svc = Service(settings)
    svc.patient_aggregate((topic,), Counted, count_or_refuse)
    return svc


async def letters_for(settings: Settings, topic: str) -> list[DeadLetter]:
    """Every dead letter of a record of `topic`, the dead-letter topic read to its end."""
    parts = await reading.partitions(settings, [DEAD_LETTER.name])
    records = await reading.read_range(settings, "test", await reading.end_offsets(settings, parts), whole_batches=True)
    letters = [DeadLetter.model_validate_json(r.value) for r in records if r.value is not None]
    return [letter for letter in letters if letter.topic == topic]


async def test_a_refused_record_past_the_commit_is_dead_lettered_after_a_restore_from_a_seeded_changelog(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], producer: AIOKafkaProducer
) -> None:
    async with toy(kafka_bootstrap, redis_url, kafka_settings, state_restore="replay") as (topic, settings):
        patient = f"pt-{uuid.uuid4().hex[:10]}"
        first = lab(patient, CALCIUM, 2.4, "mmol/L")
        refused = lab(patient, CALCIUM, REFUSED_ABOVE + 1, "mmol/L")
        after = lab(patient, CALCIUM, 2.5, "mmol/L")  # the same partition, after the refused one: held by the state
        r = aioredis.Redis.from_url(redis_url)
        store = StateStore(r, settings.service_name, 60)
        await run_until_committed(instance, topic, settings, producer, patient, 1, first)
        await send_keyed(producer, topic, patient, refused, after)  # no instance running: never applied nor lettered

        await forget(r, settings.service_name)
        seeded = await operator_rebuild(topic, settings, instance)  # a replay past the commit, seeding the changelog
        assert seeded.source == "replay" and seeded.skipped == 1, seeded  # the refused one
        await forget(r, settings.service_name)  # lost again: restored from the seeded changelog
        restored = await operator_rebuild(topic, settings.model_copy(update={"state_restore": "changelog"}), instance)
        assert restored.source == "changelog", restored

        # the two records past the commit come again
        await run_until_committed(instance, topic, settings, producer, patient, 3)
        held = await store.load(patient, Counted)
        await r.aclose()
        assert held is not None and held.applied == [first["event_id"], after["event_id"]]  # each once
        letters = await letters_for(settings, topic.name)
        assert [(letter.offset, letter.error_type) for letter in letters] == [(1, "Rejected")]  # once, the refused one
