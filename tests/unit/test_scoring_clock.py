"""Scoring's own clock (issue 18): a crisis calcium and a cord compression stop being current emergencies when
their window passes, with no other event; the remaining life expectancy crossing 3 months re-decides a Mirels."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from contracts.clinical import Recommendation, SkeletalEvent
from contracts.clock import ClockTick
from contracts.hospital import ClinicalAssessment, ImagingFinding
from services.scoring.domain import ScoringState, apply_event
from services.scoring.rules import DEFAULT_POLICY
from shared.clinical.life_expectancy import DAYS_PER_MONTH
from tests.unit.test_scoring_crisis import cc

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def tick(s: ScoringState, patient_id: str = "p1") -> ClockTick:
    assert s.next_due is not None
    return ClockTick(
        event_id=uuid.uuid4(),
        patient_id=patient_id,
        occurred_at=s.next_due,
        recorded_at=s.next_due,
        source="scoring",
        service="scoring",
        due_at=s.next_due,
    )


def test_a_crisis_calcium_stops_being_a_current_emergency_on_the_clock() -> None:
    s, out = apply_event(ScoringState(), cc(3.8), now=T0)
    assert [r.severity for r in out if isinstance(r, Recommendation)] == ["critical"]
    assert s.next_due == T0 + DEFAULT_POLICY.calcium_current + timedelta(seconds=1)
    s, out = apply_event(s, tick(s), now=tick(s).recorded_at)
    recs = [r for r in out if isinstance(r, Recommendation) and r.status == "active"]
    assert [r.severity for r in recs] == ["warning"] and recs[0].missing == ["a recent corrected calcium"]
    [sre] = [e for e in out if isinstance(e, SkeletalEvent) and e.status == "active"]
    assert sre.current is False


def test_a_cord_compression_sre_becomes_historical_on_the_clock() -> None:
    finding = ImagingFinding(
        event_id=uuid.uuid4(),
        patient_id="p2",
        occurred_at=T0,
        recorded_at=T0,
        source="pacs",
        lesion_id="T8-a",
        skeletal_site="spine",
        vertebral_level="T8",
        modality="mri",
        cord_compression=True,
    )
    s, out = apply_event(ScoringState(), finding, now=T0)
    [sre] = [e for e in out if isinstance(e, SkeletalEvent)]
    assert sre.kind == "cord_compression" and sre.current is True
    assert s.next_due == T0 + DEFAULT_POLICY.lesion_event_current + timedelta(seconds=1)
    t = tick(s, "p2")
    s, out = apply_event(s, t, now=t.recorded_at)
    assert [e.current for e in out if isinstance(e, SkeletalEvent) and e.status == "active"] == [False]


def test_the_remaining_life_expectancy_crossing_a_threshold_is_a_deadline() -> None:
    estimate = ClinicalAssessment(
        event_id=uuid.uuid4(),
        patient_id="p3",
        occurred_at=T0,
        recorded_at=T0,
        source="ehr",
        life_expectancy_months=5.0,
    )
    s, _ = apply_event(ScoringState(), estimate, now=T0)
    assert s.next_due == T0 + timedelta(days=2 * DAYS_PER_MONTH, seconds=1)  # 5 -> 3 months left


def test_a_cord_compression_inferred_from_an_epidural_extension_and_a_deficit_becomes_historical_on_the_clock() -> None:
    """CLASS-SRE / RT-MSCC: an epidural extension of a spinal lesion with a neurological deficit is a cord
    compression current while both facts are recent (the older decides); when it ages out, the clock re-decides."""
    finding = ImagingFinding(
        event_id=uuid.uuid4(),
        patient_id="p4",
        occurred_at=T0,
        recorded_at=T0,
        source="pacs",
        lesion_id="T10-a",
        skeletal_site="spine",
        vertebral_level="T10",
        modality="mri",
        epidural_extension=True,
    )
    later = T0 + timedelta(days=3)
    deficit = ClinicalAssessment(
        event_id=uuid.uuid4(),
        patient_id="p4",
        occurred_at=later,
        recorded_at=later,
        source="ehr",
        neurological_deficit=True,
    )
    s, _ = apply_event(ScoringState(), finding, now=T0)
    s, out = apply_event(s, deficit, now=later)
    [sre] = [e for e in out if isinstance(e, SkeletalEvent)]
    assert sre.kind == "cord_compression" and sre.current is True
    # the older fact (the finding) leaves its window first: the deadline is then, not at the deficit's
    assert s.next_due == T0 + DEFAULT_POLICY.lesion_event_current + timedelta(seconds=1)
    t = tick(s, "p4")
    s, out = apply_event(s, t, now=t.recorded_at)
    assert [e.current for e in out if isinstance(e, SkeletalEvent) and e.status == "active"] == [False]
