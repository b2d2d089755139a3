"""Issue 4 end to end: plan timelines through the real broker, lab-normalisation (Cockcroft-Gault), scoring
(oligometastatic status) and the planner, to alerts, the plan API and FHIR MedicationRequest drafts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from contracts.topics import CLINICAL_ASSESSMENTS, IMAGING_FINDINGS, LAB_RESULTS, PATIENT_RECORDS, TREATMENT_EVENTS
from shared.stack import RunningStack
from tests.conftest import Publish, alerts, auth, event, lab, outcomes, wait_for, wait_outcomes_above

pytestmark = pytest.mark.e2e
CREATININE = "14682-9"  # µmol/L


async def plan(stack: RunningStack, patient_id: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient(timeout=5, headers=auth()) as c:
        r = await c.get(f"{stack.urls['systemic-planner']}/patients/{patient_id}/plan")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        doc: dict[str, Any] = r.json()
        return doc


def item(p: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    return next((i for i in (p or {}).get("items", []) if i["key"] == key), None)


async def start_patient(publish: Publish, patient_id: str, creatinine_umol_l: float) -> None:
    drawn = datetime.now(UTC) - timedelta(days=2)
    await publish(PATIENT_RECORDS.name, event(patient_id, birth_date="1956-04-02", sex="male", weight_kg=70.0))
    await publish(CLINICAL_ASSESSMENTS.name, event(patient_id, life_expectancy_months=12, primary_controlled=False))
    await publish(
        IMAGING_FINDINGS.name,
        event(patient_id, lesion_id="pelvis-1", skeletal_site="pelvis", lesion_type="lytic", modality="ct", size_cm=3),
    )
    await publish(LAB_RESULTS.name, lab(patient_id, CREATININE, creatinine_umol_l, "umol/L", occurred_at=drawn))


async def test_new_metastasis_then_creatinine_below_30_switches_to_denosumab(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    await start_patient(publish, patient_id, 80.0)  # 70 y, 70 kg: CrCl 75.2 mL/min

    async def zoledronic() -> dict[str, Any] | None:
        i = item(await plan(stack, patient_id), "antiresorptive")
        return i if i and i["orders"] and i["orders"][0]["drug"] == "zoledronic_acid" else None

    za = await wait_for(zoledronic, timeout=15)
    assert za["orders"][0]["dose"] == 4.0 and za["orders"][0]["interval"] == "P1M"  # primary not controlled
    crcl = next(x for x in za["inputs"] if x["name"] == "creatinine_clearance")
    assert crcl["value"] == pytest.approx(75.2) and crcl["source_event_id"]

    # renal function falls: creatinine 250 µmol/L -> CrCl 24.0 mL/min
    await publish(
        LAB_RESULTS.name,
        lab(patient_id, CREATININE, 250.0, "umol/L", occurred_at=datetime.now(UTC) - timedelta(hours=1)),
    )

    async def denosumab() -> dict[str, Any] | None:
        i = item(await plan(stack, patient_id), "antiresorptive")
        return i if i and i["orders"] and i["orders"][0]["drug"] == "denosumab" else None

    deno = await wait_for(denosumab, timeout=15)
    assert deno["rule_id"] == "SYS-DENO" and deno["severity"] == "warning" and "adynamique" in deno["text_fr"]

    async def deno_alert() -> list[dict[str, Any]]:
        return [a for a in await alerts(stack, patient_id, status="active") if a["rule_id"] == "SYS-DENO"]

    await wait_for(deno_alert)
    za_alerts = [a for a in await alerts(stack, patient_id) if a["rule_id"] == "SYS-ZA-DOSE"]
    assert za_alerts and {a["status"] for a in za_alerts} == {"withdrawn"}
    assert (await plan(stack, patient_id) or {})["version"] >= 2

    async with httpx.AsyncClient(timeout=5, headers=auth()) as c:
        r = await c.get(f"{stack.urls['systemic-planner']}/patients/{patient_id}/plan/medication-requests")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    requests = [e["resource"] for e in r.json()["entry"]]
    assert {(x["status"], x["intent"]) for x in requests} == {("draft", "proposal")}
    assert "M05BX04" in {x["medicationCodeableConcept"]["coding"][0]["code"] for x in requests}


async def test_denosumab_stopped_gives_the_rebound_plan(stack: RunningStack, publish: Publish, patient_id: str) -> None:
    await start_patient(publish, patient_id, 80.0)
    start = (date.today() - timedelta(days=400)).isoformat()
    await publish(
        TREATMENT_EVENTS.name,
        event(patient_id, treatment={"kind": "systemic_drug", "drug": "denosumab", "action": "started", "on": start}),
    )
    await publish(
        TREATMENT_EVENTS.name,
        event(
            patient_id,
            treatment={
                "kind": "systemic_drug",
                "drug": "denosumab",
                "action": "stopped",
                "on": date.today().isoformat(),
            },
        ),
    )

    async def rebound() -> list[dict[str, Any]]:
        return [a for a in await alerts(stack, patient_id, status="active") if a["rule_id"] == "SYS-DENO-STOP"]

    [alert] = await wait_for(rebound, timeout=15)
    assert alert["severity"] == "warning" and "rebond" in alert["text_fr"] and "CTX" in alert["text_fr"]


async def test_no_plan_without_bone_disease(stack: RunningStack, publish: Publish, patient_id: str) -> None:
    before = await outcomes(stack, "systemic-planner", CLINICAL_ASSESSMENTS.name, "processed")
    await publish(CLINICAL_ASSESSMENTS.name, event(patient_id, life_expectancy_months=12))

    await wait_outcomes_above(stack, "systemic-planner", CLINICAL_ASSESSMENTS.name, "processed", before)
    async with httpx.AsyncClient(timeout=5, headers=auth()) as c:
        r = await c.get(f"{stack.urls['systemic-planner']}/patients/{patient_id}/plan")
    assert r.status_code == 404
