"""Issue 25: a lab scoring does not read (every analyte but corrected calcium, LAB-CA-CRISIS L294-296) arriving before
the first moment its decisions may change with time leaves the state and the decisions as they are
(services/scoring/domain.py `unread`); at or after that moment it is decided as any event. Each case is compared with
the reference that decides every lab (`skip_unread=False`), and a generated cohort gives the same outputs both ways."""

from __future__ import annotations

import functools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest

import services.scoring.app as scoring_app
from contracts.base import Message
from contracts.clinical import Analyte, Recommendation
from devstack import replay
from devstack.cohort import Cohort
from services.scoring import domain
from services.scoring.clock import AFTER
from services.scoring.domain import ScoringState, apply_event
from services.scoring.rules import DEFAULT_POLICY
from tests.unit.test_review_r36_unread import lab
from tests.unit.test_scoring_crisis import T0, cc

UNREAD: list[str] = [a for a in get_args(Analyte) if a != "corrected_calcium"]


def both(s: ScoringState, event: Message, now: datetime) -> tuple[tuple[ScoringState, list[Message]], ...]:
    """The transition with the skip, and the reference that decides the lab."""
    return apply_event(s, event, now=now), apply_event(s, event, now=now, skip_unread=False)


def dumps(out: list[Message]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in out]


@pytest.fixture
def crisis() -> ScoringState:
    """A current crisis (3.60 at T0): its currency ends 72 h later (LAB-CA-CRISIS: current data only)."""
    s, out = apply_event(ScoringState(), cc(3.60), now=T0)
    assert out and s.next_due == T0 + DEFAULT_POLICY.calcium_current + AFTER
    return s


@pytest.mark.parametrize("analyte", UNREAD)
def test_an_unread_lab_before_the_next_moment_leaves_the_state_as_it_is(crisis: ScoringState, analyte: str) -> None:
    now = T0 + timedelta(hours=10)
    (s, out), (ref, ref_out) = both(crisis, lab(analyte, now), now)
    assert s is crisis and out == []
    assert ref_out == [] and (ref.recommendations, ref.scores, ref.sres) == (s.recommendations, s.scores, s.sres)
    assert ref.next_due == s.next_due


@pytest.mark.parametrize(
    ("after", "changes"),
    [(timedelta(0), False), (timedelta(milliseconds=500), True), (timedelta(hours=1), True)],
    ids=["at", "half-second", "hour"],
)
@pytest.mark.parametrize("analyte", ["albumin", "creatinine_clearance", "total_calcium"])
def test_an_unread_lab_once_the_crisis_is_no_longer_current_is_decided(
    crisis: ScoringState, analyte: str, after: timedelta, changes: bool
) -> None:
    """The clock tick at `next_due` not applied yet (live timers poll every second): the lab decides, as the reference
    does; just after the 72 h the crisis SRE becomes historical now, not at the tick (at the moment itself the value
    is still current: decided, nothing changes)."""
    assert crisis.next_due is not None
    now = crisis.next_due - AFTER + after
    (s, out), (ref, ref_out) = both(crisis, lab(analyte, now), now)
    assert bool(out) is changes and dumps(out) == dumps(ref_out)
    assert s is not crisis and s.model_dump() == ref.model_dump()


def test_an_unread_lab_after_a_future_dated_crisis_becomes_current_is_decided() -> None:
    """A crisis value dated 6 h ahead is left out (LAB-CA-CRISIS, current data only) until its date comes: an albumin
    after that moment raises the critical alert, as the reference does."""
    s, out = apply_event(ScoringState(), cc(3.70, at=T0 + timedelta(hours=6)), now=T0)
    assert [m for m in out if isinstance(m, Recommendation) and m.severity == "critical"] == []
    assert s.next_due is not None
    now = s.next_due - AFTER
    (_, out), (_, ref_out) = both(s, lab("albumin", now), now)
    assert dumps(out) == dumps(ref_out)
    assert [m.rule_id for m in out if isinstance(m, Recommendation) and m.severity == "critical"] == ["LAB-CA-CRISIS"]
    # just before that moment: nothing yet, and nothing decided
    before = now - timedelta(seconds=1)
    (same, out), (_, ref_out) = both(s, lab("albumin", before), before)
    assert same is s and out == [] and ref_out == []


def test_with_no_time_given_an_unread_lab_is_decided() -> None:
    s, _ = apply_event(ScoringState(), cc(3.60), now=T0)
    assert not domain.unread(s, lab("albumin", T0), None)
    assert domain.unread(s, lab("albumin", T0), T0)
    assert not domain.unread(s, cc(3.0, rid="corrected:2", at=T0), T0)


def test_a_generated_cohort_gives_the_same_outputs_with_and_without_the_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lab normalisation and scoring over 12 patients x 2 years (their clock ticks as the runtime fires them): every
    output is the same, and the skip is taken."""
    patients: dict[str, list[Any]] = {}
    for g in Cohort(7, 12, 2).events():
        patients.setdefault(str(g.key), []).append(g)
    until = datetime.fromtimestamp(max(g.timestamp_ms for gs in patients.values() for g in gs) / 1000, UTC)
    skipped: Counter[bool] = Counter()
    unread = domain.unread

    def counted(state: ScoringState, event: Message, now: datetime | None) -> bool:
        skipped[took := unread(state, event, now)] += 1
        return took

    def outputs() -> list[tuple[str, str, str]]:
        r = replay.Replay(replay.build_services(names=("lab-normalisation", "scoring")))
        return [
            (run.patient, o.topic, o.value)
            for run in replay.replay_patients(list(patients.items()), r, until)
            for o in run.outputs.get("scoring", [])
        ]

    monkeypatch.setattr(domain, "unread", counted)
    with_skip = outputs()
    assert skipped[True] > 100 and skipped[False] > 100
    monkeypatch.setattr(scoring_app, "apply_event", functools.partial(apply_event, skip_unread=False))
    domain.forget_memos()
    reference = outputs()
    assert len(with_skip) > 50 and with_skip == reference
