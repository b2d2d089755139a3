"""Review R30-SYS (HAZ-27-FUTURE-HIDES, HAZ-27-SYS-FUTURE, systemic planner `as_of.decide`): a tick the change needs.

SYS-AR-START (RULES.md; guideline L1068-1074): an anti-resorptive at the discovery of a bone metastasis. A CT dated
tomorrow (a producer's clock ahead) finds one, and an entry in error dated the day after withdraws it. Today the plan
has no start (both records ahead: B, C and A agree). From tomorrow the CT is current and its entry in error is still
ahead: with the change it is "not yet in force" in view B, so B starts and the plan publishes the start suspended
("à vérifier", naming the records): the published plan changes at the CT's date. But neither record is in
`Views.future` (the CT is not effective: the entry in error withdraws it on the whole set; the entry in error names a
record itself dated ahead, so it is not `_fixes_ahead`), so `next_due` offers no deadline then (it stays at an
unrelated date weeks away): the suspended start is published only at the next unrelated event. af35b1a's plan did not
change at that date (its B resolved the entry in error on the whole set), so this is new with the change. Fixed by
the lead (session 30): `Views.ahead`, every record dated ahead, effective or not, gives a tick at its date."""

from __future__ import annotations

from datetime import timedelta

from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import build_plan
from tests.unit.test_review_r29sys_future_silent import _ahead
from tests.unit.test_systemic_rules import NOW, lab, le, met, ready, run

DAY = timedelta(days=1)


def test_review_r30sys_the_plan_ticks_when_a_ct_withdrawn_by_a_later_entry_in_error_becomes_current() -> None:
    """SYS-AR-START L1068-1074: `next_due` is no later than the first instant the published plan changes."""
    base, _ = run([le(1, 12.0), lab(2, "creatinine_clearance", 75.0, "mL/min"), *ready()])
    ct = _ahead(met(0), DAY)
    eie = _ahead(ct, 2 * DAY, record_status="entered-in-error", corrects=ct.event_id)
    s, _ = run([ct, eie], base)

    def plan(hours: float) -> tuple[dict[str, str], object]:
        m.clear()
        at = r.AsOf(now=NOW + timedelta(hours=hours), memo=False)
        return {x.key: x.status for x in build_plan(s, at)}, at.next_due()

    today, due = plan(0)
    tomorrow, _ = plan(25)
    assert today != tomorrow  # the plan changes when the CT becomes current (a start suspended, to verify)
    edge = ct.occurred_at - r.Recency().future_tolerance
    assert due is not None and due <= edge + timedelta(seconds=1), (due, edge)
