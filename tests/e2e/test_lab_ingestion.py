"""Issue 3 end to end: HL7 v2 and FHIR R4 through HTTP and raw Kafka topics, to alerts and derived values."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.structs import ConsumerRecord

from contracts.clinical import DeadLetter
from contracts.topics import DEAD_LETTER, FHIR_R4, HL7V2, LABS_NORMALISED
from devstack.stack import RunningStack
from shared.web.auth import INTEGRATION
from tests.conftest import Publish, alerts, auth, consume_until, outcomes, wait_for, wait_outcomes_above

pytestmark = pytest.mark.e2e
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def oru(patient_id: str, control_id: str, *obx: str, sent: datetime | None = None, drawn: str = "") -> bytes:
    sent = sent or datetime.now(UTC)
    drawn = drawn or (sent - timedelta(hours=2)).strftime("%Y%m%d%H%M%S+0000")
    return "\r".join(
        [
            f"MSH|^~\\&|GLIMS|CHU-LYON-BIO|OSTEOCDS|CHU-LYON|{sent:%Y%m%d%H%M%S}+0000||ORU^R01|{control_id}|P|2.5",
            f"PID|1||{patient_id}^^^CHU-LYON^PI||***^***||19560402|M",
            f"OBR|1|PLC-{control_id}|FIL-{patient_id}|BIOCHIM^Biochimie|||{drawn}",
            *obx,
        ]
    ).encode()


CA_13_6 = "OBX|1|NM|17861-6^Calcium^LN||13.6|mg/dL^mg/dL^UCUM|8.6-10.2|H|||F"
ALB_3_0 = "OBX|2|NM|1751-7^Albumine^LN||3.0|g/dL^g/dL^UCUM|3.5-5.2|L|||F"


async def post_hl7(stack: RunningStack, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10, headers=auth(INTEGRATION)) as c:
        return await c.post(
            f"{stack.urls['lab-normalisation']}/hl7v2",
            content=body,
            headers={"content-type": "x-application/hl7-v2+er7"},
        )


async def crisis(stack: RunningStack, patient_id: str) -> list[dict[str, Any]]:
    return [a for a in await alerts(stack, patient_id) if a["rule_id"] == "LAB-CA-CRISIS"]


async def test_hl7_hypercalcaemia_alert_then_amendment_withdraws_it(stack: RunningStack, patient_id: str) -> None:
    sent = datetime.now(UTC) - timedelta(minutes=30)
    drawn = (sent - timedelta(hours=1)).strftime("%Y%m%d%H%M%S+0000")
    r = await post_hl7(stack, oru(patient_id, "MSG-1", CA_13_6, ALB_3_0, sent=sent, drawn=drawn))
    assert r.status_code == 200 and r.headers["content-type"].startswith("x-application/hl7-v2+er7")
    assert r.text.split("\r")[1] == "MSA|AA|MSG-1"

    [alert] = await wait_for(lambda: crisis(stack, patient_id), timeout=10)
    assert alert["severity"] == "critical"
    corrected = next(i for i in alert["inputs"] if i["name"] == "corrected_calcium")
    assert corrected["value"] == pytest.approx(13.6 / 4.008 + 0.25)  # 3.643 mmol/L, unrounded (issue 9.10)

    # the same delivery again: no second effect
    before = await outcomes(stack, "lab-normalisation", HL7V2.name, "duplicate")
    assert (
        await post_hl7(stack, oru(patient_id, "MSG-1", CA_13_6, ALB_3_0, sent=sent, drawn=drawn))
    ).status_code == 200

    await wait_outcomes_above(stack, "lab-normalisation", HL7V2.name, "duplicate", before)
    assert len(await crisis(stack, patient_id)) == 1

    # the lab corrects the calcium (OBX-11 = C, same order and code): the alert is withdrawn
    corrected_ca = "OBX|1|NM|17861-6^Calcium^LN||9.6|mg/dL^mg/dL^UCUM|8.6-10.2|N|||C"
    r = await post_hl7(stack, oru(patient_id, "MSG-2", corrected_ca, sent=sent + timedelta(minutes=20), drawn=drawn))
    assert r.status_code == 200

    async def withdrawn() -> bool:
        return [a["status"] for a in await crisis(stack, patient_id)] == ["withdrawn"]

    await wait_for(withdrawn)


async def test_hl7_errors_answer_ae_or_ar_and_good_results_still_count(stack: RunningStack, patient_id: str) -> None:
    r = await post_hl7(stack, b"MSH|^~\\&|X|Y|||2026||ADT^A01|Z|P|2.5")
    assert r.status_code == 400 and "MSA|AR|Z" in r.text and "unsupported message type ADT\\S\\A01" in r.text
    assert (await post_hl7(stack, b"not hl7 at all")).status_code == 400

    bad_unit = "OBX|3|NM|1751-7^Albumine^LN||3.0|mmol/L|||||F"
    r = await post_hl7(stack, oru(patient_id, "MSG-AE", CA_13_6, ALB_3_0, bad_unit))
    assert r.status_code == 422
    lines = r.text.split("\r")
    assert lines[1] == "MSA|AE|MSG-AE"
    assert lines[2].startswith("ERR||||E||||OBX 3: albumin: unit 'mmol/L' is not a unit of g/L")
    await wait_for(lambda: crisis(stack, patient_id))  # the two good OBX were accepted


async def test_raw_hl7_topic_dead_letters_bad_messages_and_keeps_going(
    stack: RunningStack, publish: Publish, patient_id: str, kafka_bootstrap: str
) -> None:
    garbage = b"MSH|^~\\&|\xff\xfe" + b"|" * 50
    await publish(HL7V2.name, garbage)
    partial = oru(patient_id, "RAW-1", CA_13_6, ALB_3_0, "OBX|3|NM|2160-0^Creat^LN||12|furlongs|||||F")
    await publish(HL7V2.name, partial, key=patient_id.encode())

    def letter(r: ConsumerRecord) -> DeadLetter:
        return DeadLetter.model_validate_json(r.value)

    dead = await consume_until(
        kafka_bootstrap, DEAD_LETTER.name, lambda r: base64.b64decode(letter(r).value_b64 or "") == garbage
    )
    assert letter(dead).topic == HL7V2.name and letter(dead).reason
    part = await consume_until(
        kafka_bootstrap, DEAD_LETTER.name, lambda r: base64.b64decode(letter(r).value_b64 or "") == partial
    )
    assert letter(part).error_type == "PartiallyRejected" and "OBX 3: creatinine: unknown unit" in letter(part).reason
    await wait_for(lambda: crisis(stack, patient_id))


def fhir_bundle(patient_id: str, weight: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SAMPLES / "fhir_bundle.json").read_text())
    doc["id"] = f"bdl-{uuid.uuid4().hex[:8]}"
    doc["entry"][0]["resource"]["id"] = patient_id
    for e in doc["entry"][1:]:
        e["resource"]["subject"]["reference"] = f"Patient/{patient_id}"
        e["resource"]["id"] = f"{e['resource']['id']}-{patient_id}"
    if not weight:
        doc["entry"] = [e for e in doc["entry"] if e["resource"]["id"].split("-")[1] != "wt"]
    return doc


async def clearance(kafka_bootstrap: str, patient_id: str) -> dict[str, Any]:
    record = await consume_until(
        kafka_bootstrap,
        LABS_NORMALISED.name,
        lambda r: r.key == patient_id.encode() and json.loads(r.value)["analyte"] == "creatinine_clearance",
    )
    doc: dict[str, Any] = json.loads(record.value)
    return doc


async def test_post_fhir_bundle_gives_alert_and_clearance(
    stack: RunningStack, patient_id: str, kafka_bootstrap: str
) -> None:
    async with httpx.AsyncClient(timeout=10, headers=auth(INTEGRATION)) as c:
        r = await c.post(
            f"{stack.urls['lab-normalisation']}/fhir",
            json=fhir_bundle(patient_id),
            headers={"content-type": "application/fhir+json"},
        )
    assert r.status_code == 202
    assert len(r.json()["event_ids"]) == 5 and r.json()["rejected"] == []
    [alert] = await wait_for(lambda: crisis(stack, patient_id))  # 3.30 mmol/L with albumin 28 g/L
    assert next(i for i in alert["inputs"] if i["name"] == "corrected_calcium")["value"] == pytest.approx(3.60)
    crcl = await clearance(kafka_bootstrap, patient_id)
    # woman, 75 years at the draw, 58.5 kg, creatinine 0.9 mg/dL = 79.578 µmol/L
    expected = (140 - 75) * 58.5 / (0.815 * 0.9 * 88.42) * 0.85
    assert crcl["value"] == pytest.approx(expected) and crcl["missing"] == []
    assert {s["analyte"] for s in crcl["derived_from"]} == {"creatinine", "body_weight", "age", "sex"}


async def test_raw_fhir_without_weight_says_weight_is_missing(
    stack: RunningStack, publish: Publish, patient_id: str, kafka_bootstrap: str
) -> None:
    await publish(FHIR_R4.name, {**fhir_bundle(patient_id, weight=False), "patient_id": patient_id})
    crcl = await clearance(kafka_bootstrap, patient_id)
    assert crcl["value"] is None and crcl["missing"] == ["weight"]


async def test_post_fhir_rejections_are_4xx_with_reason(stack: RunningStack, patient_id: str) -> None:
    async with httpx.AsyncClient(base_url=stack.urls["lab-normalisation"], timeout=10, headers=auth(INTEGRATION)) as c:
        r = await c.post("/fhir", content=b"{oops")
        assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"
        assert "not JSON" in r.json()["issue"][0]["diagnostics"]
        obs = fhir_bundle(patient_id)["entry"][1]["resource"]
        obs["valueQuantity"] = {"value": 3.3, "code": "mEq/L"}
        r = await c.post("/fhir", json=obs)
        assert r.status_code == 422 and "unit 'mEq/L' counts equivalents" in r.json()["issue"][0]["diagnostics"]


async def test_hl7_corrected_then_corrected_back_withdraws_and_reissues_downstream(
    stack: RunningStack, patient_id: str
) -> None:
    """LAB-CORRECTION downstream, through every service: a crisis calcium gives the alert and an SRE, which
    makes the planner start an anti-resorptive; corrected to normal, the alert, the SRE and the start are
    withdrawn; corrected back to the crisis value, all of them are issued again and the alert is active."""
    from tests.e2e.test_systemic_planner import item, plan

    sent = datetime.now(UTC) - timedelta(minutes=30)
    drawn = (sent - timedelta(hours=1)).strftime("%Y%m%d%H%M%S+0000")

    async def statuses() -> list[str]:
        return [a["status"] for a in await crisis(stack, patient_id)]

    async def started() -> bool:
        start = item(await plan(stack, patient_id), "antiresorptive-start")
        return start is not None and start["status"] == "recommended"

    async def not_started() -> bool:
        return item(await plan(stack, patient_id), "antiresorptive-start") is None

    assert (await post_hl7(stack, oru(patient_id, "CB-1", CA_13_6, ALB_3_0, sent=sent, drawn=drawn))).status_code == 200
    await wait_for(lambda: _equals(statuses, ["active"]), timeout=10)
    await wait_for(started, timeout=10)  # the SRE reached the planner

    normal = "OBX|1|NM|17861-6^Calcium^LN||9.6|mg/dL^mg/dL^UCUM|8.6-10.2|N|||C"
    r = await post_hl7(stack, oru(patient_id, "CB-2", normal, sent=sent + timedelta(minutes=10), drawn=drawn))
    assert r.status_code == 200
    await wait_for(lambda: _equals(statuses, ["withdrawn"]), timeout=10)
    await wait_for(not_started, timeout=10)  # the SRE was withdrawn, and the start with it
    start_alerts = [a for a in await alerts(stack, patient_id) if a["rule_id"] == "SYS-AR-START"]
    # withdrawn, or never shown (replaced within notification's settle window)
    assert {a["status"] for a in start_alerts} <= {"withdrawn"}

    back = CA_13_6.replace("|||F", "|||C")
    r = await post_hl7(stack, oru(patient_id, "CB-3", back, sent=sent + timedelta(minutes=20), drawn=drawn))
    assert r.status_code == 200
    await wait_for(lambda: _equals(statuses, ["active"]), timeout=10)  # the same alert, active again
    await wait_for(started, timeout=10)

    async def start_alert_active() -> bool:
        return any(a["rule_id"] == "SYS-AR-START" and a["status"] == "active" for a in await alerts(stack, patient_id))

    await wait_for(start_alert_active, timeout=10)


async def _equals(fn: Any, expected: Any) -> bool:
    return bool(await fn() == expected)
