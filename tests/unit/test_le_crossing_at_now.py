"""HAZ-26-LE-01: a life-expectancy threshold crossed at the very moment a deadline is computed. The radiotherapy
planner's and scoring's clocks searched the crossings strictly after `now`; a crossing at `now` exactly (a tick or an
event at that instant: times to the minute or the hour make it reachable) was skipped, though the decision changes
just after it: RT-MSCC kept "immediate neurosurgical opinion" up to a day after less than 6 weeks were left (SURG-LE,
L2804-2806). Found by helper ZM on a random example of review RK's clock property
(tests/unit/test_review_rk_rt_clock.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.hospital import ClinicalAssessment, ImagingFinding
from services.radiotherapy_planner import domain as rt
from services.radiotherapy_planner.facts import LocalState, lesions
from services.radiotherapy_planner.memo import clear as rt_clear
from services.scoring import clock
from services.scoring.domain import apply_event as scoring_apply
from services.scoring.state import ScoringState
from shared.clinical.life_expectancy import SIX_WEEKS_IN_MONTHS, THRESHOLDS, when_remaining_reaches
from tests.unit.histories import envelope

ESTIMATED = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ESTIMATE = 4.0  # months
SECOND = timedelta(seconds=1)


def _assessment(patient: str) -> ClinicalAssessment:
    return ClinicalAssessment.model_validate(
        envelope(ESTIMATED, 1, patient, (7103, 3)) | {"life_expectancy_months": ESTIMATE}
    )


def _mscc(s: LocalState, at: datetime) -> list[str]:
    plan = rt.build_plan(s, now=at, by_lesion=lesions(s))
    return [i.content for sec in plan for i in sec.items if i.rule_id == "RT-MSCC"]


def test_the_radiotherapy_planner_ticks_just_after_a_crossing_at_now() -> None:
    rt_clear()
    patient = "pt-le-crossing-rt"
    seen = datetime(2026, 4, 10, 2, 0, tzinfo=UTC)  # a cord compression at T8, while 4 months were estimated
    finding = ImagingFinding.model_validate(
        envelope(seen, 2, patient, (7103, 3))
        | {"lesion_id": "t8", "skeletal_site": "spine", "vertebral_level": "T8", "modality": "mri"}
        | {"cord_compression": True}
    )
    s = LocalState()
    for e in (_assessment(patient), finding):
        s, _ = rt.apply_event(s, e, now=e.recorded_at)
    crossing = when_remaining_reaches(ESTIMATE, ESTIMATED, SIX_WEEKS_IN_MONTHS)
    assert crossing == datetime(2026, 5, 21, 2, 0, tzinfo=UTC)  # on the hour, as the finding: a tick can fall on it
    # the test means something: the emergency's advice changes just after the crossing (no surgery under 6 weeks)
    assert _mscc(s, crossing) != _mscc(s, crossing + SECOND)
    for now in (crossing - timedelta(hours=6), crossing - SECOND, crossing):
        due = rt.next_due(s, now)
        assert due is not None and due <= crossing + SECOND, (now, due)


@pytest.mark.parametrize("remembered", [True, False], ids=["per-patient", "scanned"])
def test_scoring_ticks_just_after_a_crossing_at_now(remembered: bool) -> None:
    patient = "pt-le-crossing-scoring"
    s, _ = scoring_apply(ScoringState(), _assessment(patient), now=ESTIMATED)
    for threshold in THRESHOLDS[1:]:  # 3 months, 6 weeks (4 months estimated: 1 year is already behind)
        crossing = when_remaining_reaches(ESTIMATE, ESTIMATED, threshold)
        for now in (crossing - SECOND, crossing):
            due = clock.next_due(s, now, patient=patient if remembered else None)
            assert due is not None and due <= crossing + SECOND, (threshold, now, due)
