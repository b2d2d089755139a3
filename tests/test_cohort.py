"""The cohort generator (devstack/cohort.py, issue 25): deterministic, valid contract messages that every service
accepts, dated in the past and in publication order, with a realistic mix."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from contracts.hospital import ClinicalAssessment, ImagingFinding, LabResult, TreatmentEvent
from contracts.topics import TOPICS
from devstack.cohort import ANCHOR, Cohort, _span, patient_history
from devstack.cohort_model import HOSPITAL_TZ, INPUT_TOPICS, Generated
from devstack.replay import Replay
from services.lab_normalisation.loinc import LOINC_ANALYTES

MODEL_OF = {t.name: t.value for t in TOPICS}


def _raw(events: list[Generated]) -> list[tuple[str, str, bytes, int]]:
    return [(g.topic, g.key, g.value(), g.timestamp_ms) for g in events]


def test_the_same_seed_gives_the_same_bytes_and_another_seed_others() -> None:
    first = _raw(list(Cohort(7, 12, 1).events()))
    assert first == _raw(list(Cohort(7, 12, 1).events()))
    assert first != _raw(list(Cohort(8, 12, 1).events()))
    assert len(first) > 12 * 50  # ~110 messages a patient-year, some patients followed less than the year


def test_a_patient_is_the_same_in_a_cohort_of_any_size() -> None:
    assert _raw(list(Cohort(7, 3, 2).patient(2))) == _raw(list(Cohort(7, 40, 2).patient(2)))


def _dates(model: BaseModel) -> list[date]:
    """Every date and datetime inside a message (nested models and lists included)."""
    out: list[date] = []

    def walk(value: Any) -> None:
        if isinstance(value, date):
            out.append(value)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    walk(model)
    return out


@pytest.mark.parametrize("end", [ANCHOR, datetime.now(UTC)], ids=["anchor", "now"])
def test_every_message_is_its_topics_contract_dated_in_the_past_and_in_publication_order(end: datetime) -> None:
    cohort = Cohort(5, 15, 2, end)
    inputs = {t.name for t in INPUT_TOPICS}
    last: datetime | None = None
    per_patient: dict[str, datetime] = {}
    seen_ids: set[Any] = set()
    seen_results: set[str] = set()
    for g in cohort.events():
        assert g.topic in inputs
        m = g.message
        # valid against its contract, as sent (compared as JSON: a time in the hour repeated when DST ends, fold=1,
        # never compares equal to the same instant in another zone, PEP 495)
        assert MODEL_OF[g.topic].model_validate_json(g.value()).model_dump(mode="json") == m.model_dump(mode="json")
        assert g.key == m.patient_id
        assert m.occurred_at <= m.recorded_at <= end
        for d in _dates(m):  # a date counts from its first minute in the hospital's zone
            at = d if isinstance(d, datetime) else datetime.combine(d, time.min, HOSPITAL_TZ)
            assert at <= end
        assert last is None or m.recorded_at >= last  # the cohort in publication order
        assert m.recorded_at >= per_patient.get(m.patient_id, m.recorded_at)
        last = per_patient[m.patient_id] = m.recorded_at
        # a correction comes after what it corrects, and names it
        corrects = getattr(m, "corrects", None)
        if corrects is not None:
            assert corrects in seen_ids
        if isinstance(m, LabResult):
            if m.status != "final":
                assert m.result_id in seen_results
            seen_results.add(m.result_id)
        seen_ids.add(m.event_id)


def test_the_lab_codes_are_those_lab_normalisation_reads() -> None:
    codes = {g.message.code.code for g in Cohort(3, 40, 1).events() if isinstance(g.message, LabResult)}
    assert codes <= set(LOINC_ANALYTES)
    assert {LOINC_ANALYTES[c] for c in codes} == {"total_calcium", "albumin", "creatinine", "vitamin_d_25oh"}


def test_the_mix_is_realistic() -> None:
    """Rates per patient-year as documented: a draw (calcium, albumin, creatinine) every 1-4 weeks, 25-OH vitamin D
    about every 3 months, imaging every 2-4 months, assessments every 4-8 weeks, corrections a small fraction,
    crises rare; every patient on a systemic line, most on an antiresorptive."""
    seed, patients, years = 11, 150, 2.0
    cohort = Cohort(seed, patients, years)
    followed = sum(
        (stop - start).days / 365.25 for start, stop in (_span(seed, i, years, cohort.end) for i in range(patients))
    )
    analytes: Counter[str] = Counter()
    studies: set[tuple[str, datetime]] = set()
    treatments: Counter[str] = Counter()
    started: dict[str, set[str]] = defaultdict(set)
    kinds: Counter[str] = Counter()
    corrections = crises = total = 0
    for g in cohort.events():
        m = g.message
        total += 1
        kinds[g.topic] += 1
        if isinstance(m, LabResult):
            analyte = LOINC_ANALYTES[m.code.code]
            analytes[analyte] += m.status == "final"
            corrections += m.status != "final"
            if analyte == "total_calcium" and m.value is not None:
                mmol = m.value / 4.008 if m.unit == "mg/dL" else m.value
                crises += mmol > 3.4  # a total calcium this high is a crisis once corrected for albumin
        elif isinstance(m, ImagingFinding):
            studies.add((m.patient_id, m.occurred_at))
            corrections += m.record_status != "final"
        elif isinstance(m, ClinicalAssessment):
            corrections += m.record_status != "final"
        elif isinstance(m, TreatmentEvent):
            treatments[m.treatment.kind] += 1
            corrections += m.record_status != "final"
            if m.treatment.kind == "systemic_drug" and m.treatment.action == "started":
                started[m.patient_id].add(m.treatment.drug)
    per_year = {k: v / followed for k, v in analytes.items()}
    assert 13 <= per_year["total_calcium"] <= 52
    assert analytes["albumin"] == analytes["creatinine"] == analytes["total_calcium"]  # drawn together (finals)
    assert 2 <= per_year["vitamin_d_25oh"] <= 8
    assert 3 <= len(studies) / followed <= 6
    assert 6 <= kinds["hospital.clinical-assessments.v1"] / followed <= 14
    assert 0.002 <= corrections / total <= 0.03
    assert 0 < crises <= 0.02 * analytes["total_calcium"]
    assert 0.3 <= treatments["radiotherapy"] / followed <= 3
    assert 0 < treatments["surgery"] <= treatments["radiotherapy"]
    assert treatments["dental"] > 0 and kinds["hospital.care-events.v1"] > 0
    assert kinds["hospital.local-treatment-requests.v1"] > 0 and kinds["hospital.patient-records.v1"] >= patients
    antiresorptive = {p for p, drugs in started.items() if drugs & {"zoledronic_acid", "denosumab"}}
    assert len(started) == patients  # every patient on a systemic line
    assert 0.6 * patients <= len(antiresorptive) <= patients


def test_a_patient_history_has_the_length_asked_in_order() -> None:
    for n in (10, 1000):
        history = patient_history(2, n)
        assert len(history) == n
        assert len({g.key for g in history}) == 1
        times = [g.message.recorded_at for g in history]
        assert times == sorted(times) and times[-1] <= ANCHOR
    whole = patient_history(2, 10**6, years=5, density=1.0)  # a realistic 5-year patient, whole
    assert 5 * 60 <= len(whole) <= 5 * 200
    assert whole[0].message.recorded_at >= ANCHOR - timedelta(days=5 * 366)


def test_every_service_accepts_every_message_of_a_small_cohort() -> None:
    """Replayed through the five services (devstack/replay.py), at the time of publication: no dead letter."""
    cohort = Cohort(21, 4, 1, datetime.now(UTC))
    replay = Replay(keep=False)
    replay.run(cohort.events())
    assert replay.reasons == []
    assert replay.inputs["lab-normalisation"] > 0 and replay.inputs["radiotherapy-planner"] > 0
