"""Review RLE (of HAZ-26-LE-01): around every life-expectancy crossing (1 year, 3 months, 6 weeks), the
radiotherapy planner's and scoring's clocks (a) never give a due at or before `now` (no tick loop: the runtime fires
a past due at once) and (b) give a due no later than a second after the first crossing not yet acted on (the first
with c > now - 1 s: the decision changes at c or at c + 1 us, never before c, see the float check below)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.hospital import ClinicalAssessment
from services.radiotherapy_planner import domain as rt
from services.radiotherapy_planner.facts import LocalState
from services.radiotherapy_planner.memo import clear as rt_clear
from services.radiotherapy_planner.rules.surgery import surgery_excluded as rt_surgery_excluded
from services.scoring import clock
from services.scoring.domain import apply_event as scoring_apply
from services.scoring.state import ScoringState
from shared.clinical.life_expectancy import THRESHOLDS, band, remaining_months, when_remaining_reaches
from tests.unit.histories import envelope

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SECOND, US = timedelta(seconds=1), timedelta(microseconds=1)
OFFSETS = (-SECOND, -US, timedelta(0), US, SECOND - US, SECOND)


def _assessment(patient: str, at: datetime, months: float) -> ClinicalAssessment:
    return ClinicalAssessment.model_validate(envelope(at, 1, patient, (7919, 11)) | {"life_expectancy_months": months})


_estimates = st.one_of(st.integers(1, 96).map(lambda k: k / 4), st.floats(0.05, 30, allow_nan=False))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(months=_estimates, minutes=st.integers(0, 60 * 24 * 3), which=st.sampled_from(THRESHOLDS))
def test_review_rle_clocks_around_a_crossing(months: float, minutes: int, which: float) -> None:
    at = T0 + timedelta(minutes=minutes)
    crossing = when_remaining_reaches(months, at, which)
    if crossing <= at:
        return
    patient = f"pt-rle-{minutes}-{months}"
    rt_clear()
    s_rt, _ = rt.apply_event(LocalState(), _assessment(patient, at, months), now=at)
    s_sc, _ = scoring_apply(ScoringState(), _assessment(patient, at, months), now=at)
    crossings = sorted(when_remaining_reaches(months, at, m) for m in THRESHOLDS)
    for off in OFFSETS:
        now = crossing + off
        first = min((c for c in crossings if c > now - SECOND), default=None)
        dues = {
            "rt": rt.next_due(s_rt, now),
            "scoring-remembered": clock.next_due(s_sc, now, patient=patient),
            "scoring-scanned": clock.next_due(s_sc, now),
        }
        for name, due in dues.items():
            assert due is None or due > now, (name, now, due)  # (a)
            if first is not None:
                assert due is not None and due <= first + SECOND, (name, now, first, due)  # (b)


@settings(max_examples=2000, deadline=None)
@given(
    months=st.floats(0.01, 600, allow_nan=False),
    micros=st.integers(0, 10**13),
    which=st.sampled_from(THRESHOLDS),
)
def test_review_rle_the_decision_never_changes_before_the_computed_crossing(
    months: float, micros: int, which: float
) -> None:
    """(d) float rounding: at a microsecond resolution the band (and the radiotherapy planner's own 6-week test in
    days) changes at the computed crossing c or at c + 1 us, never before c: a tick at c + 1 s is never early, and at
    most 1 s late (the design's lag for every moment)."""
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    if months <= which:
        return
    c = when_remaining_reaches(months, at, which)
    for f in (band, rt_surgery_excluded):
        before = f(remaining_months(months, at, c - SECOND))
        assert f(remaining_months(months, at, c - US)) == before
        assert f(remaining_months(months, at, c + SECOND)) == f(remaining_months(months, at, c + 2 * US))
