"""Issue 25 (helper ZL): the daily fold of systemic-drug records (IMG-FLARE L391-395) is not run again while it keeps
the same table whole and the horizon's start passes none of the dates and times it compares it with
(services/scoring/retention_drugs.py `fold_drugs`): it gives what the fold gives at every start, and a warm process
stores, event by event, the state a cold one (every memo forgotten: a rebuild) stores."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from contracts.hospital import SystemicDrug, TreatmentEvent
from services.scoring import retention, retention_drugs
from services.scoring.domain import ScoringState, apply_event, forget_memos
from services.scoring.retention import HORIZON
from tests.unit.test_issue25_scoring_history import history


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_fold_skipped_gives_what_the_fold_gives_at_every_start(seed: int) -> None:
    """The treatments tables of a retained history (what the fold leaves, so mostly kept whole), each from its own
    horizon's start on, every 6 hours over 120 days: `fold_drugs` (remembering) returns what `_retain_drugs`
    computes, and it did skip folds."""
    s, states = ScoringState(), []
    for e in history(seed, 6, lab_days=30, imaging_days=60, assessment_days=60):
        before = s.treatments
        s, _ = apply_event(s, e)
        if s.treatments is not before and sum(isinstance(x.treatment, SystemicDrug) for x in s.treatments.values()) > 2:
            states.append(s)
    assert len(states) > 5
    calls = checked = 0
    real = retention_drugs._retain_drugs

    def counted(*args: Any) -> dict[str, TreatmentEvent]:
        nonlocal calls
        calls += 1
        return real(*args)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(retention_drugs, "_retain_drugs", counted)
        for state in states[::3]:
            retention_drugs.clear()
            t, foci = state.treatments, retention_drugs.focus_days(state)
            assert state.newest_recorded is not None
            for i in range(4 * 120):
                start = state.newest_recorded - HORIZON + timedelta(hours=6 * i)
                assert retention_drugs.fold_drugs("p", t, t, foci, start) == real(t, foci, start)
                checked += 1
    assert calls < checked * 0.9  # folds were skipped


@pytest.mark.parametrize("seed", [4, 5])
def test_a_warm_process_stores_what_a_cold_one_does(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The state stored after every event (retained), warm (every memo kept) against cold (every memo forgotten and
    the state parsed again before each event: a rebuild in a fresh process): the same outputs and bytes, with the
    drug fold past 2 drug records (DRUGS_KEPT) so that it runs."""
    monkeypatch.setattr(retention, "DRUGS_KEPT", 2)
    assert_warm_stores_what_cold_stores(history(seed, 3, lab_days=3, imaging_days=30, assessment_days=20))


def assert_warm_stores_what_cold_stores(events: list[Any]) -> ScoringState:
    """`events` applied in one warm process, then again with the memos forgotten and the state parsed again before
    each (a rebuild in a fresh process): the same outputs and stored bytes after every event; the warm state."""
    forget_memos()
    warm, stored = ScoringState(), []
    for e in events:
        warm, out = apply_event(warm, e)
        stored.append((out, warm.model_dump_json()))
    cold = ScoringState()
    for i, e in enumerate(events):
        forget_memos()
        cold, out = apply_event(ScoringState.model_validate_json(cold.model_dump_json()), e)
        assert out == stored[i][0], f"event {i} ({type(e).__name__}): the outputs differ"
        assert cold.model_dump_json() == stored[i][1], f"event {i} ({type(e).__name__}): the stored state differs"
    return warm
    assert warm.drugs_cutoff is not None
