"""Issue 25: scoring's retention (services/scoring/retention.py) changes no decision.

For generated histories of one patient (every kind of input, delivered out of order, corrected, duplicated: the
generator of test_issue25_scoring_history.py), the outputs of the transition with retention are those of the
transition that keeps every record, event by event; retention is idempotent, never reads the clock, and a state
stored before issue 25 still loads and is retained on its next event.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import Message
from contracts.clinical import NormalisedLab, Recommendation, SkeletalEvent
from contracts.hospital import ImagingFinding
from services.scoring import retention
from services.scoring.domain import ScoringState, apply_event, retain
from tests.unit.test_issue25_scoring_history import history
from tests.unit.test_scoring_crisis import cc
from tests.unit.test_scoring_scores import T0, TROCHANTER, finding, treatment

#: what retention keeps or folds; the rest (what was published, next_due) is compared through the outputs
RETAINED = ("findings", "assessments", "treatments", "labs", "lesion_bases", "assessment_base", "lesions")


def _compare(events: list[Message], wall_clock: bool) -> tuple[ScoringState, ScoringState, int]:
    """Apply `events` to both variants; assert the same outputs (and the same next deadline) event by event."""
    full, kept = ScoringState(), ScoringState()
    clock: datetime | None = None
    differences = 0
    for i, e in enumerate(events):
        clock = max(clock or e.recorded_at, e.recorded_at)
        now = clock + timedelta(hours=1) if wall_clock else None
        full, out_full = apply_event(full, e, now=now, retained=False)
        kept, out_kept = apply_event(kept, e, now=now)
        assert out_kept == out_full, f"event {i} ({type(e).__name__}): retention changed what is published"
        assert kept.next_due == full.next_due, f"event {i}: retention changed the next deadline"
        # what was published: the same, but for crisis episodes that ended before the cutoff (forgotten)
        assert set(kept.recommendations.items()) <= set(full.recommendations.items())
        assert set(kept.sres) <= set(full.sres) and set(kept.lesion_sres.items()) == set(full.lesion_sres.items())
        differences += len(kept.model_dump_json()) < len(full.model_dump_json())
    return full, kept, differences


HISTORIES = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "years": st.floats(0.8, 1.6),
        "lab_days": st.floats(2, 14),
        "imaging_days": st.floats(20, 90),
        "assessment_days": st.floats(7, 30),
        "late_days": st.floats(0, 20),
        "crises_per_year": st.floats(0, 12),
    }
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HISTORIES, st.booleans())
def test_retention_changes_no_decision(params: dict[str, float], wall_clock: bool) -> None:
    """Issue 25: the same recommendations, withdrawals, scores and SREs, event by event, for mixed histories out of
    order (by up to 20 days, within the 90-day horizon), with corrections and duplicates, whether decisions are made
    for the newest recorded time or for a wall clock; and retention did fold (the retained state is smaller)."""
    events = history(int(params["seed"]), **{k: v for k, v in params.items() if k != "seed"})
    full, kept, smaller = _compare(events, wall_clock)
    assert smaller > 0 and len(kept.labs) < len(full.labs) and len(kept.findings) < len(full.findings)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_retention_by_count_changes_no_decision(seed: int, wall_clock: bool) -> None:
    """The cutoff set by the number of records kept (a dense history) rather than by the 90 days: the same outputs,
    with few records kept and deliveries late by up to a day."""
    events = history(seed, 1, lab_days=3, imaging_days=30, assessment_days=10, late_days=1)
    with _kept(labs=6, findings=8, assessments=3):
        full, kept, _ = _compare(events, wall_clock)
    assert len(kept.labs) < len(full.labs) and len(kept.assessments) < len(full.assessments)


@contextlib.contextmanager
def _kept(**counts: int) -> Iterator[None]:
    names = {f"{k.upper()}_KEPT": v for k, v in counts.items()}
    before = {name: getattr(retention, name) for name in names}
    try:
        for name, value in names.items():
            setattr(retention, name, value)
        yield
    finally:
        for name, value in before.items():
            setattr(retention, name, value)


@pytest.mark.parametrize("seed", [3, 4])
def test_retain_is_idempotent_and_never_reads_the_clock(seed: int) -> None:
    """retain(retain(s)) == retain(s) along a history; and what is retained is the same whatever time decisions are
    made for (the horizon runs from the newest recorded time among the facts, never from the wall clock)."""
    events = history(seed, 2, lab_days=5)
    a, b = ScoringState(), ScoringState()
    for e in events:
        a, _ = apply_event(a, e)
        b, _ = apply_event(b, e, now=e.recorded_at + timedelta(days=400))
        assert retain(a) == a
        assert retain(retain(a)) == retain(a)
    assert {k: getattr(a, k) for k in RETAINED} == {k: getattr(b, k) for k in RETAINED}
    assert len(a.labs) < sum(1 for e in events if type(e).__name__ == "NormalisedLab") / 3


def test_a_state_stored_before_issue_25_loads_and_is_retained_on_its_next_event() -> None:
    """Redis holds states without the new fields: they load (defaults), every record still in them, and their next
    event folds them, deciding as the state that keeps every record does."""
    events = history(5, 1.5)
    old = ScoringState()
    for e in events[:-40]:
        old, _ = apply_event(old, e, retained=False)
    new = {"lesion_bases", "assessment_base", "dropped_recorded", "newest_recorded", "drugs_cutoff"}
    stored = json.loads(old.model_dump_json(exclude=new))
    loaded = ScoringState.model_validate_json(json.dumps(stored))
    assert loaded.model_dump(exclude=new) == old.model_dump(exclude=new) and loaded.newest_recorded is None
    full, kept = old, loaded
    for e in events[-40:]:
        full, out_full = apply_event(full, e, retained=False)
        kept, out_kept = apply_event(kept, e)
        assert out_kept == out_full
    assert len(kept.model_dump_json()) < len(full.model_dump_json()) / 2


# ---- the folds, one by one: each scenario decides the same with and without retention, and needs what is kept --
DAY = 24 * 60  # minutes


def _recs(out: list[Message]) -> list[Recommendation]:
    return [o for o in out if isinstance(o, Recommendation)]


def _run_both(events: list[Message]) -> tuple[list[Message], ScoringState, ScoringState]:
    full, kept, _ = _compare(events, wall_clock=False)
    last: list[Message] = []
    s = ScoringState()
    for e in events:
        s, last = apply_event(s, e)
    return last, full, kept


def _labs(days: range, value: float = 2.4) -> list[Message]:
    return [cc(value, rid=f"cc-{d}", at=T0 + timedelta(days=d)) for d in days]


def test_IMG_FLARE_a_drug_restarted_within_3_months_of_a_stop_before_the_cutoff_keeps_its_first_start() -> None:
    """IMG-FLARE (L391-395, FLARE_RESTART_INTERRUPTION_MONTHS): osimertinib started, stopped on day 0, restarted on
    day 85 (after the 90-day cutoff had passed the stop): still the treatment started on day -200, so a new focus on
    day 120 is progression, not a possible flare. Retention keeps a stopped treatment while a restart can resume it."""
    drug = {"kind": "systemic_drug", "drug": "osimertinib"}
    events: list[Message] = [
        treatment(-200 * DAY, **drug, action="started", on=(T0 - timedelta(days=200)).date()),
        treatment(0, **drug, action="stopped", on=T0.date()),
        *_labs(range(10, 101, 10)),
        treatment(85 * DAY, **drug, action="started", on=(T0 + timedelta(days=85)).date()),
        finding(120 * DAY, **TROCHANTER, modality="bone_scan", new_focus=True),
    ]
    last, full, kept = _run_both(events)
    flare = [x for x in _recs(last) if x.rule_id == "IMG-FLARE"]
    assert flare and "plus de 6 mois" in flare[-1].title
    assert len(kept.labs) < len(full.labs)


def test_LAB_CA_CRISIS_the_newest_calcium_counts_again_when_every_newer_one_is_withdrawn() -> None:
    """A censored calcium ("> 2.5", undecided) on day 0, imaging for 120 days, then a value on day 110 that is
    withdrawn (LAB-CORRECTION): the day-0 value is the newest again and its warning is issued again; retention kept
    it although it is older than the cutoff."""
    censored = NormalisedLab.model_validate(
        {**cc(2.5, rid="cc-censored").model_dump(), "comparator": ">", "event_id": uuid.uuid4()}
    )
    newer = cc(2.4, rid="cc-newer", at=T0 + timedelta(days=110))
    withdrawn = cc(2.4, rid="cc-newer", at=newer.occurred_at, recorded=newer.recorded_at + timedelta(hours=2))
    withdrawn = withdrawn.model_copy(update={"status": "withdrawn"})
    events: list[Message] = [
        censored,
        *[finding(d * DAY, **TROCHANTER) for d in range(10, 121, 10)],
        newer,
        withdrawn,
    ]
    last, _, kept = _run_both(events)
    assert "cc-censored" in kept.labs
    assert any(x.rule_id == "LAB-CA-CRISIS" and x.severity == "warning" for x in _recs(last))


def test_CLASS_SRE_a_crisis_episode_across_the_cutoff_keeps_its_first_value() -> None:
    """LAB-CA-CRISIS, CLASS-SRE: a crisis on days 0-2, no calcium for 150 days, a crisis again on day 150 with no
    normal value between: one episode, one SRE named by its day-0 value (a new version, current again), then a
    normal value ends it. Retention kept the episode's first value (and newest before the cutoff), dropped no SRE."""
    events: list[Message] = [
        *_labs(range(0, 3), 3.7),
        *[finding(d * DAY, **TROCHANTER) for d in range(10, 151, 20)],
        cc(3.8, rid="cc-150", at=T0 + timedelta(days=150)),
        cc(2.4, rid="cc-151", at=T0 + timedelta(days=151)),
    ]
    last, full, kept = _run_both(events)
    assert {"cc-0", "cc-2"} <= set(kept.labs) and "cc-1" not in kept.labs
    assert kept.calcium_sres == full.calcium_sres
    # the normal value ends it: its historical version (and the withdrawal of the current one) still name day 0
    ended = [x for x in last if isinstance(x, SkeletalEvent)]
    assert ended and all(x.kind == "hypercalcaemia" for x in ended)
    assert [x.occurred_at for x in ended if x.status == "active"] == [T0]


def test_CLASS_SRE_a_lesion_folded_again_after_a_correction_keeps_its_old_fracture() -> None:
    """A pathological fracture seen on day 0, the lesion imaged every month; on day 200 a finding is entered in
    error: the lesion is folded again from its summary (the findings no longer kept) and its findings kept, so the
    fracture (CLASS-SRE) is still the day-0 one, and nothing is withdrawn."""
    fracture = finding(0, **TROCHANTER, pathological_fracture=True)
    monthly = [finding(d * DAY, **TROCHANTER) for d in range(30, 201, 30)]
    error = ImagingFinding.model_validate(
        {
            **monthly[-1].model_dump(),
            "event_id": uuid.uuid4(),
            "record_status": "entered-in-error",
            "corrects": monthly[-1].event_id,
            "recorded_at": monthly[-1].recorded_at + timedelta(days=1),
        }
    )
    last, full, kept = _run_both([fracture, *monthly, error])
    assert "fem-R" in kept.lesion_bases and str(fracture.event_id) not in kept.findings
    assert kept.lesions["fem-R"].fracture == full.lesions["fem-R"].fracture is not None
    assert not any(isinstance(x, SkeletalEvent) and x.status == "withdrawn" for x in last)


def test_a_crisis_value_older_than_the_horizon_is_applied_and_never_a_current_crisis() -> None:
    """HAZ-25-SCORING-02: a crisis value dated 150 days back, delivered after 200 days of normal values (beyond the
    90-day horizon), is applied, not refused: as without retention it is a historical SRE and an info (a crisis
    value known late), never a critical alert; only the normal value it names as having ended it may differ (the
    one after it among those kept). Its episode ended before the cutoff: once published, it is forgotten."""
    events: list[Message] = [*_labs(range(0, 201, 10))]
    late = cc(3.8, rid="cc-late", at=T0 + timedelta(days=50), recorded=T0 + timedelta(days=201))
    outs = []
    for retained in (False, True):
        s = ScoringState()
        for e in events:
            s, _ = apply_event(s, e, retained=retained)
        s, out = apply_event(s, late, retained=retained)
        outs.append(out)
        assert ("cc-late" in s.labs) is not retained  # retained: an episode ended before the cutoff, forgotten
        [rec] = _recs(out)
        assert (rec.rule_id, rec.severity) == ("LAB-CA-CRISIS", "info") and "retard" in rec.title
        [sre] = [x for x in out if isinstance(x, SkeletalEvent)]
        assert sre.kind == "hypercalcaemia" and sre.current is False
    full, kept = outs
    assert [type(x) for x in kept] == [type(x) for x in full]
