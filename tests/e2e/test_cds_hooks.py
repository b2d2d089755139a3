"""CDS Hooks 2.0 through the real notification service: discovery, patient-view, feedback → lifecycle."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fhir.resources.R4B.medicationrequest import MedicationRequest

from contracts.examples import EXAMPLES
from contracts.lifecycle import OVERRIDE_REASON_SYSTEM
from contracts.topics import PLANS, RECOMMENDATIONS
from devstack.stack import RunningStack
from services.notification.cds import SERVICE_ID
from shared.web.auth import CLINICIAN
from tests import cds_spec
from tests.conftest import Publish, alerts, auth, wait_for
from tests.e2e.test_alert_lifecycle import recommendation

pytestmark = pytest.mark.e2e


async def test_discovery_patient_view_and_feedback(stack: RunningStack, publish: Publish, patient_id: str) -> None:
    base = f"{stack.urls['notification']}/cds-services"
    plan = {**EXAMPLES[PLANS.name], "patient_id": patient_id, "event_id": str(uuid.uuid4())}
    dose = recommendation(patient_id, "critical", "SYS-ZA-DOSE")
    crisis = recommendation(patient_id, "critical", "LAB-CA-CRISIS")
    await publish(PLANS.name, plan)
    for doc in (dose, crisis):
        await publish(RECOMMENDATIONS.name, doc)

    async with httpx.AsyncClient(timeout=15, headers=auth(CLINICIAN, "dr-ehr")) as c:
        found = cds_spec.Discovery.model_validate((await c.get(base)).json())
        assert found.services[0].id == SERVICE_ID  # then order-sign, order-select (issue 19)

        request = copy.deepcopy(cds_spec.REQUEST_EXAMPLE)
        request["context"]["patientId"] = patient_id

        async def cards() -> dict[str | None, cds_spec.Card]:
            r = await c.post(f"{base}/{SERVICE_ID}", json=request)
            assert r.status_code == 200, r.text
            got = {card.uuid: card for card in cds_spec.CardsResponse.model_validate(r.json()).cards}
            return (
                got if {dose["event_id"], crisis["event_id"]} <= set(got) and got[dose["event_id"]].suggestions else {}
            )

        shown = await wait_for(cards)
        card = shown[dose["event_id"]]
        assert (
            card.indicator == "critical" and EXAMPLES[PLANS.name]["items"][0]["citation"]["lines"] in card.source.label
        )
        assert card.suggestions is not None
        resource = card.suggestions[0].actions[0].resource
        assert resource is not None
        draft = MedicationRequest.model_validate(resource)
        assert (draft.status, draft.intent, draft.subject.reference) == ("draft", "proposal", f"Patient/{patient_id}")

        accepted: dict[str, Any] = copy.deepcopy(cds_spec.FEEDBACK_ACCEPTED_EXAMPLE)
        accepted["feedback"][0]["card"] = dose["event_id"]
        accepted["feedback"][0]["acceptedSuggestions"] = [{"id": card.suggestions[0].uuid}]
        overridden: dict[str, Any] = copy.deepcopy(cds_spec.FEEDBACK_OVERRIDDEN_EXAMPLE)
        overridden["feedback"][0]["card"] = crisis["event_id"]
        overridden["feedback"][0]["overrideReason"]["reason"] = {
            "code": "patient-declined",
            "system": OVERRIDE_REASON_SYSTEM,
            "display": "Refus du patient",
        }
        for body in (accepted, overridden):
            r = await c.post(f"{base}/{SERVICE_ID}/feedback", json=body)
            assert r.status_code == 200 and r.json()["results"][0]["result"] == "applied", r.text
        unknown = copy.deepcopy(cds_spec.FEEDBACK_ACCEPTED_EXAMPLE)  # the spec's card ID: not one of ours
        r = await c.post(f"{base}/{SERVICE_ID}/feedback", json=unknown)
        assert r.status_code == 200 and r.json()["results"][0]["result"] == "ignored"

    listed = {a["recommendation_id"]: a for a in await alerts(stack, patient_id)}
    assert (listed[dose["event_id"]]["status"], listed[dose["event_id"]]["acknowledged_by"]) == (
        "acknowledged",
        "dr-ehr",
    )
    over = listed[crisis["event_id"]]
    assert (over["status"], over["overridden_by"], over["override_reason"], over["override_comment"]) == (
        "overridden",
        "dr-ehr",
        "patient-declined",
        "clinician entered comment",
    )
    assert over["history"][-1]["event"] == "overridden" and over["history"][-1]["role"] == CLINICIAN


async def test_feedback_on_a_card_served_before_redis_lost_its_keys_still_reaches_the_alert(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    """Feedback names only the card; its patient comes from the card index. Notification's keys are lost (its
    epoch with them): the service notices, rebuilds its states from Kafka and, in the same step, the card index,
    so a card served before the loss still acknowledges its alert (before: "ignored", the action lost)."""
    base = f"{stack.urls['notification']}/cds-services"
    crisis = recommendation(patient_id, "critical", "LAB-CA-CRISIS")
    await publish(RECOMMENDATIONS.name, crisis)
    request = copy.deepcopy(cds_spec.REQUEST_EXAMPLE)
    request["context"]["patientId"] = patient_id
    async with httpx.AsyncClient(timeout=15, headers=auth(CLINICIAN, "dr-ehr")) as c:

        async def served() -> bool:
            r = await c.post(f"{base}/{SERVICE_ID}", json=request)
            return r.status_code == 200 and crisis["event_id"] in {card["uuid"] for card in r.json()["cards"]}

        await wait_for(served)

        r = aioredis.Redis.from_url(stack.env["REDIS_URL"])
        try:
            lost = [key async for key in r.scan_iter("osteocds:notification:*")]
            assert any(b":card:" in key for key in lost)
            await r.delete(*lost)
        finally:
            await r.aclose()

        accepted: dict[str, Any] = copy.deepcopy(cds_spec.FEEDBACK_ACCEPTED_EXAMPLE)
        accepted["feedback"][0]["card"] = crisis["event_id"]
        accepted["feedback"][0].pop("acceptedSuggestions", None)

        async def applied() -> bool:
            r = await c.post(f"{base}/{SERVICE_ID}/feedback", json=accepted)
            return r.status_code == 200 and r.json()["results"][0]["result"] == "applied"

        await wait_for(applied, timeout=30)
    listed = {a["recommendation_id"]: a for a in await alerts(stack, patient_id)}
    assert (listed[crisis["event_id"]]["status"], listed[crisis["event_id"]]["acknowledged_by"]) == (
        "acknowledged",
        "dr-ehr",
    )
