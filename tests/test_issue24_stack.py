"""Issue 24 through the running services (the test stack, as `./osteocds up` starts them: MLLP plaintext on
loopback by opt-in): the ACK honours MSH-15/16 and echoes the sender's MSH-3/4, MSH-11, MSH-12 over MLLP; a FHIR
Bundle whose Patient.birthDate is only a year is accepted over HTTP (it gave HTTP 500) and its creatinine reaches
labs.normalised; an Observation with dataAbsentReason is accepted as "no value" (it gave 422)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from contracts.clinical import NormalisedLab
from contracts.topics import LABS_NORMALISED
from devstack.stack import RunningStack
from services.lab_normalisation.mllp import FS, VT
from shared.web.auth import INTEGRATION
from tests.conftest import auth, consume_until

pytestmark = pytest.mark.e2e


def oru(patient: str, control: str, ack: str = "") -> bytes:
    accept, application = [*ack.split("^"), "", ""][:2] if ack else ("", "")
    msh = (
        "MSH|^~\\&|GLIMS^1.2.250.1.71.4.2.1^ISO|LAB-24^1.2.250.1.71.4.2.2^ISO|OSTEOCDS|CHU|20261127091231+0100||"
        f"ORU^R01^ORU_R01|{control}|P^T|2.5.1|||{accept}|{application}"
    )
    return "\r".join(
        [
            msh,
            f"PID|1||{patient}^^^CHU^PI",
            "OBR|1|P1|F1|CHEM|||20261127074000+0100",
            "OBX|1|NM|2000-8^Ca^LN||2.4|mmol/L|||||F",
        ]
    ).encode()


async def test_mllp_ack_modes_and_echoed_header_through_the_service(stack: RunningStack, patient_id: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.mllp_port)
    try:
        # NE^NE: no acknowledgement at all; the next message's ACK is the next one read (no desync); CR LF between
        writer.write(VT + oru(patient_id, "NO-ACK", "NE^NE") + FS + b"\r\n")
        writer.write(b"\r\n" + VT + oru(patient_id, "ACCEPT", "AL^NE") + FS + b"\r")
        writer.write(VT + oru(patient_id, "BOTH", "AL^AL") + FS + b"\r")
        await writer.drain()
        acks = []
        for _ in range(2):
            block = await asyncio.wait_for(reader.readuntil(FS), 15)
            acks.append(block[block.index(VT) + 1 : -1].decode().split("\r"))
    finally:
        writer.close()
        await writer.wait_closed()
    accept, both = acks
    assert accept[1].startswith("MSA|CA|ACCEPT")  # accept mode: a commit acknowledgement
    assert both[1].startswith("MSA|AR|BOTH") and "MSH-16 NE" in "\r".join(both)  # refused clearly
    msh = accept[0].split("|")
    assert msh[4:6] == ["GLIMS^1.2.250.1.71.4.2.1^ISO", "LAB-24^1.2.250.1.71.4.2.2^ISO"] and msh[10:12] == [
        "P^T",
        "2.5.1",
    ]


def bundle(patient: str, birth: str) -> bytes:
    crea = {
        "resourceType": "Observation",
        "id": f"crea-{uuid.uuid4().hex[:8]}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2026-11-27",
        "valueQuantity": {"value": 1.1, "unit": "mg/dL", "code": "mg/dL"},
    }
    entries = [
        {"fullUrl": f"Patient/{patient}", "resource": {"resourceType": "Patient", "id": patient, "birthDate": birth}},
        {"resource": crea},
    ]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()


async def test_a_year_only_birth_date_keeps_the_creatinine_and_no_value_is_accepted(
    stack: RunningStack, kafka_bootstrap: str, patient_id: str
) -> None:
    url = f"{stack.urls['lab-normalisation']}/fhir"
    async with httpx.AsyncClient(timeout=15, headers=auth(INTEGRATION)) as c:
        r = await c.post(url, content=bundle(patient_id, "1962"))
        assert r.status_code == 202, r.text  # before: 500 (a TypeError in the date check)
        assert any("not a full date" in i for i in r.json()["ignored"])
        absent: dict[str, Any] = json.loads(bundle(patient_id, "1962-04"))["entry"][1]["resource"]
        absent["id"] = "crea-absent"
        del absent["valueQuantity"]
        absent["dataAbsentReason"] = {"coding": [{"code": "not-performed"}]}
        r = await c.post(url, content=json.dumps(absent).encode())
        assert r.status_code == 202 and r.json()["no_value"] == ["crea-absent: not-performed"]  # before: 422

    def creatinine(record: Any) -> bool:
        lab = NormalisedLab.model_validate_json(record.value)
        return lab.patient_id == patient_id and lab.analyte == "creatinine"

    record = await consume_until(kafka_bootstrap, LABS_NORMALISED.name, creatinine, timeout=30)
    assert NormalisedLab.model_validate_json(record.value).value == pytest.approx(97.24, abs=0.1)
