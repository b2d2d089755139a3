"""Review of issue 24 (H-review24): valid FHIR and HL7 dates that are no clinical date (year 1, 9999 at UTC-14) are
refused with a reason, on every path, instead of crashing the parse (HTTP 500) or the aggregate (accepted over HTTP,
then dead-lettered as an unexpected error); a leap second is a time like any other."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.lab_normalisation.common import AnalyteMap
from services.lab_normalisation.domain import LabConfig, LabState, apply_ingested
from services.lab_normalisation.ingest import Verdict, fhir_verdict, from_fhir, from_json_lab, hl7_verdict
from services.lab_normalisation.rules import CA_ALBUMIN_WINDOW
from shared.clinical.clock import NotAfter
from shared.errors import Rejected

ROOT = Path(__file__).resolve().parents[2]
ANALYTES = AnalyteMap.load(ROOT / "services/lab_normalisation/local_codes.yaml")
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CFG = LabConfig(ca_albumin_window=CA_ALBUMIN_WINDOW, hospital_tz=PARIS)
ODD_FHIR = ["0001-01-01", "0001-01-01T00:00:00+14:00", "1899-12-31", "9999-12-31T23:59:59-14:00"]
ODD_HL7 = ["00010101", "00010101000000+1400", "18991231", "99991231235959-1400"]


def observation(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "subject": {"reference": "Patient/P1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "valueQuantity": {"value": 80, "unit": "umol/L", "code": "umol/L"},
        "effectiveDateTime": "2026-11-27T08:00:00+01:00",
    }
    doc.update(extra)
    return doc


def fhir(doc: dict[str, Any]) -> Verdict:
    return fhir_verdict(json.dumps(doc).encode(), ANALYTES, NotAfter(NOW), PARIS)


def applied(verdict: Verdict) -> None:
    """What the consumer does with what HTTP published: it must not raise."""
    if verdict.publish:
        assert verdict.batch is not None
        apply_ingested(LabState(), verdict.batch, CFG)


@pytest.mark.parametrize("value", ODD_FHIR)
@pytest.mark.parametrize("where", ["effectiveDateTime", "issued", "birthDate", "lastUpdated"])
def test_a_fhir_date_of_year_1_or_9999_is_refused_with_a_reason(value: str, where: str) -> None:
    if where == "effectiveDateTime":
        doc = observation(effectiveDateTime=value)
    elif where == "issued":
        doc = observation(issued=value if "T" in value else f"{value}T00:00:00Z")
    else:
        patient: dict[str, Any] = {"resourceType": "Patient", "id": "P1", "gender": "female"}
        if where == "birthDate":
            patient["birthDate"] = value[:10]
        else:
            patient["meta"] = {"lastUpdated": value if "T" in value else f"{value}T00:00:00Z"}
        doc = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": patient}, {"resource": observation()}],
        }
    verdict = fhir(doc)  # never raises
    assert verdict.code == "AE" and any(w in r for r in verdict.reasons for w in ("1900", "out of range", "future"))
    applied(verdict)
    if where in ("birthDate", "lastUpdated"):  # the rest of the message is kept
        assert verdict.batch is not None and len(verdict.batch.labs) == 1 and not verdict.batch.patients


def hl7(obx14: str = "", pid7: str = "19560402") -> bytes:
    return "\r".join(
        [
            "MSH|^~\\&|LAB|FAC|OSTEOCDS|CHU|20261127091231+0100||ORU^R01|C1|P|2.5.1",
            f"PID|1||PT-24^^^CHU^PI||X^Y||{pid7}|F",
            "OBR|1|P1|F1|CHEM|||20261127074000+0100",
            f"OBX|1|NM|14682-9^Creat^LN||90|umol/L|||||F|||{obx14}",
        ]
    ).encode()


@pytest.mark.parametrize("value", ODD_HL7)
def test_an_hl7_specimen_time_or_birth_date_of_year_1_or_9999_is_refused_with_a_reason(value: str) -> None:
    verdict = hl7_verdict(hl7(obx14=value), ANALYTES, PARIS, NotAfter(NOW))
    assert verdict.code == "AE" and any("OBX 1" in r for r in verdict.reasons)
    applied(verdict)
    if len(value) == 8:
        birth = hl7_verdict(hl7(pid7=value), ANALYTES, PARIS, NotAfter(NOW))
        assert birth.code == "AE" and any(r.startswith("PID") and "1900" in r for r in birth.reasons)
        assert birth.batch is not None and not birth.batch.patients  # no age from it (LAB-CRCL)
        applied(birth)


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_json_lab_result_of_year_1_or_9999_is_refused(value: str) -> None:
    raw = json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "patient_id": "p1",
            "occurred_at": value,
            "recorded_at": value,
            "source": "lab",
            "result_id": "r1",
            "code": {"system": "http://loinc.org", "code": "14682-9"},
            "value": 90,
            "unit": "umol/L",
            "status": "final",
        }
    ).encode()
    with pytest.raises(Rejected):
        from_json_lab(raw, ANALYTES, NotAfter(NOW))


@pytest.mark.parametrize("where", ["effectiveDateTime", "lastUpdated"])
def test_a_leap_second_is_a_time_not_a_partial_date(where: str) -> None:
    """FHIR allows second 60 (a leap second); the model leaves it a string. It is read as the last instant of that
    minute, not refused as "only a year or a month"."""
    doc = observation(effectiveDateTime="2016-12-31T23:59:60Z")
    if where == "lastUpdated":
        doc = observation(meta={"lastUpdated": "2016-12-31T23:59:60Z"})
    verdict = fhir(doc)
    assert verdict.code == "AA", verdict.reasons
    assert verdict.batch is not None
    [lab] = verdict.batch.labs
    when = lab.result.occurred_at if where == "effectiveDateTime" else lab.result.recorded_at
    assert when.astimezone(UTC).replace(microsecond=0) == datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_a_patients_last_updated_at_a_leap_second_is_read_not_a_crash() -> None:
    """Patient.meta.lastUpdated "...:60Z" (valid FHIR) gave a TypeError in the date check (HTTP 500)."""
    patient = {
        "resourceType": "Patient",
        "id": "P1",
        "birthDate": "1956-04-02",
        "meta": {"lastUpdated": "2016-12-31T23:59:60Z"},
    }
    doc = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": patient}, {"resource": observation()}],
    }
    verdict = fhir(doc)
    assert verdict.code == "AA" and verdict.batch is not None
    [record] = verdict.batch.patients
    assert record.recorded_at.astimezone(UTC).replace(microsecond=0) == datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)
    applied(verdict)


def _calcium_version(version: str, status: str, value: float | None, last_updated: str) -> dict[str, Any]:
    """A version of one calcium Observation whose `issued` (the original release) the laboratory did not change."""
    doc = observation(
        id="ca1",
        status=status,
        code={"coding": [{"system": "http://loinc.org", "code": "2000-8"}]},
        valueQuantity={"value": value, "unit": "mmol/L", "code": "mmol/L"},
        issued="2026-11-27T09:00:00+01:00",
        meta={"versionId": version, "lastUpdated": last_updated},
    )
    if value is None:
        doc.pop("valueQuantity")
        doc["dataAbsentReason"] = {"coding": [{"code": "error"}]}
    return doc


@pytest.mark.parametrize(
    ("status", "value", "expected"),
    [
        ("amended", 2.4, ("amended", 2.4)),
        ("final", None, ("withdrawn", None)),
        ("entered-in-error", 2.4, ("withdrawn", None)),
    ],
)
def test_a_new_version_with_the_same_issued_time_replaces_the_first(
    status: str, value: float | None, expected: tuple[str, float | None]
) -> None:
    """LAB-CORRECTION: an amended (or withdrawn, or no-value) version of an Observation whose `issued` stayed the
    original release time, with a newer meta.lastUpdated, was ignored as "not newer": the crisis value 3.9 stayed in
    force after the laboratory corrected it."""
    state = LabState()
    outputs = []
    for doc in (
        _calcium_version("1", "final", 3.9, "2026-11-27T09:00:00+01:00"),
        _calcium_version("2", status, value, "2026-11-27T11:00:00+01:00"),
    ):
        batch = from_fhir(json.dumps(doc).encode(), ANALYTES, NotAfter(NOW), PARIS)
        state, out = apply_ingested(state, batch, CFG)
        outputs.append([(o.status, o.value) for o in out if o.result_id == "fhir:ca1"])
    assert outputs == [[("final", 3.9)], [expected]]
    # the first version delivered again changes nothing
    again = from_fhir(
        json.dumps(_calcium_version("1", "final", 3.9, "2026-11-27T09:00:00+01:00")).encode(),
        ANALYTES,
        NotAfter(NOW),
        PARIS,
    )
    assert apply_ingested(state, again, CFG)[1] == []


def test_at_an_equal_recorded_time_a_correction_replaces_a_final_result_and_not_the_reverse() -> None:
    """Without meta.lastUpdated (or HL7 with an unchanged MSH-7), the versions' recorded times are equal: a correction
    (amended, corrected, entered in error) is by definition the newer one (LAB-CORRECTION)."""
    from tests.unit.test_lab_domain import T0, apply, result

    final = result("total_calcium", 3.9, "mmol/L", rid="ca", at=T0, recorded=T0)
    amended = result("total_calcium", 2.4, "mmol/L", rid="ca", at=T0, recorded=T0, status="amended")
    s, _ = apply(LabState(), final)
    s, out = apply(s, amended)
    assert [(o.status, o.value) for o in out if o.result_id == "ca"] == [("amended", 2.4)]
    s, out = apply(s, final)  # the final version arriving late
    assert out == []
    s2, _ = apply(LabState(), amended)
    assert apply(s2, final)[1] == []
