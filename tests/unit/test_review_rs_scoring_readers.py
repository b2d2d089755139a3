"""Review RS (issue 25, HAZ-25-SCORING-03): the runtime applies a patient's events in its worker thread while the API
reads scores (`current_scores`) from states it parsed from Redis, older ones included. Those reads fill the same memos
(by patient, lesion and content) with other states' parts; neither the events applied nor the scores read may differ
from what a cold process decides (CLASS-SRE, SCORE-MIRELS, SCORE-SINS, CLASS-OLIGO)."""

from __future__ import annotations

import random
import threading
from datetime import datetime

import pytest

from services.scoring.domain import ScoringState, apply_event, current_scores, forget_memos
from tests.unit.test_issue25_scoring_content_memo import tick
from tests.unit.test_issue25_scoring_flat import drive
from tests.unit.test_review_rs_scoring_memo import adversarial


def _scores(stored: str, patient: str, now: datetime) -> list[str]:
    return [x.model_dump_json() for x in current_scores(ScoringState.model_validate_json(stored), patient, now=now)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reads_of_older_states_between_events_change_nothing(seed: int) -> None:
    """Deterministic interleaving: before every event, the API reads a state an earlier event left."""
    events = adversarial(seed)
    cold = drive(events, cold=True)
    forget_memos()
    rng = random.Random(seed)
    s, steps, queue, stored, reads = ScoringState(), [], list(events), [ScoringState().model_dump_json()], []
    while queue:
        e = tick(s, queue[0]) or queue.pop(0)
        old = rng.choice(stored)
        reads.append((old, e.patient_id, e.recorded_at, _scores(old, e.patient_id, e.recorded_at)))
        s, out = apply_event(s, e, now=e.recorded_at)
        steps.append(([o.model_dump_json() for o in out], s.model_dump_json(), s.next_due))
        stored.append(s.model_dump_json())
    assert steps == cold
    for old, patient, now, got in reads:
        forget_memos()
        assert got == _scores(old, patient, now)


def test_reads_in_another_thread_change_nothing() -> None:
    """The same with the reads in a thread of their own, running while the events are applied."""
    events = adversarial(3)
    cold = drive(events, cold=True)
    forget_memos()
    stored = [ScoringState().model_dump_json()]
    reads: list[tuple[str, str, datetime, list[str]]] = []
    done = threading.Event()
    patient = events[0].patient_id

    def reader() -> None:
        rng = random.Random(3)
        while not done.is_set():
            old = rng.choice(stored)
            now = events[rng.randrange(len(events))].recorded_at
            reads.append((old, patient, now, _scores(old, patient, now)))

    t = threading.Thread(target=reader)
    t.start()
    try:
        s, steps, queue = ScoringState(), [], list(events)
        while queue:
            e = tick(s, queue[0]) or queue.pop(0)
            s, out = apply_event(s, e, now=e.recorded_at)
            steps.append(([o.model_dump_json() for o in out], s.model_dump_json(), s.next_due))
            stored.append(s.model_dump_json())
    finally:
        done.set()
        t.join()
    assert steps == cold
    assert len(reads) > 5
    for old, who, now, got in reads[:60]:
        forget_memos()
        assert got == _scores(old, who, now)
