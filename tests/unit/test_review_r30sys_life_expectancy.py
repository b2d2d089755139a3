"""Review R30-SYS (HAZ-27-FUTURE-HIDES, systemic planner): a correction dated ahead of today's life expectancy.

SYS-AR-START (RULES.md; guideline L1068-1074): an anti-resorptive "dès la découverte d'une métastase osseuse" when life
expectancy is > 3 months. Today's estimate says 12 months (start recommended); one 10 days old said 2 months. An entry
in error dated tomorrow (a producer's clock ahead) naming today's estimate is applied at once by the assessments' fold
(corrections resolved on every record, whatever its date): the 2-month estimate comes back and the start turns to
"not indicated", nothing said, no deadline. `life_expectancy` leaves out an estimate dated ahead ("never hides the
current one"), but not a correction dated ahead; "decide twice" (`involves_future`) reads only the findings, the
lesions and the response. Outside the two folds `as_of` covers, the same hazard as the response's (R30-SYS), and
af35b1a's decision too.

Fixed in session 31: a correction of a clinical assessment dated ahead makes the planner decide twice
(`as_of.involves_future`), and view B folds the estimates without it (not yet in force)."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.test_review_r29sys_future_silent import _ahead, _plan
from tests.unit.test_systemic_rules import lab, le, met, ready, run

DAY = timedelta(days=1)


def test_review_r30sys_an_entry_in_error_dated_ahead_of_todays_estimate_does_not_withdraw_the_start_silently() -> None:
    """SYS-AR-START L1068-1074: today's 12 months hold until the correction's date."""
    today = le(1, 12.0)
    base, _ = run([met(0), le(-60 * 24 * 10, 2.0), today, lab(2, "creatinine_clearance", 75.0, "mL/min"), *ready()])
    assert _plan(base)["antiresorptive-start"].status == "recommended"
    eie = _ahead(today, DAY, record_status="entered-in-error", corrects=today.event_id)
    s, _ = run([eie], base)
    start = _plan(s)["antiresorptive-start"]
    named = eie.event_id in {i.source_event_id for i in start.inputs} and "vérifier" in start.text_fr
    assert start.status == "recommended" or named, (start.status, start.text_fr[-200:])
