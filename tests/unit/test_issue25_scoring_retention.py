"""Issue 25: scoring's retention (services/scoring/retention.py) changes no decision.

For generated histories of one patient (every kind of input, delivered out of order, corrected, duplicated: the
generator of test_issue25_scoring_history.py), the outputs of the transition with retention are those of the
transition that keeps every record, event by event; retention is idempotent, never reads the clock, and a state
stored before issue 25 still loads and is retained on its next event.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import Message
from services.scoring import retention
from services.scoring.domain import ScoringState, apply_event, retain
from tests.unit.test_issue25_scoring_history import history

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
        assert kept.recommendations == full.recommendations and kept.sres == full.sres
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
    stored = json.loads(old.model_dump_json())
    for name in ("lesion_bases", "assessment_base", "dropped_recorded", "newest_recorded"):
        del stored[name]
    loaded = ScoringState.model_validate_json(json.dumps(stored))
    assert loaded == old
    full, kept = old, loaded
    for e in events[-40:]:
        full, out_full = apply_event(full, e, retained=False)
        kept, out_kept = apply_event(kept, e)
        assert out_kept == out_full
    assert len(kept.model_dump_json()) < len(full.model_dump_json()) / 2
