"""Review R30-MERGE of 3533f91 (reverted in session 30; this passes again and guards a later fix of the merge;
HAZ-27-FUTURE-HIDES, systemic `as_of.merged`): "start" next to "review in 2 years".

SYS-AR-START (L1068-1074), SYS-SCHEDULE (L1128-1142, L1279-1281), SYS-REVIEW-2Y (L1196-1202, L1275-1281). The DT-SYS
case `test_dt_sys_a_response_contradicted_ahead_keeps_decision_a`: multi-metastatic, a good response, one zoledronic
acid infusion on 16/11 (spaced: under way 3 months); a "stable" response dated ahead. A (stable read as holding:
monthly, the course ended) recommends "Débuter un traitement anti-résorptif" (marked, to verify). B (good: under way)
gives the 2-year review of the course under way, an info item due 16/11/2028; A and C lack it.

Since 3533f91 B's review is published too, `suspended`: "À vérifier : Réévaluation de l'anti-résorptif le
16/11/2028", cannot_decide, a warning now (about a date two years away). The plan then says both "start an
anti-resorptive" (no course under way) and "re-evaluate the anti-resorptive course under way in 2028": two items of
two readings that cannot both hold, the info item of the one not published turned into a warning. Expected: the plan
does not say both (the start's note already says current data decide otherwise)."""

from __future__ import annotations

from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import build_plan
from tests.unit.test_dt_sys_future_views import LATER, _on_spaced_zoledronic_acid, _response
from tests.unit.test_systemic_rules import run


def test_review_r30merge_a_start_is_not_published_with_the_review_of_a_course_under_way() -> None:
    s, _ = run([*_on_spaced_zoledronic_acid(), _response(0, "stable")], now=LATER)
    m.clear()
    plan = {x.key: x for x in build_plan(s, r.AsOf(now=LATER, memo=False))}
    assert plan["antiresorptive-start"].status == "recommended"  # A: the course ended, start again
    assert "review-2-years" not in plan, plan["review-2-years"].title
