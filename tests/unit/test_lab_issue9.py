"""Issue 9 items owned by lab-normalisation, each named after its rule: future-dated input (9.7), the nmol/L
boundaries of Tableau 1 and no rounding before a strict threshold (9.10), `missing` never naming a known input
(9.10), and a weight too old to dose from (9.9)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from contracts.clinical import NormalisedLab
from contracts.hospital import Coding, LabResult, PatientRecord
from services.lab_normalisation.domain import LabConfig, LabState, apply_ingested
from services.lab_normalisation.ingest import (
    AnalyteMap,
    Ingested,
    check_units,
    from_fhir,
    from_hl7,
    from_json_lab,
    from_json_patient,
)
from services.lab_normalisation.rules import CA_ALBUMIN_WINDOW, cockcroft_gault, corrected_calcium
from shared.clinical.clock import NotAfter
from shared.errors import Rejected

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
CFG = LabConfig(ca_albumin_window=CA_ALBUMIN_WINDOW, hospital_tz=PARIS)
ANALYTES = AnalyteMap.load(Path(__file__).resolve().parents[2] / "services/lab_normalisation/local_codes.yaml")
LOINC = {"total_calcium": "2000-8", "albumin": "1751-7", "creatinine": "14682-9", "body_weight": "29463-7",
         "vitamin_d_25oh": "1989-3"}  # fmt: skip


def lab(analyte: str, value: float, unit: str, rid: str, at: datetime = T0) -> LabResult:
    return LabResult(
        event_id=uuid.uuid4(),
        patient_id="p1",
        occurred_at=at,
        recorded_at=at,
        source="lab",
        result_id=rid,
        code=Coding(system="http://loinc.org", code=LOINC[analyte]),
        value=value,
        unit=unit,
    )


def patient(at: datetime = T0, **fields: object) -> PatientRecord:
    return PatientRecord.model_validate(
        {"event_id": uuid.uuid4(), "patient_id": "p1", "occurred_at": at, "recorded_at": at, "source": "t", **fields}
    )


def apply(
    state: LabState, *items: LabResult | PatientRecord, cfg: LabConfig = CFG
) -> tuple[LabState, list[NormalisedLab]]:
    labs = [x for x in (check_units(i, ANALYTES) for i in items if isinstance(i, LabResult)) if x is not None]
    batch = Ingested(key="k", patient_id="p1", labs=labs, patients=[i for i in items if isinstance(i, PatientRecord)])
    return apply_ingested(state, batch, cfg)


# ---- LAB-VITD (9.10): Tableau 1, L819-836, gives both units: nmol/L results are classed in nmol/L ----------
@pytest.mark.parametrize(
    ("value", "klass"),
    [
        (24.99, "deficiency"),  # < 25 nmol/L (24.99 / 2.496 = 10.01 ng/mL would say insufficiency)
        (25.0, "insufficiency"),  # 25 à < 75
        (74.99, "insufficiency"),  # 30.04 ng/mL once converted
        (75.0, "recommended"),  # 75 à 175
        (175.0, "recommended"),  # 70.11 ng/mL once converted
        (175.1, "above_recommended"),
        (375.0, "above_recommended"),  # > 375 only; 150.24 ng/mL once converted
        (375.1, "possible_intoxication"),
    ],
)
def test_LAB_VITD_nmol_boundaries_of_tableau_1_in_the_original_unit(value: float, klass: str) -> None:
    _, out = apply(LabState(), lab("vitamin_d_25oh", value, "nmol/L", "d"))
    assert out[0].interpretation == klass


# ---- no rounding before a strict threshold (9.10): LAB-CA-CORR then LAB-CA-CRISIS (> 3.5), LAB-CRCL (< 30) ------
def test_LAB_CA_CORR_corrected_calcium_is_not_rounded_before_the_crisis_threshold() -> None:
    _, out = apply(LabState(), lab("total_calcium", 3.504, "mmol/L", "ca"), lab("albumin", 40, "g/L", "alb"))
    [c] = [o for o in out if o.analyte == "corrected_calcium"]
    assert c.value == corrected_calcium(3.504, 40) and c.value > 3.5  # rounded to 2 places it was 3.50


def test_LAB_CRCL_clearance_is_not_rounded_before_the_30_ml_min_threshold() -> None:
    # (140 - 70) x 50 / (0.815 x 143.33) = 29.96 mL/min; rounded to 1 place it was 30.0
    _, out = apply(
        LabState(),
        patient(birth_date=date(1956, 4, 2), sex="male", weight_kg=50.0),
        lab("creatinine", 143.33, "umol/L", "cr"),
    )
    [c] = [o for o in out if o.analyte == "creatinine_clearance"]
    assert c.value == cockcroft_gault(70, 50.0, 143.33, female=False) and c.value < 30


# ---- LAB-CRCL `missing` (9.10): never names weight, age or sex once they are known ---------------------------
def test_LAB_CRCL_missing_never_names_known_inputs_when_the_record_comes_after_several_creatinines() -> None:
    """Two creatinines arrive before the patient record: both clearances were published with weight, age and
    sex missing; the record must complete both (only the newest was re-derived, the other kept saying
    'weight missing' to a planner reading the clearance at the start of zoledronic acid)."""
    s, out1 = apply(LabState(), lab("creatinine", 80, "umol/L", "cr1", at=T0))
    s, out2 = apply(s, lab("creatinine", 90, "umol/L", "cr2", at=T0 + timedelta(days=2)))
    s, out3 = apply(s, patient(T0, birth_date=date(1956, 4, 2), sex="female", weight_kg=60.0))
    latest: dict[str, NormalisedLab] = {}
    for o in out1 + out2 + out3:
        if o.analyte == "creatinine_clearance":
            latest[o.result_id] = o
    assert set(latest) == {"crcl:cr1", "crcl:cr2"}
    assert all(c.missing == [] and c.value is not None for c in latest.values())


# ---- LAB-CRCL weight recency (9.9) ----------------------------------------------------------------------------
def test_LAB_CRCL_a_weight_too_old_is_to_measure_again_not_used() -> None:
    s, _ = apply(LabState(), patient(T0, birth_date=date(1956, 4, 2), sex="male", weight_kg=70.0,
                                     weight_measured_at=date(2026, 9, 1)))  # fmt: skip
    s, out = apply(s, lab("creatinine", 80, "umol/L", "cr", at=T0 + timedelta(days=1)))
    [c] = [o for o in out if o.analyte == "creatinine_clearance"]
    assert c.value is None
    assert c.missing == ["weight to measure again (last measured 2026-09-01, over 30 days before the creatinine)"]
    _, out = apply(s, lab("body_weight", 68, "kg", "w", at=T0))  # weighed again: the clearance is computed
    [c] = [o for o in out if o.analyte == "creatinine_clearance"]
    assert c.value == cockcroft_gault(70, 68.0, 80, female=False) and c.missing == []


def test_LAB_CRCL_weight_recency_is_configurable() -> None:
    cfg = LabConfig(ca_albumin_window=CA_ALBUMIN_WINDOW, hospital_tz=PARIS, weight_max_age=timedelta(days=120))
    s, _ = apply(LabState(), patient(T0, birth_date=date(1956, 4, 2), sex="male", weight_kg=70.0,
                                     weight_measured_at=date(2026, 9, 1)), cfg=cfg)  # fmt: skip
    _, out = apply(s, lab("creatinine", 80, "umol/L", "cr", at=T0 + timedelta(days=1)), cfg=cfg)
    [c] = [o for o in out if o.analyte == "creatinine_clearance"]
    assert c.value is not None and c.missing == []


# ---- future-dated input (9.7) ---------------------------------------------------------------------------------
RECEIVED = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
GUARD = NotAfter(RECEIVED, timedelta(minutes=5))


def test_LAB_future_dated_json_result_is_rejected_beyond_the_clock_skew_tolerance() -> None:
    future = lab("total_calcium", 2.4, "mmol/L", "ca", at=datetime(2099, 1, 1, tzinfo=UTC))
    with pytest.raises(Rejected, match="in the future"):
        from_json_lab(future.model_dump_json().encode(), ANALYTES, GUARD)
    skewed = lab("total_calcium", 2.4, "mmol/L", "ca", at=RECEIVED + timedelta(minutes=4))
    assert from_json_lab(skewed.model_dump_json().encode(), ANALYTES, GUARD).labs


def test_LAB_future_dated_patient_record_and_weight_are_rejected() -> None:
    with pytest.raises(Rejected, match="in the future"):
        from_json_patient(patient(datetime(2099, 1, 1, tzinfo=UTC), sex="male").model_dump_json().encode(), GUARD)
    weighed = patient(RECEIVED, weight_kg=70.0, weight_measured_at=date(2027, 1, 1))
    with pytest.raises(Rejected, match="in the future"):
        from_json_patient(weighed.model_dump_json().encode(), GUARD)


def test_LAB_future_dated_hl7_obx_is_an_error_and_the_others_still_count() -> None:
    msg = "\r".join(
        [
            "MSH|^~\\&|LAB|HOSP|OSTEOCDS|HOSP|20261127091231+0100||ORU^R01|C1|P|2.5",
            "PID|1||PT-1^^^HOSP^PI||X^Y||19560402|F",
            "OBR|1|P1|F1|CHEM|||20261127074000+0100",
            "OBX|1|NM|2000-8^Ca^LN||2.4|mmol/L|||||F|||20991127074000+0100",
            "OBX|2|NM|1751-7^Alb^LN||40|g/L|||||F",
        ]
    ).encode()
    b = from_hl7(msg, ANALYTES, PARIS, GUARD)
    assert [x.analyte for x in b.labs] == ["albumin"]
    assert len(b.rejections) == 1 and "OBX 1" in b.rejections[0] and "in the future" in b.rejections[0]


def test_LAB_future_dated_fhir_observation_is_rejected() -> None:
    obs = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2000-8"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2099-11-27T07:40:00+01:00",
        "valueQuantity": {"value": 2.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
    }
    b = from_fhir(json.dumps(obs).encode(), ANALYTES, GUARD)
    assert not b.labs and "in the future" in b.rejections[0]


def test_LAB_CA_CORR_a_date_only_albumin_pairs_only_when_every_possible_hour_is_within_48_h() -> None:
    ca = lab("total_calcium", 3.3, "mmol/L", "ca", at=T0)  # 2026-11-01 08:00 UTC
    near = lab("albumin", 28, "g/L", "alb", at=T0 - timedelta(hours=8)).model_copy(
        update={"occurred_at_precision": "date"}  # 2026-11-01, hour unknown
    )
    _, out = apply(LabState(), ca, near)
    [c] = [o for o in out if o.analyte == "corrected_calcium"]
    assert c.value is not None
    far = lab("albumin", 28, "g/L", "alb", at=T0 + timedelta(hours=40)).model_copy(
        update={"occurred_at_precision": "date"}  # the day after tomorrow: maybe 64 h after the calcium
    )
    _, out = apply(LabState(), ca, far)
    [c] = [o for o in out if o.analyte == "corrected_calcium"]
    assert c.value is None and c.missing == ["albumin drawn within 48 h of the calcium"]
