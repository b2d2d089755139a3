"""Issue 9.7 on every hospital.* topic, end to end through the real broker and Redis: an imaging finding or a
clinical assessment dated in the future is dead-lettered by every service that consumes it, with the field and
the reason; it changes neither the patient's alerts, scores nor plan; a current finding after it still counts."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from aiokafka.structs import ConsumerRecord

from contracts.clinical import DeadLetter
from contracts.topics import CLINICAL_ASSESSMENTS, DEAD_LETTER, IMAGING_FINDINGS
from devstack.stack import RunningStack
from tests.conftest import Publish, alerts, auth, consume_until, event, wait_for

pytestmark = pytest.mark.e2e

FUTURE = datetime(2099, 1, 1, 9, 0, tzinfo=UTC)


def femur(patient_id: str, occurred_at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    finding = {
        "lesion_id": "femur-R",
        "skeletal_site": "femur_trochanteric",
        "lesion_type": "lytic",
        "cortical_involvement_fraction": 0.75,
        "modality": "xray",
    }
    return event(patient_id, occurred_at, **(finding | fields))


def letter(record: ConsumerRecord) -> DeadLetter:
    return DeadLetter.model_validate_json(record.value)


async def dead_letter(bootstrap: str, service: str, doc: dict[str, Any]) -> DeadLetter:
    """The dead letter `service` wrote for the hospital message `doc`."""

    def of(record: ConsumerRecord) -> bool:
        d = letter(record)
        return d.service == service and doc["event_id"].encode() in base64.b64decode(d.value_b64 or "")

    return letter(await consume_until(bootstrap, DEAD_LETTER.name, of, timeout=20))


async def get(stack: RunningStack, svc: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5, headers=auth()) as c:
        return await c.get(f"{stack.urls[svc]}{path}")


async def mirels(stack: RunningStack, patient_id: str) -> dict[str, Any] | None:
    r = await get(stack, "scoring", f"/patients/{patient_id}/scores")
    r.raise_for_status()
    return next((s for s in r.json() if s["score"] == "mirels"), None)


async def active_mirels_high(stack: RunningStack, patient_id: str) -> list[dict[str, Any]]:
    return [a for a in await alerts(stack, patient_id, status="active") if a["rule_id"] == "MIRELS-HIGH"]


async def test_future_dated_finding_and_assessment_are_dead_lettered_and_change_nothing(
    stack: RunningStack, publish: Publish, patient_id: str, kafka_bootstrap: str
) -> None:
    pain = [{"lesion_id": "femur-R", "intensity": "functional", "character": "mechanical"}]
    await publish(CLINICAL_ASSESSMENTS.name, event(patient_id, lesion_pain=pain, life_expectancy_months=12, ecog=1))
    current = femur(patient_id)
    await publish(IMAGING_FINDINGS.name, current)
    [alert] = await wait_for(lambda: active_mirels_high(stack, patient_id), timeout=20)

    # dated 2099: had it been taken, it would be the lesion's newest finding (a healed-looking lesion, Mirels 8)
    future = femur(patient_id, FUTURE, lesion_type="blastic", cortical_involvement_fraction=0.1)
    await publish(IMAGING_FINDINGS.name, future)
    # a nested date in the future: the surgeon's opinion dated 2099 (would decide RT-MSCC / SURG-LE)
    opinion = event(patient_id, ecog=3, surgical_opinion={"operable": False, "on": date(2099, 1, 1).isoformat()})
    await publish(CLINICAL_ASSESSMENTS.name, opinion)

    for service in ("scoring", "systemic-planner", "radiotherapy-planner"):  # every consumer of the topics
        d = await dead_letter(kafka_bootstrap, service, future)
        assert d.topic == IMAGING_FINDINGS.name and d.error_type == "Rejected"
        assert d.reason.startswith("occurred_at is in the future (2099-01-01T09:00Z, received ")
        assert "clock-skew tolerance 5 min" in d.reason
        d = await dead_letter(kafka_bootstrap, service, opinion)
        assert d.topic == CLINICAL_ASSESSMENTS.name and d.reason.startswith("surgical_opinion.on is in the future")

    # nothing changed: the alert is the same, the score still rests on the current finding, the plans never saw them
    assert [a["recommendation_id"] for a in await active_mirels_high(stack, patient_id)] == [alert["recommendation_id"]]
    score = await mirels(stack, patient_id)
    assert score is not None and score["total"] == 12
    assert {c["source_event_id"] for c in score["components"] if c["name"] != "pain"} == {current["event_id"]}
    for svc, path in (("systemic-planner", "plan"), ("radiotherapy-planner", "local-plan")):
        r = await get(stack, svc, f"/patients/{patient_id}/{path}")
        assert r.status_code in (200, 404)
        assert future["event_id"] not in r.text and opinion["event_id"] not in r.text

    # a current finding published after them is processed as usual: the lesion is now scored 8 (3+1+1+3)
    later = femur(patient_id, lesion_type="blastic", cortical_involvement_fraction=0.1)
    await publish(IMAGING_FINDINGS.name, later)

    async def rescored() -> bool:
        s = await mirels(stack, patient_id)
        return s is not None and s["total"] == 8 and not await active_mirels_high(stack, patient_id)

    await wait_for(rescored, timeout=20)
