"""Review R30-MERGE of 3533f91 (reverted in session 30; this passes again and guards a later fix of the merge;
HAZ-27-FUTURE-HIDES, systemic `as_of.merged`): a non-indication made undecided.

SYS-AR-START (RULES.md; guideline L1068-1074): an anti-resorptive at the discovery of a bone metastasis only when the
life expectancy is > 3 months. Today's CT finds a metastasis, the estimate is 2 months: "Anti-résorptif non indiqué à
ce stade" (not_indicated, info). A finding dated tomorrow says the lesion resolved (a producer's clock ahead).

View B (current data): not indicated. View C (resolved now): no trigger, no item. A: no item. Both readings prescribe
nothing. Since 3533f91 B's item A lacks is published `suspended`: status cannot_decide, severity warning, "un
enregistrement daté dans le futur le contredit [...] avant toute prescription": the one decision both readings agree
on (no anti-resorptive) is shown as an undecided start, contradicted, to check before prescribing. Expected: B's
non-indication (marked or not), never "cannot decide" nor a warning inviting a prescription."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.test_review_r29sys_future_silent import _ahead, _plan
from tests.unit.test_systemic_rules import le, met, run


def test_review_r30merge_a_non_indication_both_readings_agree_on_is_not_made_undecided() -> None:
    base, _ = run([met(0), le(1, 2.0)])
    assert _plan(base)["antiresorptive-start"].status == "not_indicated"
    s, _ = run([_ahead(met(0), timedelta(days=1), status="resolved")], base)
    start = _plan(s).get("antiresorptive-start")
    assert start is None or (start.status, start.severity) == ("not_indicated", "info"), (start.status, start.text_fr)
