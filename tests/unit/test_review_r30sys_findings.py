"""Review R30-SYS (HAZ-27-FUTURE-HIDES, systemic planner view B, `as_of.views`, session 30): findings corrected ahead.

SYS-AR-START (RULES.md; guideline L1068-1074, L1263-1265): an anti-resorptive "dès la découverte d'une métastase
osseuse" (life expectancy > 3 months); IMG-ISOLATED (L476-494): a CT confirms. Today's CT found the metastasis (start
recommended). A correction of it dated tomorrow (a producer's clock ahead) must not withdraw the start silently (the
lead: "never a silent withdrawal"; R29-SYS case 1, fixed for a correction naming the CT by `corrects`):

1. An amendment naming no record (`corrects` is optional for a finding's amendment: it corrects its lesion's latest),
   dated tomorrow, saying the same ("confirmed") or "resolved": `_fixes_ahead` needs `corrects`, so B resolves it on
   the whole set, loses the CT and agrees with A (the lesion first seen tomorrow): the start disappears, nothing said.
2. An entry in error dated tomorrow naming the CT by its first ID, while a current amendment moved the finding to
   another lesion ID ("a" -> "b"; the entry carries the lesion as now known, "b"): B re-folds only the lesion of the
   record named ("a"), not "b" (dropped from A's fold, so neither dated ahead nor in `touched`): B has no lesion, A
   and C neither: the start disappears, nothing said.

All are af35b1a's decisions too (not regressions; cases the change leaves uncovered).

Fixed in session 31: the record an amendment naming none corrects is resolved as the fold does (`as_of._fixes_ahead`),
and B re-folds every lesion whose counting records differ without the corrections not yet in force."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from contracts.plan import PlanItem
from tests.unit.test_review_r29sys_future_silent import _ahead, _base, _plan
from tests.unit.test_systemic_rules import T0, met, run

DAY = timedelta(days=1)


def _not_silent(start: PlanItem | None, record: uuid.UUID) -> None:
    """Recommended, or suspended naming the record dated ahead ("à vérifier"): never absent nor withdrawn silently."""
    assert start is not None, "the start disappeared silently"
    if start.status != "recommended":
        assert start.status == "cannot_decide" and not start.orders, start
        assert record in {i.source_event_id for i in start.inputs} and "vérifier" in start.text_fr, start


@pytest.mark.parametrize("status", ["confirmed", "resolved"])
def test_review_r30sys_an_amendment_naming_none_dated_ahead_does_not_withdraw_the_start_silently(status: str) -> None:
    """SYS-AR-START L1068-1074: today's CT holds until the amendment's date."""
    ct = met(0)
    base, _ = run(_base(ct))
    assert _plan(base)["antiresorptive-start"].status == "recommended"
    fix = _ahead(ct, DAY, record_status="amended", status=status)  # corrects: None (the lesion's latest)
    s, _ = run([fix], base)
    _not_silent(_plan(s).get("antiresorptive-start"), fix.event_id)


def test_review_r30sys_an_entry_in_error_ahead_of_a_finding_moved_to_another_lesion_is_not_silent() -> None:
    """SYS-AR-START L1068-1074: today's (amended) CT holds until the entry in error's date."""
    ct = met(0)  # lesion "a"
    moved = ct.model_copy(
        update={
            "event_id": uuid.uuid4(),
            "record_status": "amended",
            "corrects": ct.event_id,
            "lesion_id": "b",
            "occurred_at": T0 + timedelta(minutes=3),
            "recorded_at": T0 + timedelta(minutes=3),
        }
    )
    base, _ = run(_base(ct, moved))
    assert _plan(base)["antiresorptive-start"].status == "recommended"
    eie = _ahead(ct, DAY, record_status="entered-in-error", corrects=ct.event_id, lesion_id="b")
    s, _ = run([eie], base)
    _not_silent(_plan(s).get("antiresorptive-start"), eie.event_id)
