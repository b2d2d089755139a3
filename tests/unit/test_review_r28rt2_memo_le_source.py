"""Review R28-RT2: IR-CEMENT's items show the life-expectancy estimate they read (`life_expectancy_months`, its event
and date), but its family's memo key does not hold that estimate's ID (memo.READS["cement"] has no
"life_expectancy_months"; `le_key` holds only its currency, band and tenth). So a memo-warm decision shows the estimate
of the build that made the item, a cold one the estimate read now: warm != cold, and a rebuild publishes another
digest (as HAZ-25-RT-08, another cause).
- by an event (8589dca): a new estimate of the same value, within the same tenth of a month. (Also by the clock under
  fc16565's view, reverted.) Fixed: the estimate is in memo.READS["cement"], as in the other families that read it."""

from __future__ import annotations

from datetime import datetime, timedelta

from contracts.base import Message
from contracts.local import LesionSection
from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import apply_event, build_plan
from services.radiotherapy_planner.facts import LocalState
from tests.unit.test_issue18_local import NOW
from tests.unit.test_review_r28rt_future_left_out import CLEAR, _assessment, _cement

HOUR = timedelta(hours=1)


def _state(events: list[Message]) -> LocalState:
    memo.clear()
    s = LocalState()
    for e in events:
        s, _ = apply_event(s, e, now=NOW)
    return s


def _plan(s: LocalState, now: datetime, cold: bool) -> list[LesionSection]:
    if cold:
        memo.clear()
    return [x.model() for x in build_plan(s, now=now)]


def _estimate_shown(plan: list[LesionSection]) -> list[datetime | None]:
    return [
        i.occurred_at
        for sec in plan
        for item in sec.items
        if item.rule_id == "IR-CEMENT"
        for i in item.inputs
        if i.name == "life_expectancy_months"
    ]


def test_review_r28rt2_a_new_estimate_of_the_same_value_is_shown_warm_as_cold() -> None:
    s = _state([*_cement(_assessment(NOW - 2 * HOUR, **CLEAR, life_expectancy_months=24.0))])
    _plan(s, NOW, cold=False)
    s, _ = apply_event(s, _assessment(NOW - HOUR, life_expectancy_months=24.0), now=NOW)
    assert _plan(s, NOW, cold=False) == _plan(s, NOW, cold=True)
