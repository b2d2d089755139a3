"""HAZ-25-CHAOS-01 at the scoring level: a rebuild never withdraws a critical MIRELS-HIGH alert in force.

The chaos run's chain, made deterministic: scoring (in process, its own `build`, real broker and Redis) applies a
clinical assessment A (the femur lesion's functional pain, a life expectancy of 12 months) and then an imaging finding F
(a lytic trochanteric lesion over 2/3 of the cortex): MIRELS-HIGH, critical (SCORE-MIRELS, MIRELS-HIGH: guideline
L1308-1372, L1324-1328). Only F's partition is committed (the assessments' commit held back, as the fair backlog can);
the process stops, Redis loses the service's state, a new instance rebuilds it at start, and A and F come again, F
first (A's own record, never committed, too). A replay that stopped at the committed offsets rebuilt F alone, decided
a Mirels score without the pain nor the survival ("survival unknown", a warning, the same `alert_key`) and published it
as missing: downstream, the critical alert was withdrawn (then raised again). Here no other wording nor withdrawal of
that key may be published after the critical alert."""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata, TopicPartition

from contracts.topics import CLINICAL_ASSESSMENTS, IMAGING_FINDINGS, RECOMMENDATIONS
from services.scoring.app import build
from services.scoring.settings import ScoringSettings
from shared.runtime import reading
from shared.runtime.rebuild import committed_offsets
from shared.runtime.service import Service
from tests.conftest import event
from tests.test_changelog import forget, wait_until

LESION = "femur-R"
KEY = f"scoring:mirels:{LESION}"


def _settings(kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], name: str) -> ScoringSettings:
    doc: dict[str, object] = {k.lower(): v for k, v in kafka_settings.items()}
    doc.update(
        service_name=name,
        kafka_bootstrap_servers=kafka_bootstrap,
        redis_url=redis_url,
        state_changelog=False,  # the replay is what is under test (a restore from the changelog is another path)
        retry_max_attempts=2,
        retry_initial_backoff_s=0.01,
        retry_max_backoff_s=0.02,
    )
    return ScoringSettings.model_validate(doc)


def _assessment(patient: str) -> dict[str, Any]:
    return event(
        patient,
        lesion_pain=[{"lesion_id": LESION, "intensity": "functional", "character": "mechanical"}],
        life_expectancy_months=12,
        ecog=1,
    )


def _finding(patient: str) -> dict[str, Any]:
    return event(
        patient,
        lesion_id=LESION,
        skeletal_site="femur_trochanteric",
        lesion_type="lytic",
        cortical_involvement_fraction=0.75,
        modality="xray",
        size_cm=3.5,
    )


async def _mirels_outputs(svc: Service, patient: str) -> list[dict[str, Any]]:
    """This scoring instance's recommendations for `patient` that belong to the Mirels decision of the lesion (its
    wordings and their withdrawals), in the topic's order."""
    parts = await reading.partitions(svc.settings, [RECOMMENDATIONS.name])
    ends = await reading.end_offsets(svc.settings, parts)
    records = await reading.read_range(svc.settings, "mirels-test", ends, whole_batches=True)
    mine = [
        json.loads(r.value)
        for r in sorted(records, key=lambda r: (r.partition, r.offset))
        if r.key == patient.encode() and r.value is not None and ("producer", svc.name.encode()) in (r.headers or ())
    ]
    ours: set[str] = set()
    out = []
    for doc in mine:
        if doc.get("alert_key") == KEY or set(map(str, doc.get("supersedes") or ())) & ours:
            ours.add(str(doc["event_id"]))
            out.append(doc)
    return out


async def _until_committed(svc: Service, tp: TopicPartition, past: int) -> None:
    async def done() -> bool:
        return (await committed_offsets(svc, [tp.topic])).get(tp, 0) > past

    await wait_until(done)


async def test_a_rebuild_never_withdraws_a_critical_mirels_alert_in_force(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], producer: AIOKafkaProducer
) -> None:
    name = f"scoring-mirels-{uuid.uuid4().hex[:8]}"
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, name)
    patient = f"pt-{uuid.uuid4().hex[:10]}"
    a, f = _assessment(patient), _finding(patient)

    async def send(topic: str, doc: dict[str, Any]) -> RecordMetadata:
        return await producer.send_and_wait(topic, json.dumps(doc).encode(), key=patient.encode())

    r = aioredis.Redis.from_url(redis_url)
    live, _ = build(settings)
    await live.start()
    try:
        assert live._consumer is not None
        consumer = live._consumer
        commit = consumer.commit

        async def held_back(offsets: dict[TopicPartition, Any]) -> None:  # the assessments' commit never comes
            kept = {tp: at for tp, at in offsets.items() if tp.topic != CLINICAL_ASSESSMENTS.name}
            if kept:
                await commit(kept)

        consumer.commit = held_back
        await wait_until(lambda: _ready(live))
        at_a = await send(CLINICAL_ASSESSMENTS.name, a)
        await wait_until(lambda: live.store.seen(a["event_id"], patient))
        at_f = await send(IMAGING_FINDINGS.name, f)
        tp_a, tp_f = TopicPartition(at_a.topic, at_a.partition), TopicPartition(at_f.topic, at_f.partition)
        await _until_committed(live, tp_f, at_f.offset)  # F applied and committed; A applied, not committed
    finally:
        await live.stop()
    assert live.fatal is None, repr(live.fatal)
    first = await _mirels_outputs(live, patient)
    assert [(d["rule_id"], d["severity"], d["status"]) for d in first] == [("MIRELS-HIGH", "critical", "active")]
    assert (await committed_offsets(live, [tp_a.topic])).get(tp_a, 0) <= at_a.offset

    await forget(r, name)  # Redis loses the service's state
    again, _ = build(settings)
    await again.start()  # no epoch: the state is rebuilt before anything is consumed
    try:
        await wait_until(lambda: _ready(again))
        copy_f = await send(IMAGING_FINDINGS.name, f)  # delivered again, in the other order
        copy_a = await send(CLINICAL_ASSESSMENTS.name, a)
        await _until_committed(again, TopicPartition(copy_f.topic, copy_f.partition), copy_f.offset)
        await _until_committed(again, TopicPartition(copy_a.topic, copy_a.partition), copy_a.offset)
    finally:
        await again.stop()
        await r.aclose()
    assert again.fatal is None, repr(again.fatal)
    after = await _mirels_outputs(again, patient)
    # the critical alert stays the decision in force: no intermediate wording, no withdrawal of its key
    assert [(d["rule_id"], d["severity"], d["status"]) for d in after] == [("MIRELS-HIGH", "critical", "active")], after
    assert after[0]["event_id"] == first[0]["event_id"]


async def _ready(svc: Service) -> bool:
    return all((await svc.readiness()).values())
