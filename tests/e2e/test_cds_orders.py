"""CDS Hooks `order-sign` through the real notification service, broker and Redis (issue 19): a clearance published on
osteocds.labs.normalised.v1 reaches notification; a zoledronic acid draft at the wrong dose gets the Tableau 2 dose
as an `update` suggestion; the corrected draft signs without a card; the feedback is audited; a browser-based client
(the public sandbox's origin) passes CORS."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from contracts.examples import EXAMPLES
from contracts.lifecycle import OVERRIDE_REASON_SYSTEM, AuditEvent
from contracts.topics import AUDIT, LAB_RESULTS, LABS_NORMALISED
from devstack.stack import RunningStack
from services.notification.cds import ORDER_SIGN_ID
from services.notification.orders_drafts import apply_suggestion
from services.notification.orders_rules import za_band
from shared.web.auth import CLINICIAN
from tests import cds_spec
from tests.conftest import Publish, alerts, auth, consume_until, lab, wait_for
from tests.unit.test_cds_orders import bundle, dose_of, medication, za

pytestmark = pytest.mark.e2e
PREREQ = "SYS-AR-PREREQ"


def clearance(patient_id: str, value: float) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(days=1)
    return {
        **EXAMPLES[LABS_NORMALISED.name],
        "event_id": str(uuid.uuid4()),
        "patient_id": patient_id,
        "occurred_at": at.isoformat(),
        "recorded_at": at.isoformat(),
        "analyte": "creatinine_clearance",
        "result_id": f"crcl:{uuid.uuid4().hex[:8]}",
        "value": value,
        "unit": "mL/min",
        "rule_ids": ["LAB-CRCL"],
        "derived_from": [],
    }


async def test_order_sign_corrects_the_zoledronic_acid_dose(
    stack: RunningStack, publish: Publish, patient_id: str, kafka_bootstrap: str
) -> None:
    base = f"{stack.urls['notification']}/cds-services"
    await publish(LABS_NORMALISED.name, clearance(patient_id, 45.0))
    expected = za_band(45.0, None)
    assert expected is not None and expected.dose_mg is not None
    draft = bundle(za(4.0))
    for entry in draft["entry"]:
        entry["resource"]["subject"] = {"reference": f"Patient/{patient_id}"}
    request: dict[str, Any] = {
        "hookInstance": str(uuid.uuid4()),
        "hook": "order-sign",
        "fhirServer": "https://ehr.example.org/fhir",
        "context": {"userId": "Practitioner/example", "patientId": patient_id, "draftOrders": draft},
    }

    async with httpx.AsyncClient(timeout=15, headers=auth(CLINICIAN, "dr-order")) as c:
        found = cds_spec.Discovery.model_validate((await c.get(base)).json())
        assert ("order-sign", ORDER_SIGN_ID) in [(s.hook, s.id) for s in found.services]

        async def dose_card() -> list[cds_spec.Card]:
            r = await c.post(f"{base}/{ORDER_SIGN_ID}", json=request)
            assert r.status_code == 200, r.text
            cards = cds_spec.CardsResponse.model_validate(r.json()).cards
            return [card for card in cards if card.suggestions]  # once the clearance has reached notification

        [card] = await wait_for(dose_card, timeout=20)
        assert card.indicator == "warning" and card.source.topic is not None
        assert card.source.topic.code == "SYS-ZA-DOSE" and card.source.url is not None
        assert card.links is not None and card.links[0].type == "smart" and patient_id in card.links[0].url
        assert card.suggestions is not None
        suggestion = card.suggestions[0].model_dump(exclude_none=True)
        assert suggestion["actions"][0]["type"] == "update"
        assert dose_of(suggestion["actions"][0]["resource"]) == expected.dose_mg
        passage = await c.get(card.source.url)  # the cited passage, as the card's source.url serves it
        assert passage.status_code == 200 and "Tableau 2" in passage.text

        corrected = copy.deepcopy(request)
        corrected["context"]["draftOrders"] = apply_suggestion(draft, suggestion)
        r = await c.post(f"{base}/{ORDER_SIGN_ID}", json=corrected)
        assert r.status_code == 200, r.text
        left = cds_spec.CardsResponse.model_validate(r.json()).cards
        # the dose is right now; what remains is that no plan says the prerequisites are met (none was published)
        assert [(x.source.topic.code if x.source.topic else None, x.suggestions) for x in left] == [
            ("SYS-AR-PREREQ", None)
        ]

        feedback = copy.deepcopy(cds_spec.FEEDBACK_OVERRIDDEN_EXAMPLE)
        feedback["feedback"][0]["card"] = card.uuid
        feedback["feedback"][0]["overrideReason"]["reason"] = {
            "code": "contraindicated",
            "system": OVERRIDE_REASON_SYSTEM,
        }
        r = await c.post(f"{base}/{ORDER_SIGN_ID}/feedback", json=feedback)
        assert r.status_code == 200 and r.json()["results"] == [{"card": card.uuid, "result": "recorded"}], r.text

        preflight = await c.options(
            f"{base}/{ORDER_SIGN_ID}",
            headers={
                "Origin": "https://sandbox.cds-hooks.org",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"
        other = await c.options(
            f"{base}/{ORDER_SIGN_ID}",
            headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers

    def overridden(record: Any) -> bool:
        e = AuditEvent.model_validate_json(record.value)
        return e.patient_id == patient_id and e.action == "cds-order-overridden:contraindicated"

    audited = AuditEvent.model_validate_json((await consume_until(kafka_bootstrap, AUDIT.name, overridden)).value)
    assert (audited.actor, audited.resource) == ("dr-order", f"POST /cds-services/{ORDER_SIGN_ID}/feedback")


async def test_a_crisis_that_has_ended_no_longer_waives_the_prerequisites(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    """Review RB (issue 19), through lab normalisation, scoring and notification: a corrected calcium > 3,5 mmol/L
    raises LAB-CA-CRISIS (L304-306) and a denosumab order gets the "sauf urgence" information card; a newer normal
    calcium ends the episode, scoring keeps its alert as it was, and the order check no longer waives anything."""
    base = f"{stack.urls['notification']}/cds-services"
    now = datetime.now(UTC)
    for at, calcium in ((now - timedelta(hours=3), 3.9), (now - timedelta(hours=1), 2.3)):
        if calcium < 3.5:  # the crisis first reaches notification, then the normal value follows
            await wait_for(lambda: _crisis(stack, patient_id), timeout=20)
        await publish(LAB_RESULTS.name, lab(patient_id, "1751-7", 40, "g/L", occurred_at=at))
        await publish(LAB_RESULTS.name, lab(patient_id, "2000-8", calcium, "mmol/L", occurred_at=at))
        draft = bundle(medication("XGEVA", "M05BX04", 120, rid="mr-deno"))
        draft["entry"][0]["resource"]["dosageInstruction"][0]["timing"] = {
            "repeat": {"frequency": 1, "period": 4, "periodUnit": "wk"}
        }
        request = {
            "hookInstance": str(uuid.uuid4()),
            "hook": "order-sign",
            "context": {"userId": "Practitioner/example", "patientId": patient_id, "draftOrders": draft},
        }
        want = "info" if calcium > 3.5 else "warning"

        async def prerequisite_card(want: str = want, request: dict[str, Any] = request) -> list[cds_spec.Card]:
            async with httpx.AsyncClient(timeout=15, headers=auth(CLINICIAN, "dr-order")) as c:
                r = await c.post(f"{base}/{ORDER_SIGN_ID}", json=request)
            assert r.status_code == 200, r.text
            cards = cds_spec.CardsResponse.model_validate(r.json()).cards
            return [x for x in cards if x.indicator == want and x.source.topic and x.source.topic.code == PREREQ]

        [card] = await wait_for(prerequisite_card, timeout=20)
        assert ("crise" in card.summary) is (calcium > 3.5), card.summary
    assert [a["status"] for a in await _crisis(stack, patient_id)] == ["active"]  # the alert itself is kept


async def _crisis(stack: RunningStack, patient_id: str) -> list[dict[str, Any]]:
    found = await alerts(stack, patient_id)
    return [a for a in found if a["rule_id"] == "LAB-CA-CRISIS" and a["severity"] == "critical"]
