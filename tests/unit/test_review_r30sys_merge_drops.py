"""Review R30-SYS (HAZ-27-FUTURE-HIDES, systemic planner "decide twice", `as_of.merged`): B right, the merge drops it.

SYS-AR-START (RULES.md; guideline L1068-1074): at the discovery of a bone metastasis, an anti-resorptive when life
expectancy is > 3 months; with no estimate the planner asks for one ("décision impossible, données manquantes", status
cannot_decide), and the care pathway follows. Today's CT found the metastasis (no estimate yet). An amendment of it
dated tomorrow (`corrects` set; a producer's clock ahead) says "suspected" on MRI (IMG-ISOLATED, L476-494).

With the change, view B keeps today's CT (the amendment not yet in force): B asks for the estimate, C and A have no
metastasis, so no plan at all. `merged` publishes B's item A lacks only when it is critical or "recommended"; a
cannot_decide or info item of B's is dropped (A's "nothing"): the whole plan disappears, nothing names the record
dated ahead (found by the reviewer's differential over random histories with corrections dated ahead: a confirmed
lesion amended ahead). af35b1a gives the same empty plan (its B lost the CT too); the change fixed B but the merge still
withdraws silently (the lead's "never a silent withdrawal" is implemented for "recommended" only).

Fixed in session 31 (`as_of.kept`): B's item A lacks that drafts no order is published with its text, marked "à
vérifier", the record dated ahead among its inputs (3533f91's "suspend them all" was reverted, review R30-MERGE)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.test_review_r29sys_future_silent import _ahead, _plan
from tests.unit.test_systemic_rules import met, run

DAY = timedelta(days=1)


@pytest.mark.parametrize("status", ["suspected", "resolved"])
def test_review_r30sys_an_amendment_dated_ahead_does_not_empty_the_plan_silently(status: str) -> None:
    """SYS-AR-START L1068-1074: today's CT holds until the amendment's date; the estimate is still asked for."""
    ct = met(0)
    base, _ = run([ct])
    assert _plan(base)["antiresorptive-start"].status == "cannot_decide"
    fix = _ahead(ct, DAY, record_status="amended", corrects=ct.event_id, status=status, modality="mri")
    s, _ = run([fix], base)
    start = _plan(s).get("antiresorptive-start")
    assert start is not None, "the start item (estimate the life expectancy) disappeared silently"
    assert (
        fix.event_id in {i.source_event_id for i in start.inputs}
        or start.text_fr == _plan(base)["antiresorptive-start"].text_fr
    )
