"""LAB-CA-CRISIS (L313-315): corrected calcium > 3.5 mmol/L, an SRE (CLASS-SRE)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from contracts.clinical import NormalisedLab, Recommendation, SkeletalEvent, SourceRef
from services.scoring.domain import ScoringState, apply_event
from services.scoring.rules import Policy, is_hypercalcaemic_crisis, shown

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("corrected", "crisis"),
    [
        (3.49, False),
        (3.50, False),
        (3.504, True),
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
    assert (
        rec.severity == "critical"
        and rec.rule_id == "LAB-CA-CRISIS"
        and rec.citation.lines == "L294-296, L300-306, L316"
    )
    [sre] = [o for o in out if isinstance(o, SkeletalEvent)]
    assert sre.kind == "hypercalcaemia" and sre.current is True and sre.evidence_at == T0
    # a second crisis draw in the same episode: no new alert; the SRE's newest evidence moves (a new version, the
    # earlier one withdrawn), so that `current_until` follows the newest crisis value
    s, out = apply_event(s, cc(3.70, rid="corrected:ca2", at=T0 + timedelta(hours=6)))
    assert recs(out) == []
    assert [(x.status, x.current, x.evidence_at) for x in sres(out)] == [
        ("active", True, T0 + timedelta(hours=6)),
        ("withdrawn", None, None),
    ]
    # back to normal: the episode ends, its alert stays, its SRE becomes historical; a new crisis alerts again
    s, out = apply_event(s, cc(2.50, rid="corrected:ca3", at=T0 + timedelta(days=2)))
    assert recs(out) == [] and [(x.status, x.current) for x in sres(out)] == [("active", False), ("withdrawn", None)]
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


def test_LAB_CA_CRISIS_older_crisis_arriving_late_is_said_but_neither_alerted_nor_a_current_emergency() -> None:
    """Issue 9 items 6-7: a crisis collected yesterday arriving after today's normal value raises no crisis alert,
    but an info names its time and the newer value, and its SRE is historical (`current` false)."""
    s, _ = apply_event(ScoringState(), cc(2.40, rid="corrected:new", at=T0))
    late = cc(3.90, rid="corrected:old", at=T0 - timedelta(days=1))
    s, out = apply_event(s, late)
    [info] = recs(out)
    assert info.severity == "info" and info.rule_id == "LAB-CA-CRISIS"
    yesterday = f"{T0 - timedelta(days=1):%d/%m/%Y à %H:%M}"
    assert yesterday in info.text_fr and "3.90" in info.text_fr and "2.40" in info.text_fr
    assert {i.value for i in info.inputs if i.name == "corrected_calcium"} == {3.9, 2.4}
    [sre] = sres(out)
    assert sre.kind == "hypercalcaemia" and sre.current is False and sre.current_until is None
    assert sre.evidence_at == T0 - timedelta(days=1)
    assert apply_event(s, late) == (s, [])  # a redelivery changes nothing


def test_LAB_CA_CRISIS_crisis_alerted_then_ended_keeps_its_alert_and_gets_no_late_notice() -> None:
    s, _ = apply_event(ScoringState(), cc(3.90, rid="corrected:old", at=T0 - timedelta(days=1)))
    s, out = apply_event(s, cc(2.40, rid="corrected:new", at=T0))
    assert recs(out) == []


def test_LAB_CA_CRISIS_future_dated_normal_value_does_not_hide_todays_crisis() -> None:
    """Issue 9 item 7: a normal value dated 2099 is left out of the decisions (and said); today's crisis alerts."""
    now = T0 + timedelta(hours=1)
    s, out = apply_event(ScoringState(), cc(2.30, rid="corrected:2099", at=datetime(2099, 1, 1, tzinfo=UTC)), now=now)
    [info] = recs(out)
    assert info.severity == "info" and "futur" in info.text_fr and "01/01/2099" in info.text_fr
    s, out = apply_event(s, cc(3.70, rid="corrected:today", at=T0), now=now)
    [alert] = recs(out)
    assert alert.severity == "critical"
    [sre] = sres(out)
    assert sre.current is True and sre.current_until == T0 + timedelta(hours=72)


def test_LAB_CA_CRISIS_old_newest_crisis_value_is_not_a_current_emergency() -> None:
    """A crisis value that is the newest but older than the recency window: a warning to measure again, and a
    historical SRE, never a current emergency (policy window configurable)."""
    policy = Policy(calcium_current=timedelta(hours=24))
    _, out = apply_event(ScoringState(), cc(3.70), now=T0 + timedelta(hours=30), policy=policy)
    [rec] = recs(out)
    assert rec.severity == "warning" and rec.missing == ["a recent corrected calcium"]
    [sre] = sres(out)
    assert sre.current is False
    _, out = apply_event(ScoringState(), cc(3.70), now=T0 + timedelta(hours=20), policy=policy)
    assert [r.severity for r in recs(out)] == ["critical"] and sres(out)[0].current is True


def test_LAB_CA_CRISIS_threshold_is_compared_unrounded_and_displayed_without_hiding_it() -> None:
    """3.504 mmol/L is above 3.5: a crisis, shown as 3.504 (never "3.50", which reads as not above 3.5)."""
    _, out = apply_event(ScoringState(), cc(3.504))
    [alert] = recs(out)
    assert alert.severity == "critical" and "3.504" in alert.title and "3.504" in alert.text_fr
    assert apply_event(ScoringState(), cc(3.5))[1] == []
    assert shown(3.504, 3.5) == "3.504" and shown(3.6, 3.5) == "3.60" and shown(3.5, 3.5) == "3.50"


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


def test_an_ended_episode_keeps_its_sre_as_historical() -> None:
    """A later normal value ends the episode; the hypercalcaemia still happened: its SRE stays, now historical
    (a new version with `current` false; the current one is withdrawn so no consumer takes it as an emergency)."""
    s, out = apply_event(ScoringState(), cc(3.60))
    [first] = sres(out)
    s, out = apply_event(s, cc(2.40, rid="corrected:later", at=T0 + timedelta(days=1)))
    historical, gone = sres(out)
    assert (historical.status, historical.current) == ("active", False)
    assert gone.status == "withdrawn" and gone.supersedes == [first.event_id]
    assert s.calcium_sres == [str(historical.event_id)]


def test_when_the_first_crisis_value_is_corrected_the_episode_starts_at_the_next_one() -> None:
    """Two crisis values in one episode; the first corrected to normal: the episode (and its SRE) now starts
    at the second. The new SRE is published before the old one is withdrawn, so a consumer never sees the
    patient without an SRE in between."""
    s, _ = apply_event(ScoringState(), cc(3.60, rid="corrected:a"))
    s, out = apply_event(s, cc(3.70, rid="corrected:b", at=T0 + timedelta(hours=6)))
    assert recs(out) == []
    s, out = apply_event(s, cc(2.50, rid="corrected:a", recorded=T0 + timedelta(hours=8), status="amended"))
    assert [x.status for x in sres(out)] == ["active", "withdrawn"]
    assert [e.name for e in sres(out)[0].evidence] == ["corrected_calcium"] and sres(out)[0].evidence[0].value == 3.7
    assert len(s.calcium_sres) == 1 and s.calcium_sres[0] == str(sres(out)[0].event_id)


def test_LAB_CA_CRISIS_recency_windows_are_settings() -> None:
    from services.scoring.settings import ScoringSettings

    policy = ScoringSettings(calcium_current_hours=24, future_tolerance_minutes=0).policy()
    assert policy.calcium_current == timedelta(hours=24) and policy.future_tolerance == timedelta(0)
