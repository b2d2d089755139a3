"""Issue 25: scoring's per-event cost flat in the history's length. What makes it so is memoised (decision families
by the state's parts they read and where the clock falls among their windows, the clock's moments by part, the
tables retention found clean, each record's and fold's JSON): these tests check that a warm process gives exactly
what a cold one computes afresh, event by event, clock ticks included, and that the stored JSON is pydantic's."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from contracts.base import Message, derived_id
from contracts.clock import ClockTick
from services.scoring import rules as r
from services.scoring.clock import next_due
from services.scoring.domain import ScoringState, apply_event, forget_memos
from shared.clinical.life_expectancy import Remaining
from tests.unit.test_issue25_scoring_history import history

AFTER = timedelta(seconds=1)


def drive(events: list[Message], cold: bool) -> list[tuple[list[str], str, datetime | None]]:
    """Each event (and each clock tick due before it, as the runtime's timers fire them) applied at its recorded
    time: the outputs, the stored JSON and the next deadline after each; `cold` forgets every memo before each."""
    s, steps = ScoringState(), []
    queue = list(events)
    while queue:
        e: Message = queue[0]
        if s.next_due is not None and s.next_due < e.recorded_at:
            due = s.next_due
            e = ClockTick(
                event_id=derived_id("clock", "scoring", e.patient_id, due.isoformat()),
                patient_id=e.patient_id,
                occurred_at=due,
                recorded_at=due + timedelta(milliseconds=1),
                source="scoring",
                service="scoring",
                due_at=due,
            )
        else:
            queue.pop(0)
        if cold:
            forget_memos()
        s, out = apply_event(s, e, now=e.recorded_at)
        steps.append(([o.model_dump_json() for o in out], s.model_dump_json(), s.next_due))
    return steps


@pytest.mark.parametrize("seed", [1, 2])
def test_a_warm_process_decides_what_a_cold_one_does(seed: int) -> None:
    events = history(seed, 1.5, lab_days=4, imaging_days=30, assessment_days=15, crises_per_year=6)
    cold = drive(events, cold=True)
    warm = drive(events, cold=False)
    assert len(cold) > len(events)  # clock ticks were applied too
    assert warm == cold
    assert drive(events, cold=False) == cold  # and again, with every memo filled by the first run


def old_next_due(s: ScoringState, now: datetime, policy: r.Policy = r.DEFAULT_POLICY) -> datetime | None:
    """The clock as a full scan of every fact's window at each event (issue 25's memo must give the same moments);
    with stop 21's windows of an inferred cord compression (epidural extension, neurological deficit)."""
    times: list[datetime] = []

    def window(at: datetime, valid: timedelta) -> None:
        times.extend((at - policy.future_tolerance, at + valid))

    for v in s.labs.values():
        window(v.occurred_at, policy.calcium_current)
    for lesion in s.lesions.values():
        for f in (lesion.cord_compression, lesion.fracture, lesion.fracture_seen_last, lesion.compression_seen_last):
            if f is not None:
                window(f.occurred_at, policy.lesion_event_current)
        for stated in (lesion.epidural_stated, lesion.compression_stated):  # an inferred compression (stop 21)
            if stated is not None:
                window(stated.occurred_at, policy.lesion_event_current)
    a = s.assessment
    if a.neurological_deficit is not None:
        window(a.neurological_deficit.occurred_at, policy.lesion_event_current)
    pains: list[Any] = [a.pain_character, a.pain_intensity]
    pains += [*a.lesion_pain_intensity.values(), *a.lesion_pain_character.values()]
    for f in pains:
        if f is not None:
            window(f.occurred_at, policy.lesion_pain_valid)
    for g in (a.primary_controlled, a.extra_osseous):
        if g is not None:
            window(g.occurred_at, policy.staging_valid)
    for le in a.life_expectancy_estimates:
        window(le.occurred_at, policy.life_expectancy_valid)
        # a crossing at `now` exactly counts, as every moment here (HAZ-26-LE-01)
        crossing = Remaining.at(float(le.value), le.occurred_at, now).next_crossing(now - AFTER)
        if crossing is not None:
            times.append(crossing)
    return min((t + AFTER for t in times if t + AFTER > now), default=None)


def test_the_clock_gives_the_moments_a_full_scan_gives() -> None:
    events = history(3, 1.5, lab_days=5, imaging_days=30, assessment_days=10, crises_per_year=4)
    s = ScoringState()
    checked = 0
    for e in events:
        s, _ = apply_event(s, e, now=e.recorded_at)
        for offset in (timedelta(0), timedelta(hours=71), timedelta(days=29), timedelta(days=95), timedelta(days=400)):
            now = e.recorded_at + offset
            assert next_due(s, now) == old_next_due(s, now), (e, offset)
            checked += 1
        due = s.next_due
        if due is not None:  # on a moment and either side of it
            for now in (due - AFTER, due - timedelta(microseconds=1), due, due + timedelta(microseconds=1)):
                assert next_due(s, now) == old_next_due(s, now)
    assert checked > 1000


def test_the_stored_json_is_pydantics_document_at_every_step() -> None:
    s = ScoringState()
    for n, e in enumerate(history(4, 1, lab_days=5, imaging_days=30, assessment_days=10, crises_per_year=4)):
        s, _ = apply_event(s, e, now=e.recorded_at)
        stored = s.model_dump_json()
        assert json.loads(stored) == json.loads(BaseModel.model_dump_json(s)), n
        assert ScoringState.model_validate_json(stored) == s
        assert s.model_dump_json() == stored  # deterministic: the runtime compares the bytes it wrote
    assert s.model_dump_json(exclude={"labs"}) == BaseModel.model_dump_json(s, exclude={"labs"})
    assert ScoringState.model_validate_json(ScoringState().model_dump_json()) == ScoringState()
