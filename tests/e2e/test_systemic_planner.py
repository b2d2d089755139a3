"""Issues 4 and 9 end to end: plan timelines through the real broker, lab-normalisation (Cockcroft-Gault,
corrected calcium), scoring (oligometastatic status, hypercalcaemia SRE) and the planner, to alerts, the plan API
and FHIR MedicationRequest drafts; and the planner's clock (a review firing with no new event, across a restart)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from contracts.topics import (
    CARE_EVENTS,
    CLINICAL_ASSESSMENTS,
    CLOCK_SYSTEMIC_PLANNER,
    IMAGING_FINDINGS,
    LAB_RESULTS,
    PATIENT_RECORDS,
    RECOMMENDATIONS,
    TREATMENT_EVENTS,
)
from devstack.stack import RunningStack
from services.systemic_planner.app import build
from services.systemic_planner.domain import SystemicState, current_plan
from services.systemic_planner.settings import SystemicSettings
from shared.runtime.service import Service
from tests.conftest import Publish, alerts, auth, consume_until, event, lab, outcomes, wait_for, wait_outcomes_above

pytestmark = pytest.mark.e2e
CREATININE = "14682-9"  # µmol/L
VITAMIN_D = "1989-3"  # ng/mL
CALCIUM = "2000-8"  # mmol/L
ALBUMIN = "1751-7"  # g/L


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


async def start_patient(publish: Publish, patient_id: str, creatinine_umol_l: float, ready: bool = True) -> None:
    """A patient with a bone metastasis and a creatinine; `ready`: vitamin D normal and a recent dental assessment
    with an orthopantomogram (SYS-AR-PREREQ met)."""
    drawn = datetime.now(UTC) - timedelta(days=2)
    if ready:
        await publish(LAB_RESULTS.name, lab(patient_id, VITAMIN_D, 35.0, "ng/mL", occurred_at=drawn))
        await publish(TREATMENT_EVENTS.name, dental_assessment(patient_id))
    await publish(PATIENT_RECORDS.name, event(patient_id, birth_date="1956-04-02", sex="male", weight_kg=70.0))
    await publish(CLINICAL_ASSESSMENTS.name, event(patient_id, life_expectancy_months=12, primary_controlled=False))
    await publish(
        IMAGING_FINDINGS.name,
        event(patient_id, lesion_id="pelvis-1", skeletal_site="pelvis", lesion_type="lytic", modality="ct", size_cm=3),
    )
    await publish(LAB_RESULTS.name, lab(patient_id, CREATININE, creatinine_umol_l, "umol/L", occurred_at=drawn))


def dental_assessment(patient_id: str) -> dict[str, Any]:
    on = (date.today() - timedelta(days=5)).isoformat()
    return event(patient_id, treatment={"kind": "dental", "action": "assessment", "orthopantomogram": True, "on": on})


async def test_sys_deno_creatinine_below_30_gives_specialist_advice_not_an_order(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    await start_patient(publish, patient_id, 80.0)  # 70 y, 70 kg: CrCl 75.2 mL/min

    async def zoledronic() -> dict[str, Any] | None:
        i = item(await plan(stack, patient_id), "antiresorptive")
        return i if i and i["orders"] and i["orders"][0]["drug"] == "zoledronic_acid" else None

    za = await wait_for(zoledronic, timeout=15)
    assert za["orders"][0]["dose"] == 4.0 and za["orders"][0]["interval"] == "P1M"  # primary not controlled
    crcl = next(x for x in za["inputs"] if x["name"] == "creatinine_clearance")
    assert crcl["value"] == pytest.approx(70 * 70 / (0.815 * 80)) and crcl["source_event_id"]  # unrounded

    # renal function falls: creatinine 250 µmol/L -> CrCl 24.0 mL/min
    await publish(
        LAB_RESULTS.name,
        lab(patient_id, CREATININE, 250.0, "umol/L", occurred_at=datetime.now(UTC) - timedelta(hours=1)),
    )

    async def advice() -> dict[str, Any] | None:
        i = item(await plan(stack, patient_id), "antiresorptive")
        return i if i and i["rule_id"] == "SYS-DENO" else None

    deno = await wait_for(advice, timeout=15)
    assert deno["orders"] == [] and deno["severity"] == "warning" and "adynamique" in deno["text_fr"]

    async def deno_alert() -> list[dict[str, Any]]:
        return [a for a in await alerts(stack, patient_id, status="active") if a["rule_id"] == "SYS-DENO"]

    await wait_for(deno_alert)
    za_alerts = [a for a in await alerts(stack, patient_id) if a["rule_id"] == "SYS-ZA-DOSE"]
    assert {a["status"] for a in za_alerts} <= {"withdrawn"}  # withdrawn, or never shown (settle window)
    assert (await plan(stack, patient_id) or {})["version"] >= 2

    codes = await medication_codes(stack, patient_id)
    assert "M05BX04" not in codes and "M05BA08" not in codes  # no pre-filled anti-resorptive at CrCl < 30


async def medication_codes(stack: RunningStack, patient_id: str) -> set[str]:
    async with httpx.AsyncClient(timeout=5, headers=auth()) as c:
        r = await c.get(f"{stack.urls['systemic-planner']}/patients/{patient_id}/plan/medication-requests")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    requests = [e["resource"] for e in r.json().get("entry", [])]
    assert {(x["status"], x["intent"]) for x in requests} <= {("draft", "proposal")}
    return {x["medicationCodeableConcept"]["coding"][0]["code"] for x in requests}


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


async def test_sys_ar_prereq_no_order_while_dental_assessment_to_do(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    await start_patient(publish, patient_id, 80.0, ready=False)
    await publish(LAB_RESULTS.name, lab(patient_id, VITAMIN_D, 35.0, "ng/mL"))

    async def held() -> dict[str, Any] | None:
        i = item(await plan(stack, patient_id), "antiresorptive")
        return i if i and i["rule_id"] == "SYS-AR-PREREQ" else None

    waiting = await wait_for(held, timeout=15)
    assert waiting["orders"] == [] and waiting["status"] == "to_do" and "bucco-dentaire" in waiting["text_fr"]
    assert "M05BA08" not in await medication_codes(stack, patient_id)

    await publish(TREATMENT_EVENTS.name, dental_assessment(patient_id))

    async def ordered() -> dict[str, Any] | None:
        i = item(await plan(stack, patient_id), "antiresorptive")
        return i if i and i["orders"] else None

    za = await wait_for(ordered, timeout=15)
    assert za["orders"][0]["drug"] == "zoledronic_acid" and za["orders"][0]["waived_prerequisites"] == []
    assert "M05BA08" in await medication_codes(stack, patient_id)


async def calcium(publish: Publish, patient_id: str, total: float, albumin: float, at: datetime, **kw: Any) -> None:
    await publish(LAB_RESULTS.name, lab(patient_id, CALCIUM, total, "mmol/L", occurred_at=at, **kw))
    await publish(LAB_RESULTS.name, lab(patient_id, ALBUMIN, albumin, "g/L", occurred_at=at, **kw))


async def test_sys_vitd_corr_crisis_no_vitamin_d_loading(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    """A current crisis (corrected calcium 3.4 + (40 - 30)/40 = 3.65 mmol/L): no vitamin D loading nor calcium
    advice, and the anti-resorptive is drafted with the waived prerequisites on the order."""
    await start_patient(publish, patient_id, 80.0, ready=False)
    await publish(LAB_RESULTS.name, lab(patient_id, VITAMIN_D, 12.0, "ng/mL"))
    await calcium(publish, patient_id, 3.4, 30.0, datetime.now(UTC) - timedelta(minutes=30))

    async def held() -> dict[str, Any] | None:
        i = item(await plan(stack, patient_id), "vitamin-d")
        return i if i and i["status"] == "warning" and not i["orders"] else None

    vit_d = await wait_for(held, timeout=15)
    assert "pas de recharge en vitamine D" in vit_d["text_fr"] and "mg/j" not in vit_d["text_fr"]
    assert "calcémie corrigée normale" in vit_d["what_would_change_fr"]
    assert "A11CC05" not in await medication_codes(stack, patient_id)  # no cholecalciferol draft

    async def waived() -> dict[str, Any] | None:
        i = item(await plan(stack, patient_id), "antiresorptive")
        return i if i and i["orders"] and i["orders"][0]["waived_prerequisites"] else None

    za = await wait_for(waived, timeout=15)
    assert set(za["orders"][0]["waived_prerequisites"]) == {"vitamin_d", "dental_assessment"}


async def test_sys_ar_prereq_late_historical_crisis_waives_nothing(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    """A crisis drawn yesterday arrives after today's normal calcium: no alert from scoring (history), and in the
    planner nothing is waived and no order is drafted without the prerequisites."""
    await start_patient(publish, patient_id, 80.0, ready=False)
    await calcium(publish, patient_id, 2.3, 40.0, datetime.now(UTC) - timedelta(hours=1))
    await calcium(publish, patient_id, 3.6, 40.0, datetime.now(UTC) - timedelta(hours=26))

    async def crisis_known() -> dict[str, Any] | None:
        p = await plan(stack, patient_id)
        start = item(p, "antiresorptive-start")
        sres = [x for x in (start or {}).get("inputs", []) if x["name"] == "sre:hypercalcaemia"]
        return p if sres else None

    p = await wait_for(crisis_known, timeout=20)  # the SRE from scoring reached the planner
    prereq = item(p, "prerequisites")
    assert prereq is not None and all(c["status"] != "waived" for c in prereq["checks"])
    ar = item(p, "antiresorptive")
    assert ar is not None and ar["orders"] == []
    assert "M05BA08" not in await medication_codes(stack, patient_id)


async def test_sys_ar_prereq_crisis_expiring_fires_with_no_new_event(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    """The planner's clock on the live stack: a crisis drawn 72 h minus a few seconds ago waives the prerequisites;
    when it stops being current (72 h window), the plan changes with no new event (a clock tick)."""
    await start_patient(publish, patient_id, 80.0, ready=False)
    drawn = datetime.now(UTC) - timedelta(hours=72) + timedelta(seconds=20)
    await calcium(publish, patient_id, 3.4, 30.0, drawn)

    async def waived() -> dict[str, Any] | None:
        i = item(await plan(stack, patient_id), "antiresorptive")
        return i if i and i["orders"] and i["orders"][0]["waived_prerequisites"] else None

    await wait_for(waived, timeout=18)
    before = await outcomes(stack, "systemic-planner", CLOCK_SYSTEMIC_PLANNER.name, "processed")

    async def expired() -> dict[str, Any] | None:
        i = item(await plan(stack, patient_id), "antiresorptive")
        return i if i and i["rule_id"] == "SYS-AR-PREREQ" and not i["orders"] else None

    await wait_for(expired, timeout=45)
    assert await outcomes(stack, "systemic-planner", CLOCK_SYSTEMIC_PLANNER.name, "processed") > before


class Clock:
    """A wall clock the test moves forward (the service reads it for `now` and for its timers)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_sys_review_2y_fires_at_its_date_with_no_new_event_across_a_restart(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish, patient_id: str
) -> None:
    """The 2-year review falls due tomorrow. The planner stops (its deadline is in Redis, written with the state);
    time passes; a new instance fires the deadline (a clock tick through the broker and the normal per-patient
    path) and the review turns overdue and alerts, although no event arrived for this patient."""
    settings = SystemicSettings.model_validate(
        {
            **{k.lower(): v for k, v in kafka_settings.items()},
            "service_name": f"systemic-clock-{uuid.uuid4().hex[:8]}",  # own group, Redis namespace, clock topic
            "kafka_bootstrap_servers": kafka_bootstrap,
            "redis_url": redis_url,
            "kafka_session_timeout_ms": 3000,
            "kafka_heartbeat_interval_ms": 500,
            "kafka_fetch_max_wait_ms": 50,
            "timer_poll_interval_s": 0.2,
        }
    )
    clock = Clock(datetime.now(UTC))
    # due tomorrow in the hospital's time zone (the planner's day; the machine's date differs near midnight)
    today = clock().astimezone(ZoneInfo(settings.hospital_timezone)).date()
    started = today.replace(year=today.year - 2) + timedelta(days=1)
    await publish(IMAGING_FINDINGS.name, event(patient_id, lesion_id="f1", skeletal_site="femur_shaft", modality="ct"))
    await publish(CLINICAL_ASSESSMENTS.name, event(patient_id, life_expectancy_months=12))
    await publish(
        TREATMENT_EVENTS.name,
        event(
            patient_id,
            treatment={"kind": "systemic_drug", "drug": "zoledronic_acid", "action": "started", "on": str(started)},
        ),
    )

    async def review(service: Service) -> dict[str, Any] | None:
        state = await service.store.load(patient_id, SystemicState)
        p = None if state is None else current_plan(state, patient_id, at=settings.as_of(clock()))
        i = None if p is None else next((x for x in p.items if x.key == "review-2-years"), None)
        return None if i is None else i.model_dump(mode="json")

    service, _ = build(settings, clock)
    await service.start()
    try:
        first = await wait_for(lambda: review(service), timeout=30)
        assert first["severity"] == "info"
        due = await service.timers.due_at(patient_id) if service.timers else None
        assert due is not None and due > clock()
    finally:
        await service.stop()

    clock.now = due + timedelta(seconds=1)  # the date passes while the planner is down
    service, _ = build(settings, clock)
    await service.start()
    try:

        async def overdue() -> dict[str, Any] | None:
            i = await review(service)
            return i if i and i["severity"] == "warning" else None

        fired = await wait_for(overdue, timeout=30)
        assert fired["text_fr"].startswith("Réévaluation due")
        record = await consume_until(
            kafka_bootstrap,
            RECOMMENDATIONS.name,
            lambda r: (
                json.loads(r.value).get("patient_id") == patient_id
                and json.loads(r.value).get("rule_id") == "SYS-REVIEW-2Y"
                and json.loads(r.value).get("severity") == "warning"
            ),
            timeout=20,
        )
        assert json.loads(record.value)["status"] == "active"
        next_due = await service.timers.due_at(patient_id) if service.timers else None
        assert next_due is None or next_due > clock()  # the fired deadline is replaced, never re-fired
    finally:
        await service.stop()


async def test_mol_biopsy_and_qual_pathway_from_care_events(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    """hospital.care-events.v1 reaches the plan: a reported adenocarcinoma biopsy names the missing molecular
    results (MOL-BIOPSY) and the care-pathway checklist shows a declined item (QUAL-PATHWAY)."""
    await start_patient(publish, patient_id, 80.0)
    on = date.today().isoformat()
    await publish(
        CARE_EVENTS.name,
        event(
            patient_id,
            event={
                "kind": "bone_biopsy",
                "biopsy_id": "bx-1",
                "status": "reported",
                "on": on,
                "context": "diagnosis",
                "histology": "adenocarcinoma",
                "decalcification": "edta",
                "molecular_results": {"EGFR": "negative", "ALK": "negative"},
            },
        ),
    )
    await publish(
        CARE_EVENTS.name,
        event(patient_id, event={"kind": "pathway_step", "item": "psychologist", "status": "declined", "on": on}),
    )

    async def sections() -> tuple[dict[str, Any], dict[str, Any]] | None:
        p = await plan(stack, patient_id)
        b, q = item(p, "bone-biopsy"), item(p, "care-pathway")
        declined = q is not None and any(c["status"] == "declined" for c in q["checks"])
        return (b, q) if b is not None and q is not None and declined else None

    biopsy, _ = await wait_for(sections, timeout=15)
    assert biopsy["missing"] == ["KRAS result", "PD-L1 result"] and biopsy["rule_id"] == "MOL-BIOPSY"

    async def biopsy_alert() -> list[dict[str, Any]]:
        return [a for a in await alerts(stack, patient_id, status="active") if a["rule_id"] == "MOL-BIOPSY"]

    await wait_for(biopsy_alert)
