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


def sres(out: Sequence[object]) -> list[SkeletalEvent]:
    return [o for o in out if isinstance(o, SkeletalEvent)]


def test_crisis_corrected_to_normal_withdraws_its_sre_and_corrected_back_issues_both_again() -> None:
    """LAB-CORRECTION downstream: the SRE goes with the crisis value; a second correction back to a crisis
    issues the alert and the SRE again, with the same IDs but another cause, so no consumer drops them as
    duplicates."""
    first = cc(3.60)
    s, out = apply_event(ScoringState(), first)
    [sre], [rec] = sres(out), recs(out)
    assert sre.status == "active" and sre.caused_by == rec.caused_by == str(first.event_id)

    normal = cc(2.60, recorded=T0 + timedelta(hours=1), status="amended")
    s, out = apply_event(s, normal)
    [gone] = sres(out)
    assert gone.status == "withdrawn" and gone.supersedes == [sre.event_id] and gone.kind == "hypercalcaemia"
    assert [r.status for r in recs(out)] == ["withdrawn"]
    assert s.sres == [] and s.calcium_sres == []

    back = cc(3.60, recorded=T0 + timedelta(hours=2), status="amended")
    s, out = apply_event(s, back)
    [sre2], [rec2] = sres(out), recs(out)
    assert (sre2.event_id, rec2.event_id) == (sre.event_id, rec.event_id)  # the same decisions...
    assert sre2.caused_by == rec2.caused_by == str(back.event_id)  # ...issued again, for another cause
    assert sre2.delivery_key() != sre.delivery_key() and rec2.delivery_key() != rec.delivery_key()
    assert s.sres == s.calcium_sres == [str(sre.event_id)]


def test_crisis_entered_in_error_withdraws_its_sre() -> None:
    s, out = apply_event(ScoringState(), cc(3.60))
    [sre] = sres(out)
    s, out = apply_event(s, cc(None, recorded=T0 + timedelta(hours=1), status="withdrawn"))
    assert [(x.status, x.supersedes) for x in sres(out)] == [("withdrawn", [sre.event_id])]


def test_an_ended_episode_keeps_its_sre() -> None:
    """A later normal value ends the episode; the hypercalcaemia still happened: its SRE stays."""
    s, _ = apply_event(ScoringState(), cc(3.60))
    s, out = apply_event(s, cc(2.40, rid="corrected:later", at=T0 + timedelta(days=1)))
    assert sres(out) == [] and len(s.calcium_sres) == 1


def test_when_the_first_crisis_value_is_corrected_the_episode_starts_at_the_next_one() -> None:
    """Two crisis values in one episode; the first corrected to normal: the episode (and its SRE) now starts
    at the second. The new SRE is published before the old one is withdrawn, so a consumer never sees the
    patient without an SRE in between."""
    s, _ = apply_event(ScoringState(), cc(3.60, rid="corrected:a"))
    s, out = apply_event(s, cc(3.70, rid="corrected:b", at=T0 + timedelta(hours=6)))
    assert out == []
    s, out = apply_event(s, cc(2.50, rid="corrected:a", recorded=T0 + timedelta(hours=8), status="amended"))
    assert [x.status for x in sres(out)] == ["active", "withdrawn"]
    assert [e.name for e in sres(out)[0].evidence] == ["corrected_calcium"] and sres(out)[0].evidence[0].value == 3.7
    assert len(s.calcium_sres) == 1 and s.calcium_sres[0] == str(sres(out)[0].event_id)
