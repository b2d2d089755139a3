"""Issue 12 end to end: HL7 v2 over MLLP with a real MLLP client (the `hl7` package's asyncio client), the same
checks and path as POST /hl7v2; the corpus through HTTP with the statuses the manifest expects; the counter
of unknown but relevant codes; a future-dated result refused at the door (issue 9.7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hl7.mllp import open_hl7_connection

from contracts.clinical import NormalisedLab
from contracts.topics import LABS_NORMALISED
from devstack.stack import RunningStack
from shared.web.auth import INTEGRATION
from tests.conftest import alerts, auth, consume_until, metric, wait_for

pytestmark = pytest.mark.e2e
CORPUS = Path(__file__).resolve().parent.parent / "corpus"
MANIFEST: dict[str, list[dict[str, Any]]] = yaml.safe_load((CORPUS / "manifest.yaml").read_text(encoding="utf-8"))
HL7_STATUS = {"AA": 200, "AE": 422, "AR": 400}


def corpus(file: str, patient_id: str | None = None, old: str | None = None) -> bytes:
    raw = (CORPUS / file).read_bytes()
    return raw.replace(old.encode(), patient_id.encode()) if patient_id and old else raw


async def mllp_exchange(stack: RunningStack, *messages: bytes) -> list[bytes]:
    """Send each message framed over one MLLP connection and read its framed ACK."""
    reader, writer = await open_hl7_connection("127.0.0.1", stack.mllp_port)
    acks: list[bytes] = []
    try:
        for m in messages:
            writer.writeblock(m)
            await writer.drain()
            acks.append(await reader.readblock())
    finally:
        writer.close()
        await writer.wait_closed()
    return acks


def msa(ack: bytes) -> str:
    return ack.decode("utf-8").split("\r")[1]


async def test_mllp_acks_and_same_path_as_http_to_a_crisis_alert(stack: RunningStack, patient_id: str) -> None:
    law = corpus("hl7/oul_r22_law.hl7", patient_id, "C03-5521")  # OUL^R22: Ca 3.31 mmol/L, albumin 26 g/L
    bad_unit = law.replace(b"|26|g/L|", b"|26|mmol/L|").replace(b"AM-20261127-00042", b"AM-BAD-UNIT")
    acks = await mllp_exchange(stack, law, b"\xef\xbb\xbf" + law.replace(b"\r", b"\r\n"), bad_unit, b"MSH|garbage")
    assert [msa(a).split("|")[1] for a in acks] == ["AA", "AA", "AE", "AR"]
    assert msa(acks[0]) == "MSA|AA|AM-20261127-00042" and acks[0].startswith(b"MSH|^~\\&|OSTEOCDS|")
    assert b"ACK^R22^ACK" in acks[0] and b"albumin: unit 'mmol/L' is not a unit of g/L" in acks[2]

    async with httpx.AsyncClient(
        timeout=10, headers=auth(INTEGRATION)
    ) as c:  # the same message by HTTP: the same answer
        r = await c.post(f"{stack.urls['lab-normalisation']}/hl7v2", content=bad_unit)
    assert r.status_code == 422 and r.text.split("\r")[1:] == acks[2].decode().split("\r")[1:]

    # corrected calcium 3.31 + (40 - 26) / 40 = 3.66 mmol/L > 3.5: the crisis alert, from an MLLP message
    [alert] = await wait_for(lambda: _rule(alerts(stack, patient_id), "LAB-CA-CRISIS"), timeout=15)
    corrected = next(i for i in alert["inputs"] if i["name"] == "corrected_calcium")
    assert corrected["value"] == pytest.approx(3.31 + 14 / 40)


async def _rule(pending: Any, rule_id: str) -> list[dict[str, Any]]:
    return [a for a in await pending if a["rule_id"] == rule_id]


@pytest.mark.parametrize("case", MANIFEST["hl7"] + MANIFEST["fhir"], ids=lambda c: c["file"])
async def test_corpus_through_http_gets_the_expected_status(stack: RunningStack, case: dict[str, Any]) -> None:
    raw = corpus(case["file"])
    hl7 = case["file"].endswith(".hl7")
    path, ctype = ("/hl7v2", "x-application/hl7-v2+er7") if hl7 else ("/fhir", "application/fhir+json")
    async with httpx.AsyncClient(timeout=10, headers=auth(INTEGRATION)) as c:
        r = await c.post(f"{stack.urls['lab-normalisation']}{path}", content=raw, headers={"content-type": ctype})
    assert r.status_code == (HL7_STATUS[case["ack"]] if hl7 else case["http"]), r.text
    if hl7:
        assert r.text.split("\r")[1].startswith(f"MSA|{case['ack']}|")
    elif r.status_code == 200:  # valid, nothing used: accepted and said so
        issue = json.loads(r.text)["issue"][0]
        assert issue["severity"] == "information" and "nothing used" in issue["diagnostics"]


async def test_unknown_relevant_code_is_counted_by_code_and_censored_value_published_as_bound(
    stack: RunningStack, kafka_bootstrap: str, patient_id: str
) -> None:
    before = await metric(
        stack, "lab-normalisation", "osteocds_lab_unmapped_codes_total", service="lab-normalisation", code="49765-1"
    )
    [ack] = await mllp_exchange(stack, corpus("hl7/unknown_relevant_code.hl7", patient_id, "C12-UNK"))
    assert msa(ack).startswith("MSA|AA|")

    async def counted() -> bool:
        now = await metric(
            stack, "lab-normalisation", "osteocds_lab_unmapped_codes_total", service="lab-normalisation", code="49765-1"
        )
        return now > before

    await wait_for(counted)

    censored = corpus("hl7/censored_sn.hl7", patient_id, "C10-CENS")
    [ack] = await mllp_exchange(stack, censored)
    assert msa(ack).startswith("MSA|AA|")

    def vitd(r: Any) -> bool:
        m = NormalisedLab.model_validate_json(r.value)
        return m.patient_id == patient_id and m.analyte == "vitamin_d_25oh"

    m = NormalisedLab.model_validate_json((await consume_until(kafka_bootstrap, LABS_NORMALISED.name, vitd)).value)
    assert m.comparator == "<" and m.value == 8 and m.interpretation == "deficiency"


async def test_future_dated_result_is_refused_at_the_door(stack: RunningStack, patient_id: str) -> None:
    """Issue 9.7: a result dated in 2099 is an error (AE, the others accepted), never current data."""
    raw = corpus("hl7/msh7_date_only.hl7", patient_id, "C02-A71").replace(
        b"OBX|1|NM|2000-8^Calcium^LN||2.61|mmol/L|2.15-2.55|H|||F",
        b"OBX|1|NM|2000-8^Calcium^LN||2.61|mmol/L|2.15-2.55|H|||F|||20991127074500+0100",
    )
    [ack] = await mllp_exchange(stack, raw)
    text = ack.decode()
    assert msa(ack) == "MSA|AE|DATEONLY-0001" and "OBX 1: specimen time is in the future" in text
