"""Review R28-FIN, HAZ-25-RT-08 (`domain.shown_now`, `le_key` with the estimate's event ID): a memo-warm process
decides and publishes what a cold one does at every decision of two interleaved patient histories (each event's
outputs, and the plan 90 minutes and 9 days after it, as a tick would build it), one memo shared by both patients.
On 8589dca (before the fix) 338 of these 4,209 comparisons differ, only in the `life_expectancy_months` inputs
shown; here none (held: a regression test, not an xfail)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import apply_event, build_plan
from services.radiotherapy_planner.facts import LocalState
from tests.unit.test_issue25_local_history import patient_history


def _decisions(cold: bool) -> list[Any]:
    events = sorted(
        patient_history(seed=1, years=4.5, patient="pt-a") + patient_history(seed=2, years=4.5, patient="pt-b"),
        key=lambda m: (m.recorded_at, m.event_id.int),
    )
    memo.clear()
    states: dict[str, LocalState] = {}
    out: list[Any] = []
    for e in events:
        if cold:
            memo.clear()
        s, sent = apply_event(states.get(e.patient_id, LocalState()), e, now=e.recorded_at + timedelta(minutes=1))
        states[e.patient_id] = s
        if cold:
            memo.clear()
        at = s.decided_at  # None until an event the planner reads
        for later in () if at is None else (timedelta(minutes=90), timedelta(days=9)):
            if cold:
                memo.clear()
            assert at is not None
            plan = [x.model().model_dump(mode="json") for x in build_plan(s, now=at + later)]
            out.append(plan)
        out.append([m.model_dump(mode="json") for m in sent])
    return out


def test_review_r28fin_warm_equals_cold_over_two_interleaved_histories() -> None:
    warm = _decisions(cold=False)
    cold = _decisions(cold=True)
    assert len(warm) == len(cold) > 500
    assert [i for i, (w, c) in enumerate(zip(warm, cold, strict=True)) if w != c] == []
