"""Issue 11 end to end through the real broker and Redis: an imaging finding marked entered-in-error withdraws what
it caused (the CLASS-SRE event, the MIRELS-HIGH alert), an amendment re-scores the lesion, and an assessment
entered in error withdraws the pain it reported."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from aiokafka.structs import ConsumerRecord

from contracts.topics import CLINICAL_ASSESSMENTS, IMAGING_FINDINGS, SKELETAL_EVENTS
from devstack.stack import RunningStack
from tests.conftest import Publish, alerts, auth, consume_until, event, wait_for

pytestmark = pytest.mark.e2e


def trochanter(patient_id: str, lesion_id: str, **fields: Any) -> dict[str, Any]:
    finding: dict[str, Any] = {
        "lesion_id": lesion_id,
        "skeletal_site": "femur_trochanteric",
        "lesion_type": "lytic",
        "cortical_involvement_fraction": 0.75,
        "modality": "xray",
    }
    return event(patient_id, **(finding | fields))


def corrects(original: dict[str, Any], status: str, **fields: Any) -> dict[str, Any]:
    fresh = event(original["patient_id"])
    return original | {
        "event_id": fresh["event_id"],
        "recorded_at": fresh["recorded_at"],
        "record_status": status,
        "corrects": original["event_id"],
        **fields,
    }


async def mirels_alerts(stack: RunningStack, patient_id: str, lesion_id: str) -> list[dict[str, Any]]:
    return [a for a in await alerts(stack, patient_id) if a["rule_id"].startswith("MIRELS") and lesion_id in a["title"]]


async def mirels(stack: RunningStack, patient_id: str, lesion_id: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient(timeout=5, headers=auth()) as c:
        r = await c.get(f"{stack.urls['scoring']}/patients/{patient_id}/scores")
    r.raise_for_status()
    return next((s for s in r.json() if s["score"] == "mirels" and s["subject"] == lesion_id), None)


async def mirels_total(stack: RunningStack, patient_id: str, lesion_id: str) -> int | None:
    score = await mirels(stack, patient_id, lesion_id)
    return None if score is None else score["total"]


async def test_entered_in_error_finding_withdraws_its_sre_and_alert_and_an_amendment_rescores(
    stack: RunningStack, publish: Publish, patient_id: str, kafka_bootstrap: str
) -> None:
    pain = [{"lesion_id": lid, "intensity": "functional"} for lid in ("fem-R", "fem-L")]
    assessed = event(patient_id, lesion_pain=pain, life_expectancy_months=12)
    await publish(CLINICAL_ASSESSMENTS.name, assessed)
    wrong = trochanter(patient_id, "fem-R", pathological_fracture=True)
    await publish(IMAGING_FINDINGS.name, wrong)

    def sre_of(record: ConsumerRecord, status: str) -> bool:
        doc = json.loads(record.value)
        return bool(doc["patient_id"] == patient_id and doc["status"] == status)

    sre = json.loads((await consume_until(kafka_bootstrap, SKELETAL_EVENTS.name, lambda r: sre_of(r, "active"))).value)
    assert sre["kind"] == "pathological_fracture" and sre["lesion_id"] == "fem-R"

    async def high_active() -> list[dict[str, Any]]:
        return [a for a in await mirels_alerts(stack, patient_id, "fem-R") if a["status"] == "active"]

    [high] = await wait_for(high_active, timeout=20)
    assert high["rule_id"] == "MIRELS-HIGH"

    await publish(IMAGING_FINDINGS.name, corrects(wrong, "entered-in-error"))
    gone = json.loads(
        (await consume_until(kafka_bootstrap, SKELETAL_EVENTS.name, lambda r: sre_of(r, "withdrawn"))).value
    )
    assert gone["supersedes"] == [sre["event_id"]]

    async def withdrawn() -> bool:
        statuses = {a["recommendation_id"]: a["status"] for a in await mirels_alerts(stack, patient_id, "fem-R")}
        return statuses.get(high["recommendation_id"]) == "withdrawn" and "active" not in statuses.values()

    await wait_for(withdrawn, timeout=20)
    assert await mirels(stack, patient_id, "fem-R") is None  # the lesion is no longer scored

    # an amendment: the other hip re-read as blastic on a fifth of the cortex (3+3+3+3 = 12 -> 3+1+1+3 = 8)
    first = trochanter(patient_id, "fem-L")
    await publish(IMAGING_FINDINGS.name, first)

    async def scored(total: int) -> bool:
        return await mirels_total(stack, patient_id, "fem-L") == total

    await wait_for(lambda: scored(12), timeout=20)
    await publish(
        IMAGING_FINDINGS.name, corrects(first, "amended", lesion_type="blastic", cortical_involvement_fraction=0.2)
    )
    await wait_for(lambda: scored(8), timeout=20)

    # the assessment entered in error: the lesion's pain it reported no longer counts (Mirels incomplete)
    await publish(CLINICAL_ASSESSMENTS.name, corrects(assessed, "entered-in-error"))

    async def pain_withdrawn() -> bool:
        score = await mirels(stack, patient_id, "fem-L")
        return score is not None and score["total"] is None and "pain" in score["missing"]

    await wait_for(pain_withdrawn, timeout=20)
