"""Issue 18 end to end: the shared clinical context through the real broker, Redis, the radiotherapy planner and
notification. A mistyped radiotherapy course entered in error brings the cord-compression emergency back; a
recorded earlier course makes an SBRT request a re-irradiation; an antiplatelet spelled as the pharmacy spells it
holds the cementoplasty."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from contracts.topics import (
    CLINICAL_ASSESSMENTS,
    IMAGING_FINDINGS,
    LAB_RESULTS,
    LOCAL_TREATMENT_REQUESTS,
    TREATMENT_EVENTS,
)
from devstack.stack import RunningStack
from tests.conftest import Publish, event, lab, wait_for
from tests.e2e.test_radiotherapy_planner import active, local_plan, plan_item, request

pytestmark = pytest.mark.e2e
TODAY = date.today()


async def test_an_rt_course_entered_in_error_brings_the_cord_compression_alert_back(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    await publish(
        IMAGING_FINDINGS.name,
        event(
            patient_id,
            lesion_id="T9-a",
            skeletal_site="spine",
            vertebral_level="T9",
            modality="mri",
            cord_compression=True,
        ),
    )
    [first] = await wait_for(lambda: active(stack, patient_id, "RT-MSCC"), timeout=20)
    assert first["severity"] == "critical"

    course = event(
        patient_id,
        treatment={
            "kind": "radiotherapy",
            "site": "spine",
            "vertebral_level": "T9",
            "total_dose_gy": 8.0,
            "fractions": 1,
            "on": TODAY.isoformat(),
        },
    )
    await publish(TREATMENT_EVENTS.name, course)

    async def irradiated() -> dict[str, Any] | None:
        i = plan_item(await local_plan(stack, patient_id), "T9-a:mscc")
        return i if i is not None and i["status"] == "done" else None

    await wait_for(irradiated, timeout=20)
    await wait_for(lambda: _none(active(stack, patient_id, "RT-MSCC")), timeout=20)

    await publish(
        TREATMENT_EVENTS.name,
        {**course, "event_id": str(uuid.uuid4()), "record_status": "entered-in-error", "corrects": course["event_id"]},
    )

    async def emergency_again() -> list[dict[str, Any]]:
        return [a for a in await active(stack, patient_id, "RT-MSCC") if a["severity"] == "critical"]

    [again] = await wait_for(emergency_again, timeout=20)
    assert "urgence thérapeutique" in again["title"]
    item = plan_item(await local_plan(stack, patient_id), "T9-a:mscc")
    assert item is not None and item["severity"] == "critical" and item["status"] == "recommended"


async def _none(pending: Any) -> bool:
    return not await pending


async def test_an_sbrt_request_on_a_segment_with_a_recorded_course_is_a_reirradiation(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    await publish(
        IMAGING_FINDINGS.name,
        event(patient_id, lesion_id="L2-a", skeletal_site="spine", vertebral_level="L2", modality="mri"),
    )
    earlier = TODAY - timedelta(days=120)
    await publish(
        TREATMENT_EVENTS.name,
        event(
            patient_id,
            treatment={
                "kind": "radiotherapy",
                "site": "spine",
                "vertebral_level": "L2",
                "total_dose_gy": 30.0,
                "fractions": 10,
                "cord_dmax_gy": 30.0,
                "on": earlier.isoformat(),
            },
        ),
    )
    await publish(
        LOCAL_TREATMENT_REQUESTS.name,
        request(
            patient_id,
            "L2-a",
            "sbrt",
            total_dose_gy=27,
            fractions=3,
            planned_cord_dmax_gy=9.0,
            planned_on=TODAY.isoformat(),
        ),
    )
    [alert] = await wait_for(lambda: active(stack, patient_id, "RT-REIRR"), timeout=20)
    assert f"Irradiation 1 du {earlier:%d/%m/%Y}" in alert["text_fr"]
    verdicts = {i["name"]: i["unit"] for i in alert["inputs"] if i["name"].startswith("criterion:")}
    assert verdicts["criterion:interval"] == "fail"  # 4 months < 5 months
    plan = await local_plan(stack, patient_id)
    assert plan_item(plan, "L2-a:cord-dmax") is None  # never the first-irradiation verdict


async def test_an_antiplatelet_named_by_its_brand_holds_the_cementoplasty(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    planned = TODAY + timedelta(days=2)
    drawn = datetime.now(UTC) - timedelta(minutes=30)
    await publish(
        CLINICAL_ASSESSMENTS.name,
        event(
            patient_id,
            pain={"resistant_to_analgesics": True, "intensity": "functional"},
            opioid_complications=False,
            diffuse_pain=False,
            active_infection=False,
            cement_allergy=False,
            severe_coagulation_disorder=False,
            radiculopathy=False,
        ),
    )
    await publish(
        IMAGING_FINDINGS.name,
        event(
            patient_id,
            lesion_id="L4-a",
            skeletal_site="spine",
            vertebral_level="L4",
            modality="ct",
            pathological_fracture=False,
        ),
    )
    await publish(LAB_RESULTS.name, lab(patient_id, "777-3", 210.0, "10*9/L", occurred_at=drawn))  # platelets
    await publish(LAB_RESULTS.name, lab(patient_id, "5894-1", 95.0, "%", occurred_at=drawn))  # TP
    await publish(
        TREATMENT_EVENTS.name,
        event(
            patient_id,
            treatment={"kind": "drug_administration", "drug": "PLAVIX 75 mg", "on": TODAY.isoformat()},
        ),
    )
    await publish(
        LOCAL_TREATMENT_REQUESTS.name,
        request(patient_id, "L4-a", "cementoplasty", planned_on=planned.isoformat()),
    )

    async def held() -> dict[str, Any] | None:
        i = plan_item(await local_plan(stack, patient_id), "L4-a:cement")
        checks = {c["name"]: c for c in (i or {}).get("checks", [])}
        ready_labs = all(checks.get(n, {}).get("status") == "done" for n in ("platelets", "prothrombin"))
        return i if "clopidogrel" in checks and ready_labs else None

    item = await wait_for(held, timeout=20)
    checks = {c["name"]: c for c in item["checks"]}
    assert item["status"] != "recommended" and "pas prête" in item["title"]
    assert checks["clopidogrel"]["status"] == "to_do" and checks["platelets"]["status"] == "done"
