"""Review R29-SYS (HAZ-27-FUTURE-HIDES, systemic planner "decide twice"): the fallback to A when a record dated ahead
was folded into `finding_base` / `assessment_base` (retention.py keeps, per kind, the newest RECORDS_KEPT recorded
and the newest RECORDS_KEPT by clinical time; a record dated ahead that is neither is folded).

`as_of.views` then returns None for the WHOLE plan: a response assessment folded while dated ahead switches off the
lesion's view too, so R27B's case (today's CT, a "resolved" dated tomorrow: the start suspended, "à vérifier", since
the change) goes back to the silent withdrawal of 982e00c as soon as the same producer (its clock ahead) has sent
three response assessments. The response and the lesion folds are independent (SYS-SCHEDULE reads the one,
SYS-AR-START the other): only the view of the fold whose base is ahead needs to fall back."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from contracts.plan import PlanItem
from services.systemic_planner import as_of
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import build_plan
from tests.unit.test_systemic_rules import NOW, lab, le, met, ready, run

LATER = NOW + timedelta(seconds=3)  # the decisions: after every record's arrival (retention's exactness assumption)


def _ahead(e: Any, days: int, recorded_s: int = 0, **update: Any) -> Any:
    """`e` dated `NOW + days`, recorded at NOW + `recorded_s` seconds (a producer clock ahead), a new record."""
    when = {"occurred_at": NOW + timedelta(days=days), "recorded_at": NOW + timedelta(seconds=recorded_s)}
    return e.model_copy(update={**when, "event_id": uuid.uuid4(), **update})


def _plan(s: Any) -> dict[str, PlanItem]:
    m.clear()
    return {x.key: x for x in build_plan(s, r.AsOf(now=LATER, memo=False))}


def _resolved_tomorrow() -> tuple[Any, Any]:
    ct = met(0)
    base, _ = run([ct, le(1, 12.0), lab(2, "creatinine_clearance", 75.0, "mL/min"), *ready()], now=LATER)
    resolved = _ahead(ct, 1, status="resolved")
    s, _ = run([resolved], base, now=LATER)
    return s, resolved


def test_review_r29sys_r27b_s_case_alone_is_suspended() -> None:
    """The reference: today's CT, "resolved" dated tomorrow: the start suspended, naming the record (the change)."""
    s, resolved = _resolved_tomorrow()
    start = _plan(s)["antiresorptive-start"]
    assert (start.status, start.severity, start.orders) == ("cannot_decide", "warning", [])
    assert resolved.event_id in {i.source_event_id for i in start.inputs}


def test_review_r29sys_three_responses_dated_ahead_do_not_bring_back_the_silent_withdrawal() -> None:
    """SYS-AR-START (L1068-1074): the start today is on today's CT; the "resolved" finding is dated tomorrow. The same
    producer sends three assessments dated ahead with a response (SYS-SCHEDULE L1136-1140, unrelated to the start):
    the oldest-dated, oldest-recorded one is folded into `assessment_base`, `views` returns None, and the plan is A:
    no start, no item naming the record dated ahead."""
    s, resolved = _resolved_tomorrow()
    for k in range(3):
        s, _ = run([_ahead(le(5, 12.0, oncological_response="stable"), 1 + k, k)], s, now=LATER)
    # session 32 (review R32-SYS): retention no longer folds a record dated after the state's clock
    assert s.assessment_base is None or s.assessment_base.response is None
    assert as_of.involves_future(s, r.AsOf(now=LATER))
    start = _plan(s).get("antiresorptive-start")
    assert start is not None and (start.status, start.severity, start.orders) == ("cannot_decide", "warning", [])
    assert resolved.event_id in {i.source_event_id for i in start.inputs}
