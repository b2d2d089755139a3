"""HAZ-25-RT-08 (found by helper ZN, 2026-12-06): the radiotherapy planner's family memo keys on the remaining life
expectancy's band (HAZ-18-04), so an item reused from it shows the remainder computed when it was first built; a
process that builds it again (restart, memo evicted) shows the remainder now. Same status and wording; the value
shown as the decision's basis differs. Fixed by FH-RT: the remainder is set at each decision, outside the memo
(domain.shown_now)."""

from __future__ import annotations

from datetime import timedelta

from contracts.base import Message
from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import apply_event
from services.radiotherapy_planner.facts import LocalState
from tests.unit.test_issue25_local_history import patient_history as local_history


def test_review_zn_a_warm_process_publishes_what_a_cold_one_publishes() -> None:
    stream: list[Message] = local_history(seed=4, years=6, patient="pt-zn-le")
    warm, cold = LocalState(), LocalState()
    for n, m in enumerate(stream):
        now = m.recorded_at + timedelta(minutes=1)
        warm, out_warm = apply_event(warm, m, now=now)
        memo.clear()  # a new process: nothing memoised
        cold = LocalState.model_validate_json(cold.model_dump_json())
        memo.clear()
        cold, out_cold = apply_event(cold, m, now=now)
        assert out_warm == out_cold, n  # fails at event 588: 23.4483 (warm) against 23.4469 months (cold)
