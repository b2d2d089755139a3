"""Issue 24: conformant ACKs (MSH-3/4 HD echoed, MSH-11/12/18 echoed, MSH-15/16 honoured or refused clearly), MSH-18
character sets, every FHIR date precision without a crash, dataAbsentReason as "no value", identical OBX repeats,
untyped PID-3 identifiers. Pure parsers and the aggregate, on messages built here."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.lab_normalisation.common import AnalyteMap, IdRule
from services.lab_normalisation.domain import LabConfig, LabState, apply_ingested
from services.lab_normalisation.hl7_acks import AckCode, ack_codec, ack_mode, ack_wanted, commit_code, hl7_ack
from services.lab_normalisation.hl7_segments import header_of, hl7_text
from services.lab_normalisation.ingest import fhir_verdict, from_fhir, from_hl7, hl7_verdict
from services.lab_normalisation.rules import CA_ALBUMIN_WINDOW
from shared.clinical.clock import NotAfter
from shared.errors import Rejected

ROOT = Path(__file__).resolve().parents[2]
ANALYTES = AnalyteMap.load(ROOT / "services/lab_normalisation/local_codes.yaml")
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
GUARD = NotAfter(NOW)
CFG = LabConfig(ca_albumin_window=CA_ALBUMIN_WINDOW, hospital_tz=PARIS)


def msh(control: str = "C1", *, ack: str = "", charset: str = "", app: str = "GLIMS^1.2.250.1.71.4.2.1^ISO") -> str:
    """MSH with fields 3-12 and, when given, MSH-15/16 (`ack` "AL^NE" style) and MSH-18."""
    accept, application = [*ack.split("^"), "", ""][:2] if ack else ("", "")
    tail = f"|||{accept}|{application}||{charset}" if ack or charset else ""
    return (
        f"MSH|^~\\&|{app}|LAB-24^1.2.250.1.71.4.2.2^ISO|OSTEOCDS|CHU|20261127091231+0100||ORU^R01^ORU_R01|"
        f"{control}|P^T|2.5.1{tail}"
    )


PID = "PID|1||PT-24^^^CHU^PI||Dupont^Hélène||19560402|F"
OBR = "OBR|1|P1|F1|CHEM|||20261127074000+0100"
CA = "OBX|1|NM|2000-8^Ca^LN||2.4|mmol/L|||||F"


def hl7(*segments: str, encoding: str = "utf-8") -> bytes:
    return "\r".join(segments).encode(encoding)


# ---- item 3: the ACK ------------------------------------------------------------------------------------------
def test_the_ack_echoes_the_senders_hd_version_processing_id_and_charset() -> None:
    header = header_of(hl7(msh(charset="8859/1"), PID, OBR, CA, encoding="latin-1"))
    ack = hl7_ack(header, "AA", receiving=("OSTEOCDS^1.2.250.1.999.9^ISO", "CHU-LYON"), now=NOW).split("\r")
    fields = ack[0].split("|")
    assert fields[2:6] == [
        "OSTEOCDS^1.2.250.1.999.9^ISO",
        "CHU-LYON",
        "GLIMS^1.2.250.1.71.4.2.1^ISO",  # every HD component, not only the namespace ID
        "LAB-24^1.2.250.1.71.4.2.2^ISO",
    ]
    assert fields[10:12] == ["P^T", "2.5.1"] and fields[17] == "8859/1" and ack_codec(header) == "iso8859-1"
    assert fields[14:16] == ["", ""]  # an ACK asks for no acknowledgement
    # a sender's HD component holding a delimiter is escaped, never splitting the field
    odd = header_of(hl7(msh(app="LAB|X^1.2^ISO").replace("LAB|X", "LAB\\F\\X"), PID))
    assert hl7_ack(odd, "AA", now=NOW).split("\r")[0].split("|")[4] == "LAB\\F\\X^1.2^ISO"
    # nothing usable in the MSH: the defaults, never an invalid ACK
    bare = hl7_ack(header_of(b"garbage"), "AR", ["x"], now=NOW).split("\r")[0].split("|")
    assert bare[10:12] == ["P", "2.5"]


@pytest.mark.parametrize(
    ("ack", "mode", "refused"),
    [
        ("", "original", False),
        ("NE^AL", "application", False),
        ("^AL", "application", False),
        ("AL^NE", "accept", False),
        ("ER^", "accept", False),
        ("AL^AL", "accept", True),  # both asked for: one ACK per message on this connection
        ("XX^AL", "original", True),  # not a condition
    ],
)
def test_msh15_and_msh16_choose_the_acknowledgement_or_refuse_clearly(ack: str, mode: str, refused: bool) -> None:
    header = header_of(hl7(msh(ack=ack), PID))
    got, refusal = ack_mode(header)
    assert got == mode and (refusal is not None) == refused
    if refusal is not None:
        assert "MSH-1" in refusal and ("NE" in refusal or "AL, NE, ER or SU" in refusal)


def test_acknowledgement_conditions_al_ne_er_su() -> None:
    def sent(ack: str, ok: bool) -> bool:
        header = header_of(hl7(msh(ack=ack), PID))
        return ack_wanted(header, ack_mode(header)[0], ok)

    assert sent("", True) and sent("", False)  # original mode: always
    assert not sent("NE^NE", True) and not sent("NE^NE", False)
    assert sent("NE^ER", False) and not sent("NE^ER", True)
    assert sent("NE^SU", True) and not sent("NE^SU", False)
    assert sent("AL^NE", True) and sent("ER^NE", False) and not sent("ER^NE", True)
    verdicts: list[tuple[AckCode, bool]] = [("AA", True), ("AE", True), ("AE", False), ("AR", False)]
    assert [commit_code(c, p) for c, p in verdicts] == [
        "CA",
        "CA",
        "CE",
        "CR",
    ]


# ---- item 3: MSH-18 ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("charset", ["8859/1", "ISO IR100", "8859/15", "UNICODE UTF-8", "ASCII", ""])
def test_msh18_decides_how_the_message_is_decoded(charset: str) -> None:
    name = "Dupont^Hélène" if charset != "ASCII" else "Dupont^Helene"
    encoding = {"8859/1": "latin-1", "ISO IR100": "latin-1", "8859/15": "iso8859-15", "ASCII": "ascii"}.get(
        charset, "utf-8"
    )
    raw = hl7(msh(charset=charset), PID.replace("Dupont^Hélène", name), OBR, CA, encoding=encoding)
    assert name in hl7_text(raw)
    b = from_hl7(raw, ANALYTES, PARIS, GUARD)
    assert [x.value for x in b.labs] == [2.4] and b.patient_id == "PT-24"


def test_a_latin1_message_declaring_utf8_or_an_unsupported_set_is_refused_with_the_reason() -> None:
    latin = hl7(msh(charset="UNICODE UTF-8"), PID, OBR, CA, encoding="latin-1")
    with pytest.raises(Rejected, match="not valid UNICODE UTF-8"):
        hl7_text(latin)
    v = hl7_verdict(hl7(msh(charset="UNICODE UTF-16"), PID, OBR, CA), ANALYTES, PARIS, GUARD)
    assert v.code == "AR" and "MSH-18 character set 'UNICODE UTF-16' is not supported" in v.reasons[0]
    # its ACK still answers its control ID, from the MSH alone
    assert hl7_ack(header_of(latin), "AR", v.reasons, now=NOW).split("\r")[1] == "MSA|AR|C1"


# ---- item 7: an OBX repeated identically --------------------------------------------------------------------------
def test_an_identical_obx_repeat_is_one_result_and_a_differing_one_still_refused() -> None:
    v = hl7_verdict(hl7(msh(), PID, OBR, CA, CA), ANALYTES, PARIS, GUARD)
    assert v.code == "AA" and v.batch is not None and len(v.batch.labs) == 1 and not v.batch.rejections
    assert "OBX 2: an identical repeat of OBX 1 (one result)" in v.batch.ignored
    differing = hl7_verdict(hl7(msh(), PID, OBR, CA, CA.replace("|2.4|", "|2.6|")), ANALYTES, PARIS, GUARD)
    assert differing.code == "AE" and "same order, code and OBX-4" in differing.reasons[0]


# ---- item 8: PID-3 without an identifier type ----------------------------------------------------------------------
def test_an_untyped_identifier_alone_in_pid3_is_the_key_by_default_never_one_of_several() -> None:
    alone = from_hl7(hl7(msh(), "PID|1||PT-UNTYPED^^^CHU", OBR, CA), ANALYTES, PARIS, GUARD)
    assert alone.patient_id == "PT-UNTYPED" and len(alone.labs) == 1
    with pytest.raises(Rejected, match=r"\(untyped, alone in PID-3\)"):
        from_hl7(hl7(msh(), "PID|1||PT-A^^^CHU~PT-B^^^LAB", OBR, CA), ANALYTES, PARIS, GUARD)
    with pytest.raises(Rejected, match="not a pseudonymous patient ID"):  # a national number's shape: never a key
        from_hl7(hl7(msh(), "PID|1||1840275123456^^^CHU", OBR, CA), ANALYTES, PARIS, GUARD)
    # a typed identifier wins over the rule; a facility configured without it refuses untyped identifiers
    typed = from_hl7(hl7(msh(), "PID|1||PT-T^^^CHU^PI", OBR, CA), ANALYTES, PARIS, GUARD)
    assert typed.patient_id == "PT-T"
    strict = AnalyteMap(ANALYTES.local, {"default": (IdRule("PI"),)})
    with pytest.raises(Rejected, match="no identifier of an accepted type"):
        from_hl7(hl7(msh(), "PID|1||PT-UNTYPED^^^CHU", OBR, CA), strict, PARIS, GUARD)


def test_the_untyped_rule_per_facility_in_the_configuration(tmp_path: Path) -> None:
    cfg = tmp_path / "codes.yaml"
    cfg.write_text(
        "patient_identifiers:\n  default: [{type: PI}]\n  LAB-OLD: [{untyped: sole, authority: OLD}]\n",
        encoding="utf-8",
    )
    loaded = AnalyteMap.load(cfg)
    assert loaded.id_rules_for("LAB-OLD") == (IdRule("", "OLD", sole=True),)
    raw = hl7(msh().replace("LAB-24^1.2.250.1.71.4.2.2^ISO", "LAB-OLD"), "PID|1||PT-OLD^^^OLD", OBR, CA)
    assert from_hl7(raw, loaded, PARIS, GUARD).patient_id == "PT-OLD"
    cfg.write_text("patient_identifiers:\n  default: [{untyped: any}]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="untyped: sole"):
        AnalyteMap.load(cfg)


# ---- item 5: every FHIR date precision -----------------------------------------------------------------------------
def creatinine(effective: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "crea-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "subject": {"reference": "Patient/PT-FHIR-24"},
        **effective,
        "valueQuantity": {"value": 1.1, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
    }


def bundle(birth: str, effective: dict[str, Any]) -> bytes:
    patient = {"resourceType": "Patient", "id": "PT-FHIR-24", "gender": "female", "birthDate": birth}
    entries = [{"fullUrl": "Patient/PT-FHIR-24", "resource": patient}, {"resource": creatinine(effective)}]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()


years = st.integers(1900, 2030)
months = st.integers(1, 12)
days = st.integers(1, 28)
zones = st.sampled_from(["Z", "+01:00", "-05:00", "+14:00", "-00:00"])
fhir_date = st.one_of(
    years.map(lambda y: f"{y:04d}"),
    st.tuples(years, months).map(lambda t: f"{t[0]:04d}-{t[1]:02d}"),
    st.tuples(years, months, days).map(lambda t: f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}"),
)
fhir_datetime = st.one_of(
    fhir_date,
    st.tuples(
        fhir_date.filter(lambda d: len(d) == 10), st.integers(0, 23), st.integers(0, 59), zones, st.booleans()
    ).map(lambda t: f"{t[0]}T{t[1]:02d}:{t[2]:02d}:07{'.123' if t[4] else ''}{t[3]}"),
)


@settings(max_examples=300, deadline=None)
@given(birth=fhir_date, when=fhir_datetime, where=st.sampled_from(["effectiveDateTime", "effectivePeriod"]))
def test_every_fhir_date_precision_gets_an_answer_and_a_full_date_keeps_the_creatinine(
    birth: str, when: str, where: str
) -> None:
    """Before: Patient.birthDate "1962" gave HTTP 500 (a TypeError in the date check) and the creatinine was lost."""
    effective = {"effectiveDateTime": when} if where == "effectiveDateTime" else {"effectivePeriod": {"start": when}}
    v = fhir_verdict(bundle(birth, effective), ANALYTES, GUARD, PARIS)  # never raises
    assert v.status in (200, 202, 422)
    assert v.batch is not None
    full = len(when) >= 10 and datetime.fromisoformat(when.replace("Z", "+00:00")[:10]).date() <= NOW.date()
    crea = [x for x in v.batch.labs if x.analyte == "creatinine"]
    if len(when) < 10:  # a year or a month: the collection date is never guessed
        assert not crea and any("only a year or a month" in r for r in v.batch.rejections)
    elif full and len(when) == 10:
        assert len(crea) == 1 and crea[0].result.occurred_at_precision == "date" and v.status == 202
    patients = v.batch.patients
    if len(birth) < 10 and int(birth[:4]) <= NOW.year - 1:  # partial, in the past: sex kept, no birth date
        assert patients and patients[0].birth_date is None and patients[0].sex == "female"
        assert any("not a full date" in i for i in v.batch.ignored)
    elif len(birth) == 10 and date.fromisoformat(birth) <= NOW.date():
        assert patients and patients[0].birth_date == date.fromisoformat(birth)


def test_a_future_partial_birth_date_is_refused_as_a_future_date_not_a_crash() -> None:
    b = from_fhir(bundle("2027", {"effectiveDateTime": "2026-11-27"}), ANALYTES, GUARD, PARIS)
    assert any("Patient.birthDate is in the future" in r for r in b.rejections) and len(b.labs) == 1


# ---- item 6: dataAbsentReason ---------------------------------------------------------------------------------------
def absent(version: str, reason: str = "not-performed") -> bytes:
    obs = creatinine({"effectiveDateTime": "2026-11-27T08:00:00+01:00"})
    del obs["valueQuantity"]
    obs["meta"] = {"versionId": version, "lastUpdated": "2026-11-27T10:00:00+01:00"}
    obs["dataAbsentReason"] = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": reason}]
    }
    return json.dumps(obs).encode()


def valued(version: str) -> bytes:
    obs = creatinine({"effectiveDateTime": "2026-11-27T08:00:00+01:00"})
    obs["meta"] = {"versionId": version, "lastUpdated": "2026-11-27T09:00:00+01:00"}
    return json.dumps(obs).encode()


def test_data_absent_reason_is_accepted_as_no_value_and_never_published_as_a_value() -> None:
    v = fhir_verdict(absent("2"), ANALYTES, GUARD, PARIS)
    assert v.status == 202 and v.code == "AA" and not v.reasons  # before: 422 "no numeric valueQuantity"
    assert v.batch is not None
    [lab] = v.batch.labs
    assert lab.absent == "not-performed" and lab.value is None
    state, out = apply_ingested(LabState(), v.batch, CFG)
    assert out == []  # nothing to publish: no value, and no earlier value to withdraw
    assert state.results["fhir:crea-1"].value is None


def test_data_absent_reason_replacing_a_value_withdraws_it() -> None:
    first = from_fhir(valued("1"), ANALYTES, GUARD, PARIS)
    state, out = apply_ingested(LabState(), first, CFG)
    assert [o.value for o in out if o.analyte == "creatinine"] == [pytest.approx(97.24, abs=0.1)]
    state, out = apply_ingested(state, from_fhir(absent("2", "error"), ANALYTES, GUARD, PARIS), CFG)
    [withdrawn] = [o for o in out if o.analyte == "creatinine"]
    assert withdrawn.status == "withdrawn" and withdrawn.value is None and withdrawn.result_id == "fhir:crea-1"
    assert any("dataAbsentReason : error" in n for n in withdrawn.notes)
    # a late copy of the older, valued version changes nothing (LAB-CORRECTION)
    state, out = apply_ingested(state, first, CFG)
    assert [o for o in out if o.analyte == "creatinine"] == []
