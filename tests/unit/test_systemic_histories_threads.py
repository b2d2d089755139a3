"""The systemic planner's drug-history table without the memo (`treatments._HISTORIES`, the path `AsOf(memo=False)`
takes) is one table shared by the runtime's worker thread and the API's plans, like memo.py's (review RN found the
memo's race; the same eviction here could delete a key another thread had just deleted: KeyError). Now under a lock.
Not reproduced without it on CPython 3.11 (the eviction's two steps hold no switch point between them): the lock is
for interpreters that switch there (free-threaded builds). Threads hitting and evicting a one-entry table as fast as
the interpreter switches: no error, and each answer is its own state's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.systemic_planner import rules as r
from services.systemic_planner import treatments
from services.systemic_planner.domain import SystemicState
from tests.unit.histories import in_racing_threads

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_threads_reading_the_drug_history_table_at_once_never_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(treatments, "_HISTORIES_MAX", 1)
    treatments._HISTORIES.clear()
    states = [SystemicState() for _ in range(3)]
    expected = [treatments._drug_history(s, r.AsOf(now=T0, recency=r.Recency(), memo=False))[0] for s in states]

    def read(k: int) -> None:
        for i in range(4000):
            n = (i * 7 + k) % 3
            at = r.AsOf(now=T0, recency=r.Recency(), memo=False)
            assert treatments.drug_history(states[n], at) == expected[n]

    try:
        errors = in_racing_threads(read)
    finally:
        treatments._HISTORIES.clear()
    assert errors == []
    assert len(treatments._HISTORIES) <= 1
