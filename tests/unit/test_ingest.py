"""Parsers for the three input formats: realistic samples, status tables, malformed input and fuzzing."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hl7 import parse as hl7_parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.lab_normalisation.ingest import (
    AnalyteMap,
    Ingested,
    _field,
    from_fhir,
    from_hl7,
    from_json_lab,
    hl7_ack,
    hl7_header,
    hl7_text,
)
from shared.clinical.clock import NotAfter
from shared.errors import Rejected

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
ANALYTES = AnalyteMap.load(Path(__file__).resolve().parents[2] / "services/lab_normalisation/local_codes.yaml")
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
GUARD = NotAfter(NOW)
ORU = (SAMPLES / "oru_r01_calcium.hl7").read_bytes()
BUNDLE = (SAMPLES / "fhir_bundle.json").read_bytes()


def hl7(*segments: str) -> bytes:
    return "\r".join(segments).encode()


MSH = "MSH|^~\\&|LAB|HOSP|OSTEOCDS|HOSP|20261127091231+0100||ORU^R01|C1|P|2.5"
PID = "PID|1||PT-1^^^HOSP^PI||X^Y||19560402|F"
OBR = "OBR|1|P1|F1|CHEM|||20261127074000+0100"


def test_realistic_oru_several_obx_local_code_and_units() -> None:
    b = from_hl7(ORU, ANALYTES, PARIS, GUARD)
    assert b.patient_id == "PT-7F3A9C" and b.key.startswith("hl7:GLIMS|CHU-LYON-BIO|LAB20261127-000123|")
    got = {x.analyte: (round(x.value or 0, 3), x.unit) for x in b.labs}
    assert got == {"total_calcium": (3.393, "mmol/L"), "albumin": (30.0, "g/L"), "creatinine": (97.262, "umol/L")}
    assert b.ignored == ["OBX 1: unmapped code"]  # sodium: no rule uses it
    assert str(b.patients[0].birth_date) == "1956-04-02" and b.patients[0].sex == "male"
    ca = next(x for x in b.labs if x.analyte == "total_calcium").result
    assert ca.occurred_at == datetime(2026, 11, 27, 6, 40, tzinfo=UTC)  # OBR-7, with its offset
    assert ca.result_id == "hl7:FIL-552310|17861-6|"  # order and code, never the OBX position


def test_same_message_gives_same_ids_and_key() -> None:
    a, b = from_hl7(ORU, ANALYTES, PARIS, GUARD), from_hl7(ORU, ANALYTES, PARIS, GUARD)
    assert a.key == b.key and a.event_ids() == b.event_ids()


@pytest.mark.parametrize(
    ("flag", "status"),
    [
        ("F", "final"),
        ("C", "corrected"),
        ("D", "entered-in-error"),
        ("W", "entered-in-error"),
        ("P", None),
        ("I", None),
        ("X", None),
        ("", None),
    ],
)
def test_obx11_status(flag: str, status: str | None) -> None:
    b = from_hl7(hl7(MSH, PID, OBR, f"OBX|1|NM|2000-8^Ca^LN||2.4|mmol/L|||||{flag}"), ANALYTES, PARIS, GUARD)
    assert [x.result.status for x in b.labs] == ([status] if status else [])
    if status is None:
        assert b.ignored and "not released" in b.ignored[0]


def test_result_not_in_first_obx_and_one_bad_obx_does_not_lose_the_others() -> None:
    b = from_hl7(
        hl7(
            MSH,
            PID,
            OBR,
            "OBX|1|ST|COMMENT^c^L||texte",
            "OBX|2|NM|2000-8^Ca^LN||2.4||||||F",
            "OBX|3|NM|1751-7^Alb^LN||41|g/L|||||F",
            "OBX|4|NM|1751-7^Alb^LN||abc|g/L|||||F",
            "OBX|5|NM|2000-8^Ca^LN||2.4|mg|||||F",
        ),
        ANALYTES,
        PARIS,
        GUARD,
    )
    assert [x.analyte for x in b.labs] == ["albumin"]
    assert b.rejections == [
        "OBX 2: total_calcium: unit missing; a unit is never assumed",
        "OBX 4: OBX-5 is not a number",
        "OBX 5: total_calcium: unit 'mg' is not a unit of mmol/L or mg/dL",
    ]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"", "not an HL7 v2 message"),
        (b"hello", "not an HL7 v2 message"),
        (hl7(MSH.replace("ORU^R01", "ADT^A01"), PID), "unsupported message type ADT^A01"),
        (hl7(MSH.replace("|C1|", "||"), PID), "MSH-10"),
        (hl7(MSH.replace("20261127091231+0100", "2026"), PID), "MSH-7"),
        (hl7(MSH, OBR, "OBX|1|NM|2000-8^Ca^LN||2.4|mmol/L|||||F"), "exactly one PID"),
        (hl7(MSH, PID, PID.replace("PT-1", "PT-2")), "exactly one PID"),
        (hl7(MSH, "PID|1||Jean Dupont"), "PID-3"),
        (hl7(MSH, "PID|1||PT-1^^^HOSP^PI||||1956-04-02"), "PID-7"),
        # untyped: chosen by default only when alone in PID-3 (issue 12; issue 24 {untyped: sole})
        (hl7(MSH, "PID|1||PT-1^^^HOSP~PT-9^^^OTHER"), "PID-3"),
        (hl7(MSH.replace("+0100", "+9900"), PID), "invalid time zone offset"),  # found by the fuzzer
    ],
)
def test_unusable_hl7_is_rejected_with_reason(message: bytes, reason: str) -> None:
    with pytest.raises(Rejected, match=re.escape(reason)):
        from_hl7(message, ANALYTES, PARIS, GUARD)


def test_missing_specimen_time_is_never_guessed() -> None:
    b = from_hl7(hl7(MSH, PID, "OBR|1|P1|F1|CHEM", "OBX|1|NM|2000-8^Ca^LN||2.4|mmol/L|||||F"), ANALYTES, PARIS, GUARD)
    assert b.labs == [] and "specimen time" in b.rejections[0]


def test_encodings_line_endings_and_mllp_framing() -> None:
    text = "\n".join([MSH, PID.replace("X^Y", "Hélène^Zoé"), OBR, "OBX|1|NM|2000-8^Ca^LN||2,4|mmol/L|||||F"])
    for raw in (text.encode("latin-1"), text.encode("utf-8"), b"\x0b" + text.encode() + b"\x1c\r"):
        b = from_hl7(raw, ANALYTES, PARIS, GUARD)
        assert [x.value for x in b.labs] == [2.4]


def test_naive_hl7_time_is_the_hospital_zone() -> None:
    b = from_hl7(
        hl7(MSH, PID, "OBR|1|P|F|C|||202611270740", "OBX|1|NM|2000-8^Ca^LN||2.4|mmol/L|||||F"), ANALYTES, PARIS, GUARD
    )
    assert b.labs[0].result.occurred_at == datetime(2026, 11, 27, 7, 40, tzinfo=PARIS)


def test_acks() -> None:
    header = hl7_header(hl7_text(ORU))
    aa = hl7_ack(header, "AA", now=NOW).split("\r")
    assert aa[0].startswith("MSH|^~\\&|OSTEOCDS|OSTEOCDS|GLIMS|CHU-LYON-BIO|20261127093000+0000||ACK^R01^ACK|")
    assert aa[1] == "MSA|AA|LAB20261127-000123"
    ae = hl7_ack(header, "AE", ["OBX 2: unknown unit 'mg|x'"], now=NOW).split("\r")
    assert ae[1] == "MSA|AE|LAB20261127-000123" and ae[2] == "ERR||||E||||OBX 2: unknown unit 'mg\\F\\x'"
    assert hl7_ack(hl7_header("garbage"), "AR", ["x"], now=NOW).split("\r")[1] == "MSA|AR|"


# ---- FHIR ------------------------------------------------------------------------------------------------
def test_realistic_fhir_bundle() -> None:
    b = from_fhir(BUNDLE, ANALYTES, GUARD)
    assert b.key.startswith("fhir:Bundle/bdl-20261127-0042:sha256:") and b.patient_id == "PT-7F3A9C"
    got = {x.analyte: (round(x.value or 0, 2), x.unit) for x in b.labs}
    assert got == {
        "total_calcium": (3.3, "mmol/L"),
        "albumin": (28.0, "g/L"),
        "body_weight": (58.5, "kg"),
        "creatinine": (79.58, "umol/L"),
    }
    assert b.patients[0].sex == "female" and str(b.patients[0].birth_date) == "1951-06-30"
    assert from_fhir(BUNDLE, ANALYTES, GUARD).event_ids() == b.event_ids()


def observation(**patch: Any) -> dict[str, Any]:
    bundle = json.loads(BUNDLE)
    obs: dict[str, Any] = bundle["entry"][1]["resource"]
    return {**obs, **patch}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("final", "final"),
        ("amended", "amended"),
        ("corrected", "corrected"),
        ("entered-in-error", "entered-in-error"),
        ("cancelled", "entered-in-error"),
        ("preliminary", None),
        ("registered", None),
    ],
)
def test_fhir_status(status: str, expected: str | None) -> None:
    b = from_fhir(json.dumps(observation(status=status)).encode(), ANALYTES, GUARD)
    assert [x.result.status for x in b.labs] == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"effectiveDateTime": "2026-11"}, "only a year or a month"),
        ({"effectiveDateTime": None}, "collection time missing"),
        ({"valueQuantity": {"value": 3.3}}, "unit missing"),
        ({"valueQuantity": {"value": 3.3, "code": "mg"}}, "unit 'mg' is not a unit of mmol/L or mg/dL"),
        ({"valueQuantity": {"value": 3.3, "code": "furlong/L"}}, "unknown unit 'furlong/L' (not UCUM)"),
        ({"valueQuantity": {"value": 33, "code": "mmol/L"}}, "outside the plausible range"),
        ({"valueQuantity": None}, "no numeric valueQuantity"),
        ({"id": None}, "without id"),
        ({"status": "done"}, "invalid Observation.status"),
    ],
)
def test_fhir_observation_problems_are_named(patch: dict[str, Any], reason: str) -> None:
    doc = {k: v for k, v in observation(**patch).items() if v is not None}
    b = from_fhir(json.dumps(doc).encode(), ANALYTES, GUARD)
    assert b.labs == [] and reason in b.rejections[0]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"resourceType": "MedicationRequest"}', "invalid FHIR MedicationRequest"),
        (b'{"resourceType": "NoSuchThing"}', "unknown FHIR resourceType"),
        (json.dumps(observation(subject={"reference": "Group/1"})).encode(), "must reference a Patient"),
        (json.dumps(observation(subject={"reference": "urn:uuid:0f1e"})).encode(), "resolve to a Patient"),
        (json.dumps(observation(effectiveDateTime="2026-11-27T07:40:00")).encode(), "invalid FHIR Observation"),
        (
            json.dumps(
                {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [
                        {"resource": observation()},
                        {"resource": observation(id="o2", subject={"reference": "Patient/OTHER"})},
                    ],
                }
            ).encode(),
            "exactly one patient",
        ),
    ],
)
def test_unusable_fhir_is_rejected_with_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(Rejected, match=re.escape(reason)):
        from_fhir(raw, ANALYTES, GUARD)


def test_json_lab_bad_unit_is_rejected() -> None:
    doc = {
        "event_id": "7f4e2a4e-3f9e-4a57-9d0f-6b1c5a1d2e3f",
        "patient_id": "p",
        "source": "s",
        "occurred_at": "2026-11-27T07:40:00+01:00",
        "recorded_at": "2026-11-27T07:40:00+01:00",
        "result_id": "r",
        "code": {"system": "http://loinc.org", "code": "2000-8"},
        "value": 2.4,
        "unit": "mEq/L",
    }
    with pytest.raises(Rejected, match="unit 'mEq/L' counts equivalents"):
        from_json_lab(json.dumps(doc).encode(), ANALYTES, GUARD)


# ---- fuzzing: any input gives an Ingested or a Rejected with a reason, never a crash ----------------------
def _outcome(fn: Any, raw: bytes) -> Ingested | None:
    try:
        return fn(raw)  # type: ignore[no-any-return]
    except Rejected as exc:
        assert str(exc)
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_hl7(data: st.DataObject) -> None:
    raw = bytearray(ORU)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[pos] = data.draw(st.sampled_from(list(b"|^~\\&\r\n\x00\xff0A-+.,")))
        elif op == "cut":
            del raw[pos : pos + data.draw(st.integers(1, 40))]
        elif op == "insert":
            raw[pos:pos] = data.draw(st.binary(max_size=30)) * data.draw(st.integers(1, 3))
        else:
            raw[pos:pos] = raw[pos : pos + data.draw(st.integers(1, 80))]
    result = _outcome(lambda r: from_hl7(r, ANALYTES, PARIS, GUARD), bytes(raw))
    if result is not None:
        assert all(x.result.patient_id == result.patient_id for x in result.labs)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_hl7_random_bytes(raw: bytes) -> None:
    _outcome(lambda r: from_hl7(r, ANALYTES, PARIS, GUARD), b"MSH|^~\\&|" + raw)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_fhir(data: st.DataObject) -> None:
    doc: Any = json.loads(BUNDLE)
    for _ in range(data.draw(st.integers(1, 4))):
        target = data.draw(st.sampled_from(doc["entry"]))["resource"]
        key = data.draw(st.sampled_from(sorted(target)))
        target[key] = data.draw(JSONISH)
    _outcome(lambda r: from_fhir(r, ANALYTES, GUARD), json.dumps(doc).encode())


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_fhir_random_bytes(raw: bytes) -> None:
    _outcome(lambda r: from_fhir(r, ANALYTES, GUARD), raw)


def test_huge_field_is_rejected_not_crashed() -> None:
    big = hl7(MSH, PID, OBR, "OBX|1|NM|2000-8^Ca^LN||" + "9" * 2_000_000 + "|mmol/L|||||F")
    with pytest.raises(Rejected, match="larger than"):
        from_hl7(big, ANALYTES, PARIS, GUARD)
    huge_value = hl7(MSH, PID, OBR, "OBX|1|NM|2000-8^Ca^LN||" + "9" * 5000 + "|mmol/L|||||F")
    assert "outside the plausible range" in from_hl7(huge_value, ANALYTES, PARIS, GUARD).rejections[0]


def test_two_hl7_messages_for_one_patient_apply_in_one_batch() -> None:
    """Regression: hl7's tzinfo could not be deep-copied, so the second message of a batch crashed."""
    from services.lab_normalisation.domain import LabConfig, LabState, apply_ingested
    from services.lab_normalisation.rules import CA_ALBUMIN_WINDOW

    cfg = LabConfig(ca_albumin_window=CA_ALBUMIN_WINDOW, hospital_tz=PARIS)
    first = from_hl7(hl7(MSH, PID, OBR, "OBX|1|NM|2000-8^Ca^LN||3.3|mmol/L|||||F"), ANALYTES, PARIS, GUARD)
    second = from_hl7(
        hl7(MSH.replace("|C1|", "|C2|"), PID, OBR, "OBX|1|NM|1751-7^Alb^LN||28|g/L|||||F"), ANALYTES, PARIS, GUARD
    )
    state, _ = apply_ingested(LabState(), first, cfg)
    _, out = apply_ingested(state, second, cfg)
    assert [o.value for o in out if o.analyte == "corrected_calcium"] == [pytest.approx(3.6)]


HL7_TEXT = st.text(alphabet="AB1 .^~&\\|EFSTRX", max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(["MSH", "PID", "OBR", "OBX"]),
    fields=st.lists(HL7_TEXT, max_size=16),
)
def test_field_reads_what_extract_field_reads(name: str, fields: list[str]) -> None:
    """`_field` is the library's `extract_field` walk without its bookkeeping: same value (or "" where the
    library raises) for every field, component and repetition of generated segments, escapes included."""
    body = "|".join(fields)
    text = f"MSH|^~\\&|{body}" if name == "MSH" else f"MSH|^~\\&|A|B\r{name}|{body}"
    try:
        msg = hl7_parse(text)
    except Exception:  # the library refuses some inputs outright: nothing to compare
        return
    for seg in msg:
        for field in range(1, 18):
            for component in (1, 2, 3):
                for repeat in (1, 2):
                    try:
                        expected = str(seg.extract_field(1, field, repeat, component)).strip()
                    except (IndexError, KeyError, AttributeError, TypeError):
                        expected = ""
                    assert _field(seg, field, component, repeat) == expected, (str(seg), field, component, repeat)
