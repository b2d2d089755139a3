"""HAZ-27-FUTURE-HIDES, the R28-SC calcium residual (session 30): scoring's retention finds the labs' cut by
`retention._kept_at` (a value dated ahead of its own recording counts at its recorded time). Retention still changes
no decision (the outputs of the transition that keeps every record, event by event) when corrected calcium values
dated days ahead of their recording are mixed into dense histories cut by count, and the values dated ahead no longer
push today's values before the cut (test_review_r28sc_future_calcium.py)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from contracts.base import Message
from contracts.clinical import NormalisedLab
from tests.unit.test_issue25_scoring_history import history
from tests.unit.test_issue25_scoring_retention import _compare, _kept


def _ahead(events: list[Message], seed: int) -> list[Message]:
    """One corrected calcium in four dated 1-5 days after its recording (a producer's clock ahead)."""
    rng = random.Random(seed)
    out: list[Message] = []
    for e in events:
        if isinstance(e, NormalisedLab) and e.analyte == "corrected_calcium" and rng.random() < 0.25:
            e = e.model_copy(update={"occurred_at": e.recorded_at + timedelta(days=rng.uniform(1, 5))})
        out.append(e)
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("wall_clock", [False, True])
def test_retention_with_calcium_values_dated_ahead_changes_no_decision(seed: int, wall_clock: bool) -> None:
    events = _ahead(
        history(seed, 1, lab_days=2, imaging_days=30, assessment_days=10, late_days=1, crises_per_year=12), seed
    )
    assert any(isinstance(e, NormalisedLab) and e.occurred_at > e.recorded_at + timedelta(days=1) for e in events)
    with _kept(labs=6, findings=8, assessments=3):
        full, kept, _ = _compare(events, wall_clock)
    assert len(kept.labs) < len(full.labs)
