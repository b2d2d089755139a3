"""LAB-CORRECTION, LAB-CA-CORR pairing, LAB-CRCL, LAB-VITD, LAB-CTX on the per-patient lab aggregate (pure)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from contracts.clinical import NormalisedLab
from contracts.hospital import Coding, LabResult, PatientRecord
from services.lab_normalisation.domain import LabConfig, LabState, apply_ingested
from services.lab_normalisation.ingest import AnalyteMap, Ingested, check_units
from services.lab_normalisation.rules import CA_ALBUMIN_WINDOW

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
CFG = LabConfig(ca_albumin_window=CA_ALBUMIN_WINDOW, hospital_tz=ZoneInfo("Europe/Paris"))
CODES = {
    "total_calcium": "2000-8",
    "albumin": "1751-7",
    "ionised_calcium": "1994-3",
    "creatinine": "14682-9",
    "body_weight": "29463-7",
    "vitamin_d_25oh": "1989-3",
}
ANALYTES = AnalyteMap.load(Path("services/lab_normalisation/local_codes.yaml"))


def result(
    analyte: str,
    value: float | None,
    unit: str,
    *,
    rid: str,
    at: datetime = T0,
    recorded: datetime | None = None,
    status: str = "final",
    fasting: bool | None = None,
    code: Coding | None = None,
) -> LabResult:
    return LabResult.model_validate(
        {
            "event_id": uuid.uuid4(),
            "patient_id": "p1",
            "occurred_at": at,
            "recorded_at": recorded or at,
            "source": "lab",
            "result_id": rid,
            "code": code or Coding(system="http://loinc.org", code=CODES.get(analyte, "x")),
            "value": value,
            "unit": unit,
            "status": status,
            "fasting": fasting,
        }
    )


def apply(state: LabState, *items: LabResult | PatientRecord) -> tuple[LabState, list[NormalisedLab]]:
    labs = [x for x in (check_units(i, ANALYTES) for i in items if isinstance(i, LabResult)) if x is not None]
    batch = Ingested(key="k", patient_id="p1", labs=labs, patients=[i for i in items if isinstance(i, PatientRecord)])
    return apply_ingested(state, batch, CFG)


def derived(out: list[NormalisedLab], analyte: str = "corrected_calcium") -> list[NormalisedLab]:
    return [o for o in out if o.analyte == analyte]


def test_calcium_alone_says_albumin_is_missing_then_pairs() -> None:
    s, out = apply(LabState(), result("total_calcium", 3.30, "mmol/L", rid="ca"))
    [c] = derived(out)
    assert c.value is None and c.missing == ["albumin drawn within 48 h of the calcium"]
    s, out = apply(s, result("albumin", 28, "g/L", rid="alb", at=T0 + timedelta(hours=1)))
    [c] = derived(out)
    assert c.value == pytest.approx(3.60) and c.result_id == "corrected:ca" and c.missing == []
    assert {r.analyte for r in c.derived_from} == {"total_calcium", "albumin"}


def test_calcium_and_albumin_in_one_message_publish_one_corrected_value() -> None:
    _, out = apply(LabState(), result("total_calcium", 3.30, "mmol/L", rid="ca"), result("albumin", 28, "g/L", rid="a"))
    assert [c.value for c in derived(out)] == [pytest.approx(3.60)]


def test_repeated_or_late_version_has_no_effect() -> None:
    recorded = T0 + timedelta(hours=2)
    s, _ = apply(LabState(), result("total_calcium", 3.30, "mmol/L", rid="ca", recorded=recorded))
    s2, out = apply(s, result("total_calcium", 2.10, "mmol/L", rid="ca", recorded=T0))
    assert out == [] and s2 == s


def test_amendment_replaces_and_rederives() -> None:
    s, _ = apply(LabState(), result("total_calcium", 3.30, "mmol/L", rid="ca"), result("albumin", 28, "g/L", rid="a"))
    s, out = apply(
        s, result("total_calcium", 2.30, "mmol/L", rid="ca", status="amended", recorded=T0 + timedelta(hours=1))
    )
    assert out[0].status == "amended" and out[0].value == 2.30 and "LAB-CORRECTION" in out[0].rule_ids
    [c] = derived(out)
    assert c.value == pytest.approx(2.60) and c.status == "amended"


def test_entered_in_error_withdraws_value_and_derived() -> None:
    s, _ = apply(LabState(), result("total_calcium", 3.30, "mmol/L", rid="ca"), result("albumin", 28, "g/L", rid="a"))
    s, out = apply(
        s,
        result("total_calcium", None, "mmol/L", rid="ca", status="entered-in-error", recorded=T0 + timedelta(hours=1)),
    )
    assert out[0].status == "withdrawn" and out[0].value is None
    [c] = derived(out)
    assert c.status == "withdrawn" and c.value is None


def test_albumin_withdrawn_repairs_with_next_closest() -> None:
    s, _ = apply(
        LabState(),
        result("total_calcium", 3.30, "mmol/L", rid="ca"),
        result("albumin", 28, "g/L", rid="alb1", at=T0 + timedelta(hours=1)),
        result("albumin", 36, "g/L", rid="alb2", at=T0 + timedelta(hours=20)),
    )
    gone = result(
        "albumin",
        None,
        "g/L",
        rid="alb1",
        at=T0 + timedelta(hours=1),
        status="entered-in-error",
        recorded=T0 + timedelta(hours=30),
    )
    s, out = apply(s, gone)
    [c] = derived(out)
    assert c.value == pytest.approx(3.40)  # paired with alb2 now


def test_ionised_calcium_is_reported_beside() -> None:
    s, _ = apply(LabState(), result("total_calcium", 2.40, "mmol/L", rid="ca"), result("albumin", 40, "g/L", rid="a"))
    s, out = apply(s, result("ionised_calcium", 1.30, "mmol/L", rid="ion"))
    [c] = derived(out)
    assert c.value == pytest.approx(2.40) and "ionised_calcium" in {r.analyte for r in c.derived_from}


def patient(**fields: object) -> PatientRecord:
    return PatientRecord.model_validate(
        {"event_id": uuid.uuid4(), "patient_id": "p1", "occurred_at": T0, "recorded_at": T0, "source": "t", **fields}
    )


# LAB-CRCL (L1153-1156): (140 - age) x weight / (0.815 x creatinine µmol/L), x 0.85 for a woman
@pytest.mark.parametrize(
    ("birth", "sex", "weight", "creat", "expected"),
    [
        (date(1956, 4, 2), "male", 70.0, 80.0, (140 - 70) * 70 / (0.815 * 80)),  # 75.15
        (date(1956, 4, 2), "female", 70.0, 80.0, (140 - 70) * 70 / (0.815 * 80) * 0.85),
        (date(1956, 11, 2), "male", 60.0, 120.0, (140 - 69) * 60 / (0.815 * 120)),  # birthday not yet
        (date(1940, 1, 1), "female", 50.0, 200.0, (140 - 86) * 50 / (0.815 * 200) * 0.85),
    ],
)
def test_cockcroft_gault(birth: date, sex: str, weight: float, creat: float, expected: float) -> None:
    _, out = apply(
        LabState(),
        patient(birth_date=birth, sex=sex, weight_kg=weight),
        result("creatinine", creat, "umol/L", rid="cr"),
    )
    [c] = derived(out, "creatinine_clearance")
    assert c.value == pytest.approx(expected) and c.unit == "mL/min" and c.missing == []
    assert {r.analyte for r in c.derived_from} == {"creatinine", "body_weight", "age", "sex"}


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({"birth_date": date(1956, 4, 2), "sex": "male"}, ["weight"]),
        ({"sex": "female", "weight_kg": 60.0}, ["age (birth date)"]),
        ({"birth_date": date(1956, 4, 2), "weight_kg": 60.0}, ["sex"]),
        (
            {"birth_date": date(1956, 4, 2), "weight_kg": 60.0, "sex": "unknown"},
            ["sex (female or male, for the Cockcroft-Gault factor)"],
        ),
        ({}, ["weight", "age (birth date)", "sex"]),
    ],
)
def test_clearance_names_what_is_missing(fields: dict[str, object], missing: list[str]) -> None:
    _, out = apply(LabState(), patient(**fields), result("creatinine", 80, "umol/L", rid="cr"))
    [c] = derived(out, "creatinine_clearance")
    assert c.value is None and c.missing == missing


def test_clearance_uses_the_weight_closest_to_each_creatinine_and_is_never_downgraded_by_absent_fields() -> None:
    s, _ = apply(LabState(), patient(birth_date=date(1956, 4, 2), sex="male", weight_kg=70.0))
    s, out = apply(s, result("creatinine", 1.0, "mg/dL", rid="cr1"))
    first = derived(out, "creatinine_clearance")[0].value
    s, out = apply(s, patient(histology="adenocarcinoma"))  # no weight/sex/birth: nothing lost, nothing new
    assert derived(out, "creatinine_clearance") == []
    s, out = apply(s, result("body_weight", 60, "kg", rid="w2", at=T0 + timedelta(days=9)))
    assert derived(out, "creatinine_clearance") == []  # cr1 keeps the weight measured with it
    s, out = apply(s, result("creatinine", 1.0, "mg/dL", rid="cr2", at=T0 + timedelta(days=10)))
    [c] = derived(out, "creatinine_clearance")
    assert c.result_id == "crcl:cr2" and first is not None and c.value is not None and c.value < first
    assert next(r.value for r in c.derived_from if r.analyte == "body_weight") == 60


# LAB-VITD, Tableau 1 (ng/mL, or nmol/L classed in nmol/L)
@pytest.mark.parametrize(
    ("value", "unit", "klass"),
    [
        (9.9, "ng/mL", "deficiency"),
        (10, "ng/mL", "insufficiency"),
        (19.9, "ng/mL", "insufficiency"),
        (20, "ng/mL", "insufficiency"),
        (29.9, "ng/mL", "insufficiency"),
        (30, "ng/mL", "recommended"),
        (70, "ng/mL", "recommended"),
        (70.1, "ng/mL", "above_recommended"),
        (150, "ng/mL", "above_recommended"),
        (150.1, "ng/mL", "possible_intoxication"),
        (24.9, "nmol/L", "deficiency"),
        (49.92, "nmol/L", "insufficiency"),
        (74.88, "nmol/L", "insufficiency"),  # Tableau 1: 25 to < 75 nmol/L (30.0 ng/mL once converted)
        (374.5, "nmol/L", "above_recommended"),  # > 375 nmol/L only (150.04 ng/mL once converted)
    ],
)
def test_vitamin_d_class(value: float, unit: str, klass: str) -> None:
    _, out = apply(LabState(), result("vitamin_d_25oh", value, unit, rid="d"))
    assert out[0].interpretation == klass and "LAB-VITD" in out[0].rule_ids


CTX = Coding(system="urn:oid:1.2.250.1.999.1", code="CTX")
PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("local_time", "fasting", "interpretation"),
    [
        ("07:30", True, "interpretable"),
        ("08:59", True, "interpretable"),
        ("09:00", True, "not_interpretable"),
        ("11:15", True, "not_interpretable"),
        ("07:30", False, "not_interpretable"),
        ("07:30", None, "not_interpretable"),
    ],
)
def test_ctx_interpretability(local_time: str, fasting: bool | None, interpretation: str) -> None:
    hh, mm = map(int, local_time.split(":"))
    at = datetime(2026, 11, 27, hh, mm, tzinfo=PARIS)
    _, out = apply(LabState(), result("ctx_serum", 450, "pg/mL", rid="ctx", at=at, fasting=fasting, code=CTX))
    assert out[0].interpretation == interpretation
    assert bool(out[0].notes) is (interpretation == "not_interpretable")


def test_same_inputs_give_the_same_derived_event_id() -> None:
    ca, alb = result("total_calcium", 3.3, "mmol/L", rid="ca"), result("albumin", 28, "g/L", rid="alb")
    _, out1 = apply(LabState(), ca, alb)
    _, out2 = apply(LabState(), ca, alb)
    assert [o.event_id for o in out1] == [o.event_id for o in out2]


def test_rederived_clearance_is_never_older_than_the_one_it_replaces() -> None:
    """Regression: creatinine first, patient record later; the completed clearance must supersede the first."""
    s, out = apply(LabState(), result("creatinine", 80, "umol/L", rid="cr", recorded=T0))
    [first] = derived(out, "creatinine_clearance")
    later = T0 + timedelta(minutes=5)
    record = patient(birth_date=date(1956, 4, 2), sex="male", weight_kg=70.0).model_copy(update={"recorded_at": later})
    _, out = apply(s, record)
    [second] = derived(out, "creatinine_clearance")
    assert first.value is None and second.value is not None
    assert second.recorded_at == later > first.recorded_at


def test_old_results_are_pruned_but_each_analytes_newest_is_kept() -> None:
    s, _ = apply(LabState(), result("creatinine", 80, "umol/L", rid="cr-old", at=T0 - timedelta(days=400)))
    s, _ = apply(s, result("total_calcium", 2.4, "mmol/L", rid="ca-old", at=T0 - timedelta(days=200)))
    s, _ = apply(s, result("total_calcium", 2.5, "mmol/L", rid="ca-new", at=T0))
    assert set(s.results) == {"cr-old", "ca-new"}  # old calcium dropped; the only creatinine kept
    assert all(k.split(":", 1)[1] in s.results for k in s.published_derived)
