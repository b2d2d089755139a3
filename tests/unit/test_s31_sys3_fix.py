"""Session 31, s31-sys3: review R31-MERGE2's fix (HAZ-27-FUTURE-HIDES, systemic `as_of.merged`, across keys).

Where A reads a record dated ahead as an anti-resorptive course under way (a "good" response: SYS-SCHEDULE
L1136-1140) and current data restart it (SYS-AR-START L1068-1074, L1263-1265), B's start was published "Suspendu [...]
avant toute prescription" while the `antiresorptive` key drafted B's zoledronic acid monthly order (R29B). Both
readings treat, monthly holds on either: the order stays (B's, marked) and the start is B's recommendation, marked
the same way. Where no anti-resorptive order is drafted beside it, the start stays suspended (no order)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from contracts.clinical import Recommendation
from contracts.plan import PlanItem
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import _notify, build_plan
from tests.unit.test_dt_sys_future_views import LATER
from tests.unit.test_review_r29sys_held import _on_spaced_zoledronic_acid as _held_course
from tests.unit.test_review_r29sys_held import _responses_ahead
from tests.unit.test_systemic_rules import T0, lab, run

START = "antiresorptive-start"
AR = ("zoledronic_acid", "denosumab")
GONE = "ne s'applique plus"


def _cold(s: Any, now: Any) -> dict[str, PlanItem]:
    m.clear()
    try:
        return {x.key: x for x in build_plan(s, r.AsOf(now=now, memo=False))}
    finally:
        m.clear()


def _ar_orders(plan: dict[str, PlanItem]) -> list[tuple[str, str | None]]:
    return [(o.drug, o.interval) for x in plan.values() for o in x.orders if o.drug in AR]


def test_s31_sys3_the_restart_is_marked_beside_the_monthly_order_not_suspended() -> None:
    """R29-SYS's patient (today's progression ends the monthly course) with a current clearance: before the record
    ahead, current data recommend the start and draft zoledronic acid monthly. A "good" response dated ahead: the plan
    keeps that order (B's, marked) and the start as current data give it (status, severity, text), marked, the
    record named, still notified; never withdrawn "ne s'applique plus"; A's 2-year review of the course read ahead
    (L1275-1277) is left out beside it."""
    now = LATER + timedelta(minutes=1)
    today = int((LATER - T0).total_seconds() // 60) - 60
    base, _ = run([*_held_course("progression"), lab(today, "creatinine_clearance", 75.0, "mL/min")], now=now)
    before = _cold(base, now)
    assert before[START].status == "recommended" and _notify(before[START])
    assert _ar_orders(before) == [("zoledronic_acid", "P1M")]
    (good,) = _responses_ahead(1, "good")
    s, out = run([good], base, now=now)
    gone = [o for o in out if isinstance(o, Recommendation) and o.rule_id == "SYS-AR-START" and o.status == "withdrawn"]
    assert not [o for o in gone if GONE in o.text_fr]
    plan = _cold(s, now)
    start = plan[START]
    said = before[START]
    assert (start.status, start.severity, start.orders) == (said.status, said.severity, [])
    assert start.text_fr.startswith(said.text_fr) and "À vérifier" in start.text_fr and _notify(start)
    assert not start.text_fr.startswith("Suspendu")
    assert good.event_id in {i.source_event_id for i in start.inputs}
    order = plan["antiresorptive"]
    assert order.orders == before["antiresorptive"].orders and "À vérifier" in order.text_fr
    assert good.event_id in {i.source_event_id for i in order.inputs}
    assert "review-2-years" not in plan


def test_s31_sys3_with_no_order_beside_it_the_start_stays_suspended() -> None:
    """The same patient without a current clearance (R29-SYS's case as test_s31_merge_contradicts has it): no
    anti-resorptive order is drafted on either reading's key, so the start stays suspended (no order, a warning, the
    record named): the cross-key rule applies only beside an order current data draft."""
    now = LATER + timedelta(minutes=1)
    base, _ = run(_held_course("progression"), now=now)
    (good,) = _responses_ahead(1, "good")
    s, _ = run([good], base, now=now)
    plan = _cold(s, now)
    assert _ar_orders(plan) == []
    start = plan[START]
    assert (start.status, start.severity, start.orders) == ("cannot_decide", "warning", [])
    assert start.text_fr.startswith("Suspendu") and good.event_id in {i.source_event_id for i in start.inputs}
