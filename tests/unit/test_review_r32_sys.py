"""Review R32-SYS (HAZ-27-FUTURE-HIDES, systemic planner "decide twice", services/systemic_planner/as_of.py): a fold of
records no longer held (retention.py: `finding_base`, `assessment_base`) dated ahead made `views()` None for the whole
plan, so the plan was decision A, nothing marked (R29-SYS). The review broke a fix in `as_of.views` alone (b55e81b,
branch s32-r29sys, not landed: defect 1 below) and found the cause in retention, which folded a current record with
one dated ahead, so the base held the record ahead and hid what was current before it. Fixed there (session 32,
`retention._ahead_of`): a record dated after the state's clock is not folded (per group the soonest AHEAD_KEPT); past
that bound the fold dated ahead is back (a strict xfail, the residual).

The reference for "what current data say" is the same history kept whole (`apply_event(..., keep_all=True)`: no
fold, so B sees every current record): HAZ-25-SYS-02's promise is that retention never changes an output. Each case
below was a defect with the fold dated ahead (on main before session 32, or at b55e81b) and asserts now that nothing
dated ahead is folded (`_nothing_ahead_folded`) and that the plan is the whole history's:
- a "good" response dated ahead never spaces zoledronic acid (SYS-SCHEDULE L1136-1140, L1279-1281: monthly, marked,
  the record named), the course under way or being started (main: P3M unmarked);
- 1. (b55e81b's regression) a current "good" with "good" responses dated ahead: the spaced course stays under way,
  the 2-year review (L1275-1277) kept, no restart (L1068-1074);
- R27B's case (SYS-AR-START L1068-1074) beside a lesion whose records are dated ahead (main: withdrawn silently);
- 2. a single lesion, today's CT and "resolved" records dated ahead: the start suspended, naming them;
- 3. a bone-scan lesion (IMG-ISOLATED L489-491) with a CT "confirmed" dated ahead: no order drafted unmarked;
- 4. a "resolved" dated ahead under newer "confirmed" records dated ahead: a tick at its date;
- 5. (a late record, outside HAZ-25-SYS-02) a stale "good" held beside a newer current "progression": monthly."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.hospital import ClinicalAssessment, ImagingFinding
from contracts.plan import PlanItem
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, build_plan
from services.systemic_planner.retention import AHEAD_KEPT
from tests.unit.test_review_r29sys_future_pruned import LATER, _ahead
from tests.unit.test_review_r29sys_future_silent import _za
from tests.unit.test_systemic_rules import NOW, lab, le, met, oligo, ready

TOL = r.Recency().future_tolerance


def _state(events: Sequence[Message], keep_all: bool = False, now: datetime = LATER) -> SystemicState:
    s = SystemicState()
    for e in events:
        s, _ = apply_event(s, e, r.AsOf(now=now), keep_all=keep_all)
    return s


def _plan(s: SystemicState, now: datetime = LATER) -> dict[str, PlanItem]:
    m.clear()
    return {x.key: x for x in build_plan(s, r.AsOf(now=now, memo=False))}


def _due(s: SystemicState, now: datetime = LATER) -> datetime | None:
    m.clear()
    at = r.AsOf(now=now, memo=False)
    build_plan(s, at)
    return at.next_due()


def _named(x: PlanItem) -> set[uuid.UUID | None]:
    return {i.source_event_id for i in x.inputs if i.name == "future_dated_record"}


def _intervals(plan: dict[str, PlanItem]) -> list[str]:
    return [o.interval for x in plan.values() for o in x.orders if o.drug == "zoledronic_acid"]


def _common(response: str | None = None) -> list[Message]:
    """Today's CT, a 12-month estimate (with `response`), a clearance of 75, multi-metastatic, prerequisites met."""
    extra = {} if response is None else {"oncological_response": response}
    return [
        met(0),
        le(1, 12.0, **extra),
        lab(2, "creatinine_clearance", 75.0, "mL/min"),
        *ready(),
        oligo(6, "multi_metastatic"),
    ]


def _responses_ahead(*values: str) -> list[ClinicalAssessment]:
    """Assessments dated NOW + 1, 2, 3 ... days, recorded NOW + 0, 1, 2 ... s (a producer clock ahead): with three,
    the first (dated NOW + 1 day) is folded into `assessment_base` (RECORDS_KEPT = 2)."""
    return [_ahead(le(5, 12.0, oncological_response=v), 1 + k, k) for k, v in enumerate(values)]


def _nothing_ahead_folded(s: SystemicState) -> None:
    """Retention (session 32, `retention._ahead_of`) folds no record dated after the state's clock: no base holds
    one, so view B is built (R29-SYS)."""
    clock = s.newest_recorded_at
    assert clock is not None
    times = [f.occurred_at for b in s.finding_base.values() for f in (b.first, b.status) if f is not None]
    if s.assessment_base is not None:
        fold = s.assessment_base
        times += [f.occurred_at for f in fold.life_expectancies]
        times += [fold.response.occurred_at] if fold.response is not None else []
    assert all(t <= clock for t in times)


# ---- 1. a response dated ahead folded into assessment_base (SYS-SCHEDULE L1136-1140, L1279-1281) ------------------
@pytest.mark.parametrize("za", [True, False], ids=["under_way", "being_started"])
def test_r32sys_a_good_response_folded_ahead_never_spaces_and_is_named(za: bool) -> None:
    """The "good" dated tomorrow is folded (the base's response ahead): zoledronic acid monthly, marked, the folded
    record named among the inputs, no order anywhere at 3 months; as with the whole history kept."""
    aheads = _responses_ahead("good", "good", "good")
    events = [*_common(), *([_za(4, "2026-10-25")] if za else []), *aheads]
    s = _state(events)
    _nothing_ahead_folded(s)
    plan = _plan(s)
    ar = plan["antiresorptive"]
    assert [o.interval for o in ar.orders] == ["P1M"] and _intervals(plan) == ["P1M"]
    assert aheads[0].event_id in _named(ar) and "À vérifier" in ar.text_fr
    assert "espacé" not in ar.title
    full = _plan(_state(events, keep_all=True))
    assert {k: (x.status, [o.interval for o in x.orders]) for k, x in plan.items()} == {
        k: (x.status, [o.interval for o in x.orders]) for k, x in full.items()
    }


@pytest.mark.xfail(
    strict=True,
    reason="residual (session 32): past AHEAD_KEPT records dated ahead of one group, retention folds one dated ahead "
    "again, view B is not built (R29-SYS) and the plan is A: zoledronic acid spaced to 3 months, unmarked",
)
def test_r32sys_past_ahead_kept_responses_dated_ahead_never_space() -> None:
    """A producer sending more than AHEAD_KEPT assessments dated ahead (a flood, not a clock a little ahead): the
    bound holds and the fold dated ahead is back (hazard log HAZ-27 residuals)."""
    aheads = _responses_ahead(*["good"] * (AHEAD_KEPT + 3))
    plan = _plan(_state([*_common(), _za(4, "2026-10-25"), *aheads]))
    assert _intervals(plan) == ["P1M"]


# a guard on main; b55e81b (branch s32-r29sys, not landed) fails it
def test_r32sys_a_current_good_folded_behind_one_ahead_does_not_restart_a_spaced_course() -> None:
    aheads = _responses_ahead("good", "good", "good")
    events = [*_common("good"), _za(4, "2026-09-20"), *aheads]
    full = _plan(_state(events, keep_all=True))
    assert full["antiresorptive-start"].status == "done" and "review-2-years" in full  # the reference
    plan = _plan(_state(events))
    assert plan["antiresorptive-start"].status != "recommended"
    assert "review-2-years" in plan


def test_r32sys_a_stale_held_good_does_not_space_over_a_folded_current_progression() -> None:
    later = NOW + timedelta(seconds=4)
    progression = le(0, 12.0, oncological_response="progression").model_copy(
        update={"occurred_at": NOW - timedelta(days=5), "recorded_at": NOW - timedelta(days=5)}
    )
    stale = le(0, 12.0, oncological_response="good").model_copy(
        update={"occurred_at": NOW - timedelta(days=10), "recorded_at": NOW + timedelta(seconds=3)}
    )
    events = [
        met(0),
        progression,
        lab(2, "creatinine_clearance", 75.0, "mL/min"),
        *ready(),
        oligo(6, "multi_metastatic"),
    ]
    events += [*_responses_ahead("good", "good", "good"), stale]
    full = _plan(_state(events, keep_all=True, now=later), later)
    assert _intervals(full) == ["P1M"]  # the reference: the current response is a progression
    plan = _plan(_state(events, now=later), later)
    ar = plan["antiresorptive"]
    assert [o.interval for o in ar.orders] != ["P3M"] or _named(ar)


def test_r32sys_the_folded_response_ticks_at_its_date_and_warm_equals_cold() -> None:
    """Q4: the response folded while dated ahead is in `Views.future`: a tick at its date (minus the tolerance); at
    that instant the plan is the whole history's (P3M, course under way, the review), with no new event."""
    aheads = _responses_ahead("good", "good", "good")
    events = [*_common("good"), _za(4, "2026-09-20"), *aheads]
    s = _state(events)
    edge = aheads[0].occurred_at - TOL
    assert _due(s) == edge
    at_edge = _plan(s, edge)
    assert _intervals(at_edge) == ["P3M"] and at_edge["antiresorptive-start"].status == "done"
    assert "review-2-years" in at_edge
    assert _plan(s, edge) == _plan(_state(events, keep_all=True), edge)
    _warm_equals_cold(s, LATER)
    _warm_equals_cold(s, edge)


def _warm_equals_cold(s: SystemicState, now: datetime) -> None:
    m.clear()
    cold = r.AsOf(now=now, memo=False)
    plan = [x.model_dump_json() for x in build_plan(s, cold)]
    for _ in range(2):
        warm = r.AsOf(now=now)
        assert [x.model_dump_json() for x in build_plan(s, warm)] == plan
        assert warm.next_due() == cold.next_due()


# ---- 2. a lesion whose finding_base is dated ahead (SYS-AR-START L1068-1074, IMG-ISOLATED L489-491) ---------------
def _lesion_b(**update: Any) -> ImagingFinding:
    return met(0).model_copy(update={"lesion_id": "b", "event_id": uuid.uuid4(), **update})


def _r27b_beside(b_first: list[ImagingFinding], b_ahead: list[dict[str, Any]]) -> tuple[SystemicState, Any]:
    """R27B's case on lesion "a" (today's CT, "resolved" dated tomorrow, held) beside lesion "b", three records of
    which are dated ahead (its base ahead)."""
    ct = met(0)
    resolved = _ahead(ct, 1, status="resolved")
    events: list[Message] = [ct, *b_first, le(1, 12.0), lab(2, "creatinine_clearance", 75.0, "mL/min"), *ready()]
    events += [resolved, *(_ahead(_lesion_b(), 1 + k, k, **u) for k, u in enumerate(b_ahead))]
    return _state(events), resolved


def test_r32sys_r27b_s_case_is_still_suspended_beside_a_lesion_whose_base_is_ahead() -> None:
    """Q3: lesion "b" (today's CT) folded with a "resolved" dated ahead; lesion "a" as R27B: B reads a's CT today (the
    start), C none: the start suspended, naming a's resolution; no order drafted."""
    s, resolved = _r27b_beside([_lesion_b()], [{"status": "resolved"}] * 3)
    _nothing_ahead_folded(s)
    plan = _plan(s)
    start = plan["antiresorptive-start"]
    assert (start.status, start.severity, start.orders) == ("cannot_decide", "warning", [])
    assert resolved.event_id in _named(start)
    assert all(not x.orders or _named(x) for x in plan.values())


def test_r32sys_r27b_s_case_beside_a_lesion_seen_only_ahead_keeps_the_start_of_current_data() -> None:
    """Q3: lesion "b" seen only on CTs dated ahead (its base ahead): B (a's CT today) and C (b's CT re-dated) both
    start: the start stands (current data give it, SYS-AR-START L1068-1074), never withdrawn."""
    s, _ = _r27b_beside([], [{"status": "confirmed"}] * 3)
    _nothing_ahead_folded(s)
    assert _plan(s)["antiresorptive-start"].status == "recommended"


def _one_lesion_then_ahead(today: ImagingFinding, ahead: ImagingFinding, status: str) -> list[Message]:
    """Lesion "a" seen today (ready for a start), then three records of it dated ahead with `status` (the first
    folded into its base with today's, RECORDS_KEPT = 2)."""
    events: list[Message] = [today, le(1, 12.0), lab(2, "creatinine_clearance", 75.0, "mL/min"), *ready()]
    return events + [_ahead(ahead, 1 + k, k, status=status) for k in range(3)]


def test_r32sys_a_resolution_ahead_folded_with_today_s_ct_does_not_withdraw_the_start_silently() -> None:
    events = _one_lesion_then_ahead(met(0), met(0), "resolved")
    full = _plan(_state(events, keep_all=True))["antiresorptive-start"]
    assert full.status == "cannot_decide" and _named(full)  # the reference
    s = _state(events)
    _nothing_ahead_folded(s)
    start = _plan(s).get("antiresorptive-start")
    assert start is not None and _named(start)


def test_r32sys_a_confirmation_ahead_folded_with_a_bone_scan_drafts_no_order_unmarked() -> None:
    events = _one_lesion_then_ahead(met(0).model_copy(update={"modality": "bone_scan"}), met(0), "confirmed")
    full = _plan(_state(events, keep_all=True))
    assert all(not x.orders or _named(x) for x in full.values())  # the reference
    plan = _plan(_state(events))
    assert all(not x.orders or _named(x) for x in plan.values())
    assert plan["antiresorptive-start"].status != "recommended" or _named(plan["antiresorptive-start"])


def test_r32sys_a_lesion_record_folded_ahead_gets_a_tick_at_its_date() -> None:
    ct = met(0)
    events: list[Message] = [ct, le(1, 12.0), lab(2, "creatinine_clearance", 75.0, "mL/min"), *ready()]
    folded = _ahead(ct, 1, 0, status="resolved")
    events += [folded, _ahead(ct, 2, 1, status="confirmed"), _ahead(ct, 3, 2, status="confirmed")]
    edge = folded.occurred_at - TOL
    assert _due(_state(events, keep_all=True)) == edge  # the reference
    s = _state(events)
    _nothing_ahead_folded(s)
    assert _plan(s) != _plan(s, edge)  # the plan changes at that instant
    due = _due(s)
    assert due is not None and due <= edge


# Q5 (b55e81b against its parent, on random histories with folds dated ahead) is on branch s32-r29sys-rev only.
