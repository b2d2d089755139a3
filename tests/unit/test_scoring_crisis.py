"""LAB-CA-CRISIS (L313-315): corrected calcium > 3.5 mmol/L, an SRE (CLASS-SRE)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from contracts.clinical import NormalisedLab, Recommendation, SkeletalEvent, SourceRef
from services.scoring.domain import ScoringState, apply_event
from services.scoring.rules import is_hypercalcaemic_crisis

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("corrected", "crisis"),
    [
        (3.49, False),
        (3.50, False),
        (3.51, True),
        (3.60, True),
        (2.40, False),
        (4.5, True),
    ],
)
def test_crisis_threshold_is_strictly_above_3_5(corrected: float, crisis: bool) -> None:
    assert is_hypercalcaemic_crisis(corrected) is crisis


def cc(
    value: float | None,
    *,
    rid: str = "corrected:ca",
    at: datetime = T0,
    recorded: datetime | None = None,
    status: str = "final",
    measured: float | None = None,
) -> NormalisedLab:
    src = (
        []
        if measured is None
        else [SourceRef(event_id=uuid.uuid4(), analyte="total_calcium", value=measured, unit="mmol/L", occurred_at=at)]
    )
    return NormalisedLab(
        event_id=uuid.uuid4(),
        patient_id="p1",
        occurred_at=at,
        recorded_at=recorded or at,
        source="lab-normalisation",
        analyte="corrected_calcium",
        result_id=rid,
        value=value,
        unit="mmol/L",
        status=status,
        derived_from=src,
        missing=[] if value is not None else ["albumin drawn within 48 h of the calcium"],
    )


def recs(out: Sequence[object]) -> list[Recommendation]:
    return [o for o in out if isinstance(o, Recommendation)]


def test_crisis_gives_one_critical_alert_and_one_sre_per_episode() -> None:
    s, out = apply_event(ScoringState(), cc(3.60))
    [rec] = recs(out)
    assert rec.severity == "critical" and rec.rule_id == "LAB-CA-CRISIS" and rec.citation.lines == "L296-316"
    assert [o.kind for o in out if isinstance(o, SkeletalEvent)] == ["hypercalcaemia"]
    # a second crisis draw in the same episode: no new alert
    s, out = apply_event(s, cc(3.70, rid="corrected:ca2", at=T0 + timedelta(hours=6)))
    assert out == []
    # back to normal: the episode ends, its alert stays; a new crisis is a new episode and alerts again
    s, out = apply_event(s, cc(2.50, rid="corrected:ca3", at=T0 + timedelta(days=2)))
    assert out == []
    s, out = apply_event(s, cc(3.80, rid="corrected:ca4", at=T0 + timedelta(days=5)))
    assert len(recs(out)) == 1


def test_amended_below_threshold_withdraws_and_replay_is_silent() -> None:
    s, out = apply_event(ScoringState(), cc(3.60))
    rec_id = recs(out)[0].event_id
    amended = cc(2.60, recorded=T0 + timedelta(hours=1), status="amended")
    s, out = apply_event(s, amended)
    [w] = recs(out)
    assert w.status == "withdrawn" and w.supersedes == [rec_id]
    assert apply_event(s, amended) == (s, [])


def test_older_crisis_value_arriving_late_does_not_alert_but_is_recorded_as_an_sre() -> None:
    s, _ = apply_event(ScoringState(), cc(2.40, rid="corrected:new", at=T0))
    s, out = apply_event(s, cc(3.90, rid="corrected:old", at=T0 - timedelta(days=1)))
    assert recs(out) == []
    assert [o.kind for o in out if isinstance(o, SkeletalEvent)] == ["hypercalcaemia"]


def test_missing_albumin_with_high_measured_calcium_warns_and_names_missing() -> None:
    s, out = apply_event(ScoringState(), cc(None, measured=3.70))
    [rec] = recs(out)
    assert rec.severity == "warning" and rec.missing == ["albumin drawn within 48 h of the calcium"]
    # albumin arrives: the warning is withdrawn and the confirmed crisis alerts
    s, out = apply_event(s, cc(3.95, recorded=T0 + timedelta(hours=1)))
    kinds = sorted((r.status, r.severity) for r in recs(out))
    assert kinds == [("active", "critical"), ("withdrawn", "info")]


def test_missing_albumin_with_normal_measured_calcium_is_silent() -> None:
    _, out = apply_event(ScoringState(), cc(None, measured=2.30))
    assert out == []
