"""Review R31-MERGE2 of a0c41a4 (HAZ-27-FUTURE-HIDES, systemic `as_of_merge.merged`, `kept`, `contradicts`,
`_course_under_way`, `_alert`).

The rule under review: per item key, B (current data) where B and C (the record ahead re-dated to now) agree; else A's
reading, marked where A decides as C (`read_ahead`); where A decides as C with no alert and B gives one, B's item
(suspended when it drafts, else marked: `raised`), A's marked non-alert items contradicting it left out; B's items A
lacks suspended when they draft, else kept, marked, left out only when no alert and contradicting A's marked reading
(`contradicts`: a course under way, SYS-REVIEW-2Y L1275-1277 / SYS-AR-START "done", against none).

Defect (was a strict xfail; fixed in session 31, s31-sys3: the start is B's recommendation marked, beside the order):

1. `test_review_r31merge2_no_antiresorptive_order_beside_the_start_suspended`: R29-SYS's patient (SYS-SCHEDULE
   L1136-1140: a good response spaces zoledronic acid to every 3 months) with a current clearance. Today's
   progression ends the monthly course: current data recommend the start (SYS-AR-START L1068-1074, L1263-1265) and
   draft zoledronic acid 4 mg monthly (SYS-ZA-DOSE). A "good" response dated ahead keeps the course under way in A.
   a0c41a4's new branch publishes the start "Suspendu, à vérifier [...] avant toute prescription" (no order), while the
   `antiresorptive` key (A P3M, B P1M: R29B's branch, which comes first) drafts B's zoledronic acid 4 mg monthly order
   in the same plan: the prescription the suspension says to verify first is drafted beside it (at 1dc5611 the start
   was A's "Anti-résorptif en cours", marked). The same on a random history:
   `test_review_r31merge2_no_antiresorptive_order_beside_the_start_suspended_random_history` (seed 184 of the guard's
   generator, `_ahead_more`): not a constructed case. Every order published is still B's for its key (guard below):
   the contradiction is between two keys, which `merged` decides one at a time.

Guards (pass): `contradicts`'s table checked against the planner (SYS-AR-START "done" exactly when an anti-resorptive
course is under way, the 2-year review and "Suivi sous anti-résorptif" only then); over random histories (DT-SYS's,
R31-MERGE's extras, new lesions and responses dated ahead): no current alert withdrawn or made a non-alert where B
and C disagree, no order that current data would not draft, no A severity lost to B's alert, no pair of contradicting
items both unmarked, `merged` deterministic; the plan of R29-SYS's patient does not change between two ticks."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

from contracts.base import Message
from contracts.hospital import ClinicalAssessment, ImagingFinding
from contracts.plan import PlanItem
from services.systemic_planner import as_of, as_of_merge
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import _notify, build_plan, plan_once
from services.systemic_planner.treatments import drug_history
from tests.unit.test_dt_sys_differential import MODALITIES, RESPONSES
from tests.unit.test_dt_sys_differential import NOW as DT_NOW
from tests.unit.test_dt_sys_differential import _ahead as dt_ahead
from tests.unit.test_dt_sys_differential import _env as dt_env
from tests.unit.test_dt_sys_differential import _past as dt_past
from tests.unit.test_dt_sys_future_views import LATER
from tests.unit.test_review_r29sys_held import _on_spaced_zoledronic_acid as _held_course
from tests.unit.test_review_r29sys_held import _responses_ahead
from tests.unit.test_review_r31_merge import _extras, _state
from tests.unit.test_systemic_rules import T0, lab, run

START = "antiresorptive-start"
AR_DRUGS = ("zoledronic_acid", "denosumab")
SEVERITY = {"info": 0, "warning": 1, "critical": 2}
SEEDS = 160


def _cold(s: Any, now: Any) -> dict[str, PlanItem]:
    m.clear()
    return {x.key: x for x in build_plan(s, r.AsOf(now=now, memo=False))}


def _marked(x: PlanItem) -> bool:
    return "À vérifier" in x.text_fr or x.text_fr.startswith("Suspendu")


def _restart_with_a_good_response_ahead() -> tuple[Any, Any]:
    """R29-SYS's patient (zoledronic acid on 16/11, progression: monthly, the course ended) with a clearance of today,
    then a "good" response dated ahead (A: spaced, the course under way)."""
    now = LATER + timedelta(minutes=1)
    today = int((LATER - T0).total_seconds() // 60) - 60
    s, _ = run([*_held_course("progression"), lab(today, "creatinine_clearance", 75.0, "mL/min")], now=now)
    (good,) = _responses_ahead(1, "good")
    s, _ = run([good], s, now=now)
    return s, now


def _suspended_and_drafted(plan: dict[str, PlanItem]) -> tuple[bool, list[str]]:
    start = plan.get(START)
    suspended = start is not None and start.status == "cannot_decide" and start.text_fr.startswith("Suspendu")
    return suspended, [o.drug for x in plan.values() for o in x.orders if o.drug in AR_DRUGS]


def test_review_r31merge2_no_antiresorptive_order_beside_the_start_suspended() -> None:
    """SYS-AR-START (L1068-1074, L1263-1265) and SYS-SCHEDULE (L1136-1140: "En cas d'obtention d'une réponse complète
    oncologique (ou d'une bonne réponse), il sera possible d'espacer l'acide zolédronique à un rythme trimestriel").
    Before the record dated ahead: start recommended, zoledronic acid 4 mg monthly drafted (current data). After a
    "good" response dated ahead: A keeps the course under way (every 3 months); B restarts it monthly. The start is
    published "Suspendu, à vérifier [...] avant toute prescription" (no order: `suspended`, "no order while a record
    says otherwise"), and the `antiresorptive` item drafts the monthly zoledronic acid order beside it (to_verify,
    R29B's branch): the plan both suspends the start's prescription and drafts it. Expected: not both (either the
    start is not published suspended, or no anti-resorptive order is drafted beside the suspended start)."""
    s, now = _restart_with_a_good_response_ahead()
    m.clear()
    a = {x.key: x for x in plan_once(s, r.AsOf(now=now, memo=False))}
    assert a[START].status == "done" and a["antiresorptive"].orders[0].interval == "P3M"  # A: the course under way
    suspended, drafted = _suspended_and_drafted(_cold(s, now))
    assert not (suspended and drafted), f"start suspended 'avant toute prescription' beside the order {drafted}"


def test_review_r31merge2_no_antiresorptive_order_beside_the_start_suspended_random_history() -> None:
    """The same defect on a history of the random generator below (DT-SYS's, R31-MERGE's extras, records dated
    ahead): not a constructed case. Expected: no zoledronic acid or denosumab order beside the start published
    "Suspendu [...] avant toute prescription" (SYS-AR-START L1068-1074)."""
    rnd = random.Random(184)
    past = _extras(184, dt_past(rnd))
    plan = _cold(_state([*past, *_ahead_more(rnd, past)]), DT_NOW)
    suspended, drafted = _suspended_and_drafted(plan)
    assert not (suspended and drafted), f"start suspended beside the order {drafted}"


def test_review_r31merge2_course_under_way_table_matches_the_planner() -> None:
    """`_course_under_way` against the planner itself (not the table's own texts): over DT-SYS's random histories with
    R31-MERGE's extras (drug courses, denosumab, past zoledronic acid), A, B and C each: SYS-AR-START is "done" exactly
    when an anti-resorptive course is under way (`drug_history().antiresorptives()`, L1263-1265); SYS-REVIEW-2Y
    (L1275-1277) and the prerequisites "Suivi sous anti-résorptif" only then. Every outcome of SYS-AR-START but "done"
    (start, undecided, held, not indicated, no trigger, stopped after the review) is taken on none."""
    seen: Counter[tuple[str, bool]] = Counter()
    try:
        for seed in range(SEEDS):
            rnd = random.Random(seed)
            past = _extras(seed, dt_past(rnd))
            s = _state([*past, *dt_ahead(rnd, past)])
            at = r.AsOf(now=DT_NOW, memo=False)
            made = as_of.views(s, at)
            for state in [s] if made is None else [s, made.current, made.redated]:
                m.clear()
                at = r.AsOf(now=DT_NOW, memo=False)
                on_ar = bool(drug_history(state, at).antiresorptives())
                by = {x.key: x for x in plan_once(state, r.AsOf(now=DT_NOW, memo=False))}
                if START not in by:
                    continue
                seen[(by[START].status, on_ar)] += 1
                assert as_of_merge._course_under_way(by[START]) is on_ar, seed
                if "review-2-years" in by:
                    assert on_ar and as_of_merge._course_under_way(by["review-2-years"]) is True, seed
                pre = by.get("prerequisites")
                if pre is not None and "sous anti-résorptif" in pre.title:
                    assert on_ar, seed
    finally:
        m.clear()
    assert {("done", True), ("recommended", False)} <= set(seen)  # both sides exercised


def _ahead_more(rnd: random.Random, past: list[Message]) -> list[Message]:
    """DT-SYS's records dated ahead, and at random a new lesion first seen ahead or a response dated ahead."""
    out = dt_ahead(rnd, past)
    for _ in range(rnd.randint(0, 2)):
        at = DT_NOW + timedelta(minutes=rnd.randint(20, 60 * 24 * 3))
        if rnd.random() < 0.5:
            body = {
                "lesion_id": f"N{rnd.randint(0, 1)}",
                "skeletal_site": "femur_shaft",
                "modality": rnd.choice(MODALITIES),
                "status": rnd.choice(["confirmed", "resolved", "suspected"]),
            }
            out.append(ImagingFinding.model_validate({**dt_env(rnd, at, DT_NOW), **body}))
        else:
            body2 = {"oncological_response": rnd.choice(RESPONSES)}
            out.append(ClinicalAssessment.model_validate({**dt_env(rnd, at, DT_NOW), **body2}))
    return out


def test_review_r31merge2_random_merges_keep_alerts_orders_severities_and_mark_contradictions() -> None:
    """Over random histories with records dated ahead (R31-MERGE's extras, new lesions and responses ahead), on
    `merged` itself: B's alert (current data, notified) where B and C disagree is published and stays an alert (never
    withdrawn "ne s'applique plus" on a record not yet current); every order published is the one current data draft
    for that key; A's non-alert item is never replaced by a less severe one; no two published items contradicting each
    other (`contradicts`, and the prerequisites "Suivi sous anti-résorptif" as a course under way) are both unmarked;
    `merged` is deterministic (same inputs, same plan) and is `build_plan`'s plan."""
    hits: Counter[str] = Counter()
    try:
        for seed in range(SEEDS):
            rnd = random.Random(seed)
            past = _extras(seed, dt_past(rnd))
            s = _state([*past, *_ahead_more(rnd, past)])
            at = r.AsOf(now=DT_NOW, memo=False)
            made = as_of.views(s, at) if as_of.involves_future(s, at) else None
            if made is None:
                continue
            m.clear()
            a, b, c = (plan_once(x, r.AsOf(now=DT_NOW, memo=False)) for x in (s, made.current, made.redated))
            out = as_of_merge.merged(a, b, c, made.future)
            assert [x.model_dump_json() for x in as_of_merge.merged(a, b, c, made.future)] == [
                x.model_dump_json() for x in out
            ], seed
            m.clear()
            assert [x.model_dump_json() for x in build_plan(s, r.AsOf(now=DT_NOW, memo=False))] == [
                x.model_dump_json() for x in out
            ], seed
            by_a, by_b, by_c = ({x.key: x for x in v} for v in (a, b, c))
            got = {x.key: x for x in out}
            for key, x_b in by_b.items():
                if _notify(x_b) and as_of_merge._decision(x_b) != as_of_merge._decision(by_c.get(key)):
                    hits["alert"] += 1
                    assert key in got and _notify(got[key]), (seed, key)
            for key, x in got.items():
                if x.orders:
                    assert key in by_b and by_b[key].orders == x.orders, (seed, key)
                x_a = by_a.get(key)
                if x_a is not None and not _notify(x_a):
                    assert SEVERITY[x.severity] >= SEVERITY[x_a.severity] or x is x_a, (seed, key)
            said = []
            for x in out:
                under = as_of_merge._course_under_way(x)
                if x.key == "prerequisites":
                    under = "sous anti-résorptif" in x.title
                if under is not None:
                    said.append((x, under))
            for x, under in said:
                for y, other in said:
                    if under and not other:
                        hits["pair"] += 1
                        assert _marked(x) or _marked(y), (seed, x.key, y.key)
    finally:
        m.clear()
    assert hits["alert"] >= 5 and hits["pair"] >= 1, hits  # the properties are exercised


def test_review_r31merge2_the_plan_does_not_flip_between_two_ticks() -> None:
    """R29-SYS's patient with the "good" response dated ahead (the raised start, B's order): decided at `now`, then at
    the instant before the next deadline (`next_due`, no event between): the same items (no flip between ticks); at
    the record's date (it is current) the start is A's "Anti-résorptif en cours" and nothing is marked."""
    s, now = _restart_with_a_good_response_ahead()
    at = r.AsOf(now=now, memo=False)
    m.clear()
    first = [x.model_dump_json() for x in build_plan(s, at)]
    due = at.next_due()
    assert due is not None and due > now
    before = due - timedelta(microseconds=1)
    m.clear()
    assert [x.model_dump_json() for x in build_plan(s, r.AsOf(now=before, memo=False))] == first
    named = [i.occurred_at for x in _cold(s, now).values() for i in x.inputs if i.name == "future_dated_record"]
    current = max(t for t in named if t is not None)
    after = current + r.Recency().future_tolerance
    plan = _cold(s, after)
    assert plan[START].status == "done"
    assert not [x.key for x in plan.values() if _marked(x)]
