"""Issue 12, LAB-CA-CRISIS (L304-306: "calcémie corrigée ... supérieure à 3,5 mmol/L"; formula L316): a corrected
calcium derived from a censored calcium and/or albumin is an interval. Certainly above 3.5: the crisis alert as for
an exact value; certainly below: nothing; straddling: no crisis, an insufficient-data warning naming the reported
value with its comparator and the exact value to measure. Table-driven; the corrected value and its bound are made
as lab-normalisation makes them (LAB-CA-CORR)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from contracts.clinical import NormalisedLab, Recommendation, SkeletalEvent, SourceRef
from contracts.hospital import Comparator
from services.lab_normalisation.rules import combine_bounds, corrected_calcium, flip
from services.scoring.domain import ScoringState, apply_event

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def corrected(
    total: float,
    total_cmp: Comparator | None,
    albumin: float | None,
    albumin_cmp: Comparator | None = None,
    *,
    rid: str = "corrected:ca",
    at: datetime = T0,
) -> NormalisedLab:
    """The corrected calcium lab-normalisation publishes for these results (value and bound, or none)."""
    sources = [
        SourceRef(
            event_id=uuid.uuid4(),
            analyte="total_calcium",
            value=total,
            unit="mmol/L",
            occurred_at=at,
            comparator=total_cmp,
        )
    ]
    value: float | None = None
    comparator: Comparator | None = None
    missing = ["albumin drawn within 48 h of the calcium"]
    if albumin is not None:
        sources.append(
            SourceRef(
                event_id=uuid.uuid4(),
                analyte="albumin",
                value=albumin,
                unit="g/L",
                occurred_at=at,
                comparator=albumin_cmp,
            )
        )
        comparator, bounded = combine_bounds([total_cmp, flip(albumin_cmp)])
        value = corrected_calcium(total, albumin) if bounded else None
        missing = [] if bounded else ["exact calcium or albumin (censored in opposite directions: no bound)"]
    return NormalisedLab(
        event_id=uuid.uuid4(),
        patient_id="p1",
        occurred_at=at,
        recorded_at=at,
        source="lab-normalisation",
        analyte="corrected_calcium",
        result_id=rid,
        value=value,
        unit="mmol/L",
        derived_from=sources,
        missing=missing,
        comparator=comparator if value is not None else None,
    )


def recs(out: Sequence[object]) -> list[Recommendation]:
    return [o for o in out if isinstance(o, Recommendation) and o.status == "active"]


def outcome(out: Sequence[object]) -> str:
    rs = recs(out)
    if any(r.severity == "critical" for r in rs):
        return "crisis"
    if any("censurée" in r.title for r in rs):
        return "insufficient"
    if any("non calculable" in r.title for r in rs):
        return "unconfirmed"
    return "none"


@pytest.mark.parametrize(
    ("total", "total_cmp", "albumin", "albumin_cmp", "expected"),
    [
        (3.6, None, 40, None, "crisis"),  # exact, as before
        (3.4, None, 40, None, "none"),
        (3.6, ">", 40, None, "crisis"),  # > 3.6 is above 3.5 whatever it is
        (3.5, ">", 40, None, "crisis"),  # > 3.5 meets the strict threshold
        (3.5, ">=", 40, None, "insufficient"),  # >= 3.5 may be exactly 3.5: not a crisis then
        (2.5, ">", 40, None, "insufficient"),  # > 2.5: a crisis neither affirmed nor excluded
        (2.0, "<", 40, None, "none"),  # < 2.0: certainly no crisis
        (3.3, "<", 20, None, "insufficient"),  # corrected < 3.8
        (3.4, ">", 30, "<", "crisis"),  # corrected > 3.65 (less albumin raises it)
        (3.4, None, 36, ">", "none"),  # corrected < 3.5
        (3.45, None, 36, ">", "insufficient"),  # corrected < 3.55
        (3.6, "<", 30, "<", "insufficient"),  # opposite directions: no bound at all; the calcium < 3.6 may be > 3.5
        (3.0, "<", 30, "<", "none"),  # no bound on the corrected value, and the measured one is below the threshold
        (3.6, ">", None, None, "unconfirmed"),  # no albumin: the measured > 3.6 is above the threshold
        (3.6, "<", None, None, "insufficient"),  # no albumin and a measured < 3.6: never read as 3.6
        (3.0, None, None, None, "none"),
    ],
)
def test_LAB_CA_CRISIS_decides_only_when_the_whole_interval_lies_on_one_side(
    total: float, total_cmp: Comparator | None, albumin: float | None, albumin_cmp: Comparator | None, expected: str
) -> None:
    _, out = apply_event(ScoringState(), corrected(total, total_cmp, albumin, albumin_cmp))
    assert outcome(out) == expected
    sres = [o for o in out if isinstance(o, SkeletalEvent)]
    assert bool(sres) is (expected == "crisis")  # an SRE only from a certain crisis


def test_the_insufficient_data_warning_names_the_reported_value_and_what_to_measure() -> None:
    _, out = apply_event(ScoringState(), corrected(2.5, ">", 40))
    [rec] = recs(out)
    assert rec.severity == "warning" and rec.rule_id == "LAB-CA-CRISIS"
    assert "calcémie totale > 2.5 mmol/L" in rec.title and "> 2.5 mmol/L" in rec.text_fr
    assert "Doser une calcémie totale exacte" in rec.text_fr
    assert rec.missing == ["exact total_calcium (reported > 2.5 mmol/L; censored, measure again)"]
    total = next(i for i in rec.inputs if i.name == "total_calcium")
    assert (total.comparator, total.value) == (">", 2.5)
    assert next(i for i in rec.inputs if i.name == "corrected_calcium").comparator == ">"


def test_a_certain_censored_crisis_shows_its_comparator() -> None:
    _, out = apply_event(ScoringState(), corrected(3.6, ">", 40))
    [rec] = recs(out)
    assert rec.severity == "critical" and "> 3.60 mmol/L" in rec.title and "censuré" in rec.text_fr
    assert next(i for i in rec.inputs if i.name == "corrected_calcium").comparator == ">"


def test_a_straddling_value_neither_opens_nor_ends_an_episode() -> None:
    s, out = apply_event(ScoringState(), corrected(3.8, None, 40))
    assert outcome(out) == "crisis"
    # a newer "> 2.5": it does not say the crisis is over, nor that it goes on; the alert stays, and it is said
    s, out = apply_event(s, corrected(2.5, ">", 40, rid="corrected:ca2", at=T0 + timedelta(hours=6)))
    assert not [o for o in out if isinstance(o, Recommendation) and o.status == "withdrawn"]
    assert any("censurée" in r.title for r in recs(out))
    # a newer certain "< 2.0" ends it: no new crisis, and the insufficient-data warning is withdrawn
    s, out = apply_event(s, corrected(2.0, "<", 40, rid="corrected:ca3", at=T0 + timedelta(hours=12)))
    withdrawn = [o for o in out if isinstance(o, Recommendation) and o.status == "withdrawn"]
    assert any(w.rule_id == "LAB-CA-CRISIS" for w in withdrawn)
    assert not any(r.severity == "critical" for r in recs(out))
