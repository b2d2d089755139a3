"""Review R30-SC of 0ad348d (reverted in session 30; these guard a later fix of the R28-SC calcium residual and
pass on af35b1a and on the revert): scoring retention's "labs table found clean" memo (retention._mark_clean /
_mark_table) now remembers the labs' cut by `_kept_at` (a value dated ahead counts at its recorded time), but the walk
(`_retain_labs`) still sorts values before the cut by clinical time. A value recorded before the horizon's start and
dated ahead of it is in neither: the memo's `until` (the oldest kept time after the cut) leaves it out, so when the
start then passes its clinical time a warm process still finds the table clean while a cold one (forget_memos, a
restart, a rebuild) walks it, finds the LAB-CA-CRISIS episode it ends (corrected calcium > 3.5 mmol/L, guideline
L296-316) before the cut and forgets it with its hypercalcaemia SRE (CLASS-SRE, L259-296). Warm and cold processes
store different states for the same events. On af35b1a (labs memo by clinical time) both forget it."""

from __future__ import annotations

from datetime import timedelta

from contracts.base import Message
from services.scoring.domain import ScoringState, apply_event, forget_memos
from tests.unit.test_scoring_clock import T0
from tests.unit.test_scoring_crisis import cc
from tests.unit.test_scoring_scores import TROCHANTER, finding

DAY = timedelta(days=1)


def _events() -> list[Message]:
    """A crisis on day 0; the normal value that ends it recorded on day 1 but dated day 100 (a clock ahead); 22
    normal values on days 101-122 (24 labs: the cut is the horizon's start); then a finding on day 190.5 moves the
    start (newest recorded - 90 days) to day 100.5, past the day-100 value but not past the day-101 one."""
    return [
        cc(3.8, rid="crisis", at=T0),
        cc(2.3, rid="ahead", at=T0 + 100 * DAY, recorded=T0 + DAY),
        *[cc(2.4, rid=f"normal-{i}", at=T0 + (101 + i) * DAY) for i in range(22)],
        finding(int(190.5 * 24 * 60), **TROCHANTER),
    ]


def _state(events: list[Message], cold_last: bool) -> ScoringState:
    forget_memos()
    s = ScoringState()
    for i, e in enumerate(events):
        if cold_last and i == len(events) - 1:
            forget_memos()  # a cold process applies the last event
        s, _ = apply_event(s, e)
    return s


def test_review_r30sc_a_warm_process_stores_the_labs_a_cold_one_stores() -> None:
    events = _events()
    warm, cold = _state(events, cold_last=False), _state(events, cold_last=True)
    assert "crisis" not in cold.labs and not cold.sres  # the ended episode forgotten (as on af35b1a, warm or cold)
    assert warm.model_dump_json() == cold.model_dump_json()  # warm still holds the crisis value and its SRE
