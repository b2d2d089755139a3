"""The radiotherapy planner's family memo is used from two threads: the runtime's worker thread decides plans and the
event loop serves GET /patients/{id}/local-plan. A hit's move to the end and an eviction by the other thread in between
raised KeyError, and the event being applied was dead-lettered (found by helper HW). Real threads, the interpreter
switching between them as often as it can (tests/unit/histories.py)."""

from __future__ import annotations

from services.radiotherapy_planner import memo
from tests.unit.histories import in_racing_threads


def test_the_family_memo_holds_under_threads_hitting_and_evicting_at_once() -> None:
    memo.clear()
    keys = memo.MEMO_SIZE + 64  # every round evicts: hits and evictions of the same keys race

    def work(k: int) -> None:
        for round_ in range(3):
            for i in range(keys):
                key = ("race", (i + k * 97 + round_) % keys)
                assert memo.memo(key, list) == []

    try:
        assert in_racing_threads(work) == []
    finally:
        memo.clear()
