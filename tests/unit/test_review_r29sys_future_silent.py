"""Review R29-SYS (HAZ-27-FUTURE-HIDES, systemic planner "decide twice", services/systemic_planner/as_of.py).

Where B (the records dated ahead left out) and C (them re-dated to `now + tolerance`) disagree, the merge keeps A (the
records read as they are), unless B gives a critical item A lacks (shown "à vérifier") or a recommendation A lacks
(suspended, the lead). Three cases the merge leaves to A, each SILENT about the record dated ahead (no "à vérifier",
no input naming it), where A is the decision of that record read as holding now:

1. A correction dated ahead (an amendment saying the same as today's CT): the start disappears silently until its date
   (B resolves the correction before leaving it out, so B loses the CT too and agrees with A; C starts). The same
   hazard as R27B's resolution (the lead's "never a silent withdrawal"), through the correction path.
2. A bone-scan-only lesion (suspected, IMG-ISOLATED L489-491) "confirmed" by a CT dated tomorrow: A starts and drafts
   the vitamin D order today on the CT not yet current (B: targeted imaging still awaited, no start).
3. A progression today and a "good" response dated tomorrow: A orders zoledronic acid every 3 months today, its text
   saying the response is good (SYS-SCHEDULE L1136-1140), while the current response is a progression (B: monthly).

All three are 982e00c's decisions too (not regressions of the change); they are what the design leaves unchecked: A
kept where A is C's decision and B's differs. Expected: no order drafted nor item withdrawn on a record not yet
current without the item saying so (the record dated ahead among its inputs, "à vérifier").

Fixed by the lead (2026-12-06) for 2 and 3: where B and C disagree and A decides as C, A's item is kept and says it
rests on the record dated ahead ("à vérifier", the record among its inputs), suspended (no order) when it drafts an
order current data would not draft (`as_of_merge.read_ahead`, `suspended`). 1 fixed by the lead (2026-12-06, session
30): in view B a correction dated ahead of the current record it names is not yet in force (`as_of._fixes_ahead`,
R29B's rule as the radiotherapy planner's), so B reads today's CT, agrees with C, and the start is recommended."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from contracts.hospital import TreatmentEvent
from contracts.plan import PlanItem
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import build_plan
from tests.unit.test_systemic_rules import NOW, env, lab, le, met, oligo, ready, run


def _ahead(e: Any, dt: timedelta, **update: Any) -> Any:
    """`e` dated `NOW + dt`, recorded at NOW (a producer clock ahead), a new record."""
    return e.model_copy(update={"occurred_at": NOW + dt, "recorded_at": NOW, "event_id": uuid.uuid4(), **update})


def _plan(s: Any) -> dict[str, PlanItem]:
    m.clear()
    return {x.key: x for x in build_plan(s, r.AsOf(now=NOW, memo=False))}


def _names(x: PlanItem, event_id: uuid.UUID) -> bool:
    return event_id in {i.source_event_id for i in x.inputs} and "vérifier" in x.text_fr


def _za(minutes: int, on: str) -> TreatmentEvent:
    body = {"kind": "drug_administration", "drug": "zoledronic_acid", "on": on}
    return TreatmentEvent.model_validate({**env(minutes), "treatment": body})


def _base(*first: Any) -> list[Any]:
    return [*first, le(1, 12.0), lab(2, "creatinine_clearance", 75.0, "mL/min"), *ready()]


def test_review_r29sys_today_s_ct_starts_the_antiresorptive() -> None:
    """The reference of case 1: the CT of today alone (SYS-AR-START L1068-1074): the start is recommended."""
    s, _ = run(_base(met(0)))
    assert _plan(s)["antiresorptive-start"].status == "recommended"


def test_review_r29sys_an_amendment_dated_ahead_saying_the_same_does_not_withdraw_the_start_silently() -> None:
    """SYS-AR-START (L1068-1074): "dès la découverte d'une métastase osseuse". Today's CT confirms the lesion; an
    amendment of that CT dated tomorrow says the same. Today the plan has no start at all, and no item names the
    amendment: HAZ-27's "a fact dated in the future hides the current one even when it says the same", through a
    correction. Right: the start (B and C agree once B reads the version the amendment corrects, safe under the merge:
    B is published only where C agrees, or marked), or at least suspended naming the amendment."""
    ct = met(0)
    base, _ = run(_base(ct))
    amended = _ahead(ct, timedelta(days=1), record_status="amended", corrects=ct.event_id, status="confirmed")
    s, _ = run([amended], base)
    start = _plan(s).get("antiresorptive-start")
    assert start is not None
    assert start.status == "recommended" or _names(start, amended.event_id)


def test_review_r29sys_a_confirmation_dated_ahead_drafts_no_order_today_without_saying_so() -> None:
    """IMG-ISOLATED (L489-491): a lesion seen only on a bone scan calls for targeted imaging; the CT confirming it is
    dated tomorrow (not yet current). SYS-AR-START (L1068-1074) and its prerequisites (SYS-AR-PREREQ L795-799,
    SYS-VITD-CORR) are drafted today as if it were: the vitamin D item carries an order, nothing names the CT."""
    scan = met(0).model_copy(update={"modality": "bone_scan"})
    base, _ = run(_base(scan))
    assert "antiresorptive-start" not in _plan(base)  # the scan alone: no start
    ct = _ahead(met(0), timedelta(days=1), status="confirmed")
    s, _ = run([ct], base)
    plan = _plan(s)
    for x in plan.values():
        assert not x.orders or _names(x, ct.event_id), x.key
    start = plan.get("antiresorptive-start")
    assert start is None or start.status != "recommended" or _names(start, ct.event_id)


def test_review_r29sys_a_good_response_dated_ahead_does_not_space_the_infusions_silently() -> None:
    """SYS-SCHEDULE (L1136-1140): zoledronic acid is monthly in the multi-metastatic situation and "may be spaced" to
    every 3 months after a complete or good response. Today's assessment is a progression; one dated tomorrow says
    "good". The order is P3M today and its text says the response is good, with no word of the record's date."""
    prog = le(5, 12.0, oncological_response="progression")
    base, _ = run([*_base(met(0)), _za(4, "2026-10-25"), prog, oligo(6, "multi_metastatic")])
    assert [o.interval for o in _plan(base)["antiresorptive"].orders] == ["P1M"]
    good = _ahead(prog, timedelta(days=1), oncological_response="good")
    s, _ = run([good], base)
    ar = _plan(s)["antiresorptive"]
    assert [o.interval for o in ar.orders] != ["P3M"] or _names(ar, good.event_id)
