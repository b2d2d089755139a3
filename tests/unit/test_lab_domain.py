"""LAB-CORRECTION and LAB-CA-CORR pairing on the per-patient lab aggregate (pure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from contracts.clinical import NormalisedLab
from contracts.hospital import LabResult
from services.lab_normalisation.domain import LabState, apply_result
from services.lab_normalisation.rules import CA_ALBUMIN_WINDOW, to_canonical

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
CODES = {"total_calcium": "2000-8", "albumin": "1751-7", "ionised_calcium": "1994-3"}


def result(
    analyte: str,
    value: float | None,
    unit: str,
    *,
    rid: str,
    at: datetime = T0,
    recorded: datetime | None = None,
    status: str = "final",
) -> LabResult:
    return LabResult(
        event_id=uuid.uuid4(),
        patient_id="p1",
        occurred_at=at,
        recorded_at=recorded or at,
        source="lab",
        result_id=rid,
        code={"system": "http://loinc.org", "code": CODES[analyte]},
        value=value,
        unit=unit,
        status=status,
    )


def apply(state: LabState, r: LabResult, analyte: str) -> tuple[LabState, list[NormalisedLab]]:
    if r.value is None:
        value, unit = None, "mmol/L" if "calcium" in analyte else "g/L"
    else:
        value, unit, _ = to_canonical(analyte, r.value, r.unit)  # type: ignore[arg-type]
    return apply_result(state, r, analyte, value, unit, r.unit, None, CA_ALBUMIN_WINDOW)  # type: ignore[arg-type]


def corrected(out: list[NormalisedLab]) -> list[NormalisedLab]:
    return [o for o in out if o.analyte == "corrected_calcium"]


def test_calcium_alone_says_albumin_is_missing_then_pairs() -> None:
    s, out = apply(LabState(), result("total_calcium", 3.30, "mmol/L", rid="ca"), "total_calcium")
    [c] = corrected(out)
    assert c.value is None and c.missing == ["albumin drawn within 48 h of the calcium"]
    s, out = apply(s, result("albumin", 28, "g/L", rid="alb", at=T0 + timedelta(hours=1)), "albumin")
    [c] = corrected(out)
    assert c.value == 3.60 and c.result_id == "corrected:ca" and c.missing == []
    assert {r.analyte for r in c.derived_from} == {"total_calcium", "albumin"}


def test_repeated_or_late_version_has_no_effect() -> None:
    recorded = T0 + timedelta(hours=2)
    s, _ = apply(LabState(), result("total_calcium", 3.30, "mmol/L", rid="ca", recorded=recorded), "total_calcium")
    s2, out = apply(s, result("total_calcium", 2.10, "mmol/L", rid="ca", recorded=T0), "total_calcium")
    assert out == [] and s2 == s


def test_amendment_replaces_and_rederives() -> None:
    s, _ = apply(LabState(), result("total_calcium", 3.30, "mmol/L", rid="ca"), "total_calcium")
    s, _ = apply(s, result("albumin", 28, "g/L", rid="alb"), "albumin")
    s, out = apply(
        s,
        result("total_calcium", 2.30, "mmol/L", rid="ca", status="amended", recorded=T0 + timedelta(hours=1)),
        "total_calcium",
    )
    assert out[0].status == "amended" and out[0].value == 2.30 and "LAB-CORRECTION" in out[0].rule_ids
    [c] = corrected(out)
    assert c.value == 2.60 and c.status == "amended"


def test_entered_in_error_withdraws_value_and_derived() -> None:
    s, _ = apply(LabState(), result("total_calcium", 3.30, "mmol/L", rid="ca"), "total_calcium")
    s, _ = apply(s, result("albumin", 28, "g/L", rid="alb"), "albumin")
    s, out = apply(
        s,
        result("total_calcium", None, "mmol/L", rid="ca", status="entered-in-error", recorded=T0 + timedelta(hours=1)),
        "total_calcium",
    )
    assert out[0].status == "withdrawn" and out[0].value is None
    [c] = corrected(out)
    assert c.status == "withdrawn" and c.value is None


def test_albumin_withdrawn_repairs_with_next_closest() -> None:
    s, _ = apply(LabState(), result("total_calcium", 3.30, "mmol/L", rid="ca"), "total_calcium")
    s, _ = apply(s, result("albumin", 28, "g/L", rid="alb1", at=T0 + timedelta(hours=1)), "albumin")
    s, _ = apply(s, result("albumin", 36, "g/L", rid="alb2", at=T0 + timedelta(hours=20)), "albumin")
    s, out = apply(
        s,
        result(
            "albumin",
            None,
            "g/L",
            rid="alb1",
            at=T0 + timedelta(hours=1),
            status="entered-in-error",
            recorded=T0 + timedelta(hours=30),
        ),
        "albumin",
    )
    [c] = corrected(out)
    assert c.value == 3.40  # paired with alb2 now


def test_ionised_calcium_is_reported_beside() -> None:
    s, _ = apply(LabState(), result("total_calcium", 2.40, "mmol/L", rid="ca"), "total_calcium")
    s, _ = apply(s, result("albumin", 40, "g/L", rid="alb"), "albumin")
    s, out = apply(s, result("ionised_calcium", 1.30, "mmol/L", rid="ion"), "ionised_calcium")
    [c] = corrected(out)
    assert c.value == 2.40 and "ionised_calcium" in {r.analyte for r in c.derived_from}


def test_same_inputs_give_the_same_derived_event_id() -> None:
    ca, alb = result("total_calcium", 3.3, "mmol/L", rid="ca"), result("albumin", 28, "g/L", rid="alb")
    s1, _ = apply(LabState(), ca, "total_calcium")
    _, out1 = apply(s1, alb, "albumin")
    s2, _ = apply(LabState(), ca, "total_calcium")
    _, out2 = apply(s2, alb, "albumin")
    assert corrected(out1)[0].event_id == corrected(out2)[0].event_id
