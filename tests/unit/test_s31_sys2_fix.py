"""Session 31, fix of review R31-SYS2 (HAZ-27-FUTURE-HIDES, systemic planner "decide twice", as_of.py).

1. A correction dated ahead of a current record is left out of view B only while no current correction builds on it
   (names it or a later version of it, or supersedes it in its chain): else B resolves the chain as the fold does.
   Findings too: a CT amended by a record dated ahead, that amendment then entered in error (current): the CT is
   withdrawn (corrections.py: withdrawing an amendment never brings back what it replaced), so no metastasis and no
   SYS-AR-START item (L1068-1074) on it, neither recommended nor suspended.
   Guard: a current correction recorded BEFORE the one ahead (which amends it) does not build on it: the one ahead
   stays pending and B reads the current version (SYS-SCHEDULE L1136-1140: P1M, not the older "good"'s P3M).
2. An entry in error dated ahead (recorded now) of today's only "good" response: the spacing to every 3 months
   (SYS-SCHEDULE L1136-1140, L1279-1281: "il sera possible d'espacer") is not drafted; the monthly order, valid on
   either reading, is published marked "à vérifier", naming the entry; from the entry's date, monthly unmarked."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import build_plan
from tests.unit.test_review_r29sys_future_silent import _ahead, _base
from tests.unit.test_review_r31_sys2 import _history
from tests.unit.test_systemic_rules import NOW, T0, met, run

DAY = timedelta(days=1)


def _plan(s: Any, now: Any = NOW) -> dict[str, Any]:
    m.clear()
    return {x.key: x for x in build_plan(s, r.AsOf(now=now, memo=False))}


def _strip(items: dict[str, Any]) -> dict[str, str]:
    """The decisions (no inputs: the records' dates differ between the two histories)."""
    return {k: x.model_dump_json(exclude={"inputs"}) for k, x in items.items()}


def test_s31sys2_an_entry_in_error_of_a_ct_amendment_ahead_does_not_bring_the_ct_back() -> None:
    """SYS-AR-START L1068-1074, IMG-ISOLATED: today's CT (the only metastasis), amended by a record dated tomorrow,
    that amendment entered in error (current): the record is withdrawn. The plan is the one of a history where the
    amendment was never dated ahead: no start, not even suspended (B no longer brings the CT back)."""
    ct = met(0)
    base, _ = run(_base(ct))
    assert _plan(base)["antiresorptive-start"].status == "recommended"  # the CT alone: the start
    amended = _ahead(ct, DAY, record_status="amended", corrects=ct.event_id)
    eie = ct.model_copy(
        update={
            "event_id": uuid.uuid4(),
            "record_status": "entered-in-error",
            "corrects": amended.event_id,
            "occurred_at": NOW,
            "recorded_at": NOW + timedelta(minutes=1),
        }
    )
    s, _ = run([amended, eie], base)
    never_ahead, _ = run([amended.model_copy(update={"occurred_at": T0 + timedelta(minutes=1)}), eie], base)
    expected = _plan(never_ahead)
    assert "antiresorptive-start" not in expected or expected["antiresorptive-start"].status != "recommended"
    got = _plan(s)
    start = got.get("antiresorptive-start")
    assert start is None or not start.orders, start
    assert _strip(got) == _strip(expected)


def test_s31sys2_a_correction_ahead_of_a_current_amendment_stays_pending() -> None:
    """SYS-SCHEDULE L1136-1140. The older assessment "good"; today's "progression", amended (current, recorded
    before) to "progression" again; an amendment of that version dated tomorrow says "good". The current amendment
    does not build on the one ahead (it came first): the one ahead is not yet in force in B, the current version
    (progression) holds: monthly, never the older "good"'s spacing, nor the one ahead's, drafted."""
    events, today = _history("progression", older="good")
    again = today.model_copy(
        update={
            "event_id": uuid.uuid4(),
            "record_status": "amended",
            "corrects": today.event_id,
            "recorded_at": today.recorded_at + timedelta(minutes=1),
        }
    )
    ahead = _ahead(today, DAY, record_status="amended", corrects=again.event_id, oncological_response="good")
    s, _ = run([*events, again, ahead])
    plan = _plan(s)
    assert [o.interval for o in plan["antiresorptive"].orders] == ["P1M"]
    assert ahead.event_id in {i.source_event_id for i in plan["antiresorptive"].inputs}  # marked, naming it


def test_s31sys2_an_entry_in_error_ahead_of_todays_good_keeps_monthly_marked_then_unmarked() -> None:
    """SYS-SCHEDULE L1136-1140, L1279-1281: today's only "good", an entry in error of it dated tomorrow, recorded
    now. Today: P1M, marked, naming the entry, saying the spacing is not offered. From the entry's date: P1M, the
    entry in force, nothing to verify."""
    events, today = _history("good")
    eie = _ahead(today, DAY, record_status="entered-in-error", corrects=today.event_id)
    s, _ = run([*events, eie])
    item = _plan(s)["antiresorptive"]
    assert [o.interval for o in item.orders] == ["P1M"]
    assert eie.event_id in {i.source_event_id for i in item.inputs}
    assert "À vérifier" in item.text_fr and "espacement trimestriel" in item.text_fr
    then = eie.occurred_at
    later = _plan(s, then)["antiresorptive"]
    assert [o.interval for o in later.orders] == ["P1M"]
    assert "À vérifier" not in later.text_fr
