"""Review R27B (of b62e844): FairBacklog's per-patient costs (COSTS_KEPT newest, COST_KEPT_S at most).

Held: the table never exceeds COSTS_KEPT after a `note_costs`; it is ordered by the time each cost was noted (a
cost noted again moves to the newest end), so eviction by age stops at the first fresh cost and never drops a cost
noted since; `take` ignores a cost older than COST_KEPT_S whether or not `note_costs` ran since (a stale cost never
caps a share), and a cost exactly COST_KEPT_S old still caps (the same bound as the eviction's `>`)."""

from __future__ import annotations

import time

import pytest

from shared.runtime import limits
from shared.runtime.limits import FairBacklog
from tests.unit.test_limits import TP, rec


def test_review_r27b_a_cost_noted_again_outlives_older_ones_and_caps_until_exactly_its_age_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [500.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    b = FairBacklog(read_ahead=100_000, per_patient=100, per_patient_seconds=0.05)
    b.note_costs({"old": (1.0, 1), "other": (1.0, 1)})
    clock[0] += 30
    b.note_costs({"old": (0.01, 1)})  # noted again: the newest end, 0.01 s per record
    assert list(b._cost) == [b"other", b"old"]
    clock[0] += limits.COST_KEPT_S - 30 + 1  # "other" is 61 s old, "old" 31 s
    b.note_costs({f"p{i}": (1.0, 1) for i in range(3)})
    assert list(b._cost) == [b"old", b"p0", b"p1", b"p2"]  # only the stale one dropped
    b.add({TP: [rec(i, b"old") for i in range(50)]})
    assert len(b.take(500)) == 5  # 0.05 / 0.01
    clock[0] += limits.COST_KEPT_S - 31  # exactly COST_KEPT_S old: still caps
    assert len(b.take(500)) == 5
    clock[0] += 1e-3  # just older, and no note_costs since: the count cap only
    assert len(b.take(500)) == 40
    b.note_costs({f"q{i}": (1.0, 1) for i in range(limits.COSTS_KEPT + 10)})
    assert len(b._cost) == limits.COSTS_KEPT and b"old" not in b._cost
