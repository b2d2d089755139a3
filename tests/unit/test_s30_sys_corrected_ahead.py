"""HAZ-27-FUTURE-HIDES, systemic planner view B (session 30, `as_of._fixes_ahead`): a correction dated ahead of the
CURRENT record it names is not yet in force in view B (R29B's rule, as the radiotherapy planner's). Today's CT found a
bone metastasis (SYS-AR-START L1068-1074, "dès la découverte d'une métastase osseuse"); a correction of it dated
tomorrow (a producer's clock ahead) says the same, withdraws it, or says it is ruled out. Where the correction agrees,
the start is recommended (B and C agree); where it does not, the start is never withdrawn silently: it stays, suspended
("cannot decide", no order), naming the record dated ahead ("à vérifier")."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from contracts.plan import PlanItem
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import build_plan
from tests.unit.test_systemic_rules import NOW, lab, le, met, ready, run

DAY = timedelta(days=1)


def _ahead(e: Any, dt: timedelta, **update: Any) -> Any:
    return e.model_copy(update={"occurred_at": NOW + dt, "recorded_at": NOW, "event_id": uuid.uuid4(), **update})


def _plan(s: Any) -> dict[str, PlanItem]:
    m.clear()
    return {x.key: x for x in build_plan(s, r.AsOf(now=NOW, memo=False))}


def _base(*first: Any) -> list[Any]:
    return [*first, le(1, 12.0), lab(2, "creatinine_clearance", 75.0, "mL/min"), *ready()]


def _start_after(**correction: Any) -> PlanItem | None:
    ct = met(0)
    base, _ = run(_base(ct))
    assert _plan(base)["antiresorptive-start"].status == "recommended"
    fix = _ahead(ct, DAY, corrects=ct.event_id, **correction)
    s, _ = run([fix], base)
    start = _plan(s).get("antiresorptive-start")
    if start is not None and start.status != "recommended":  # suspended: it names the correction dated ahead
        assert start.status == "cannot_decide" and not start.orders, start
        assert fix.event_id in {i.source_event_id for i in start.inputs} and "vérifier" in start.text_fr
    return start


def test_an_amendment_dated_ahead_saying_the_same_keeps_the_start() -> None:
    start = _start_after(record_status="amended", status="confirmed")
    assert start is not None and start.status == "recommended"


def test_an_entry_in_error_dated_ahead_suspends_the_start_naming_it() -> None:
    start = _start_after(record_status="entered-in-error")
    assert start is not None and start.status == "cannot_decide"


def test_a_correction_dated_ahead_with_the_correction_current_later_is_in_force() -> None:
    """Once the correction's date has come it applies (the entry in error withdraws the CT: no start)."""
    ct = met(0)
    base, _ = run(_base(ct))
    fix = _ahead(ct, DAY, record_status="entered-in-error", corrects=ct.event_id)
    s, _ = run([fix], base)
    m.clear()
    later = {x.key: x for x in build_plan(s, r.AsOf(now=NOW + 2 * DAY, memo=False))}
    start = later.get("antiresorptive-start")
    assert start is None or start.status != "recommended"


def test_an_amended_response_dated_ahead_does_not_space_the_infusions_silently() -> None:
    """SYS-SCHEDULE (L1136-1140): monthly zoledronic acid in the multi-metastatic situation, spaced to every 3 months
    only after a complete or good response. Today's assessment says progression; its amendment dated tomorrow says
    "good". Today's order is not P3M unless it names the amendment ("à vérifier")."""
    from tests.unit.test_review_r29sys_future_silent import _za
    from tests.unit.test_systemic_rules import oligo

    prog = le(5, 12.0, oncological_response="progression")
    base, _ = run([*_base(met(0)), _za(4, "2026-10-25"), prog, oligo(6, "multi_metastatic")])
    assert [o.interval for o in _plan(base)["antiresorptive"].orders] == ["P1M"]
    good = _ahead(prog, DAY, record_status="amended", corrects=prog.event_id, oncological_response="good")
    s, _ = run([good], base)
    ar = _plan(s)["antiresorptive"]
    named = good.event_id in {i.source_event_id for i in ar.inputs} and "vérifier" in ar.text_fr
    assert [o.interval for o in ar.orders] != ["P3M"] or named
