"""LAB-CORRECTION on derived values: when a withdrawn input returns a derived value to an earlier state (a clearance
back to "weight missing", a corrected calcium back to "albumin missing"), the new publication is a new fact: a new
event ID (a consumer deduplicating on event IDs would otherwise drop it) and a recorded time no older than the
withdrawal (a consumer keeping the newest would otherwise keep the value derived from the withdrawn input)."""

from __future__ import annotations

from datetime import timedelta

from contracts.hospital import PatientRecord
from services.lab_normalisation.domain import LabState
from tests.unit.test_lab_domain import T0, apply, derived, result


def test_a_clearance_back_to_weight_missing_after_the_weight_is_withdrawn_is_a_new_newer_fact() -> None:
    record = PatientRecord.model_validate(
        {
            "event_id": "00000000-0000-0000-0000-0000000000aa",
            "patient_id": "p1",
            "occurred_at": T0 - timedelta(days=1),
            "recorded_at": T0 - timedelta(days=1),
            "source": "adt",
            "birth_date": "1956-04-02",
            "sex": "male",
        }
    )
    s, _ = apply(LabState(), record)
    s, out = apply(s, result("creatinine", 90, "umol/L", rid="cr", at=T0))
    [first] = derived(out, "creatinine_clearance")
    assert first.value is None and first.missing == ["weight"]
    s, out = apply(s, result("body_weight", 70, "kg", rid="w", at=T0 + timedelta(hours=1)))
    [valued] = derived(out, "creatinine_clearance")
    assert valued.value is not None
    withdrawn_at = T0 + timedelta(hours=5)
    s, out = apply(
        s,
        result(
            "body_weight",
            None,
            "kg",
            rid="w",
            at=T0 + timedelta(hours=1),
            recorded=withdrawn_at,
            status="entered-in-error",
        ),
    )
    [again] = derived(out, "creatinine_clearance")
    assert again.value is None and again.missing == ["weight"]
    assert again.event_id not in (first.event_id, valued.event_id)
    assert again.recorded_at >= withdrawn_at and again.recorded_at > valued.recorded_at


def test_a_corrected_calcium_back_to_albumin_missing_after_the_albumin_is_withdrawn_is_a_new_newer_fact() -> None:
    s, out = apply(LabState(), result("total_calcium", 3.3, "mmol/L", rid="ca", at=T0))
    [first] = derived(out)
    s, out = apply(s, result("albumin", 28, "g/L", rid="alb", at=T0 + timedelta(hours=1)))
    [valued] = derived(out)
    assert valued.value is not None
    withdrawn_at = T0 + timedelta(hours=6)
    s, out = apply(
        s,
        result(
            "albumin",
            None,
            "g/L",
            rid="alb",
            at=T0 + timedelta(hours=1),
            recorded=withdrawn_at,
            status="entered-in-error",
        ),
    )
    [again] = derived(out)
    assert again.value is None and again.missing == first.missing
    assert again.event_id not in (first.event_id, valued.event_id)
    assert again.recorded_at >= withdrawn_at and again.recorded_at > valued.recorded_at
