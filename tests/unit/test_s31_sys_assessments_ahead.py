"""HAZ-27-FUTURE-HIDES, systemic planner (session 31, `as_of.involves_future`, `as_of._fixes_ahead`): corrections of a
clinical assessment dated ahead (a producer's clock ahead).

SYS-AR-START (RULES.md; guideline L1068-1074): an anti-resorptive at the discovery of a bone metastasis when life
expectancy is > 3 months. Today's estimate says 12 months, one 10 days old said 2 months. A correction of today's
estimate dated tomorrow is not yet in force: the planner decides twice, never publishes what differs silently, ticks
at the correction's date, and applies it from then on."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

from contracts.hospital import ClinicalAssessment, ImagingFinding
from services.systemic_planner import as_of
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import build_plan
from services.systemic_planner.state import SystemicState
from tests.unit import test_dt_sys_differential as dt
from tests.unit.test_review_r29sys_future_silent import _ahead
from tests.unit.test_systemic_rules import NOW, lab, le, met, ready, run

DAY = timedelta(days=1)


def _history() -> tuple[SystemicState, ClinicalAssessment]:
    today = le(1, 12.0)
    base, _ = run([met(0), le(-60 * 24 * 10, 2.0), today, lab(2, "creatinine_clearance", 75.0, "mL/min"), *ready()])
    return base, today


def _start(s: SystemicState, hours: float = 0) -> tuple[Any, Any]:
    m.clear()
    at = r.AsOf(now=NOW + timedelta(hours=hours), memo=False)
    return {x.key: x for x in build_plan(s, at)}["antiresorptive-start"], at.next_due()


def test_an_amendment_naming_none_dated_ahead_saying_the_same_is_not_withdrawn_silently() -> None:
    """Every reading says 12 months (today's estimate, its amendment dated ahead), but the fold replaced today's
    estimate by the amendment, which `life_expectancy` leaves out until its date (the older 2 months then hold): the
    start is recommended, or A's "not indicated" names the amendment, to verify (the residual: not re-dated in C)."""
    base, today = _history()
    assert _start(base)[0].status == "recommended"
    am = _ahead(today, DAY, record_status="amended")  # corrects: None (the patient's latest assessment)
    s, _ = run([am], base)
    assert as_of.involves_future(s, r.AsOf(now=NOW))
    start, _ = _start(s)
    if start.status != "recommended":
        assert am.event_id in {i.source_event_id for i in start.inputs} and "vérifier" in start.text_fr, start


def test_an_amendment_naming_none_dated_ahead_saying_otherwise_is_marked() -> None:
    """The amendment dated ahead says 2 months: today's plan never withdraws the start silently (named, to verify)."""
    base, today = _history()
    am = _ahead(today, DAY, record_status="amended", life_expectancy_months=2.0)
    s, _ = run([am], base)
    start, _ = _start(s)
    if start.status != "recommended":
        assert am.event_id in {i.source_event_id for i in start.inputs} and "vérifier" in start.text_fr, start


def test_an_entry_in_error_dated_ahead_ticks_at_its_date_and_applies_from_then() -> None:
    """The plan ticks no later than the entry in error becomes current; from then it is in force (the older estimate
    of 2 months: SYS-AR-START not indicated), said without "à vérifier" (no record dated ahead any more)."""
    base, today = _history()
    eie = _ahead(today, DAY, record_status="entered-in-error", corrects=today.event_id)
    s, _ = run([eie], base)
    now_start, due = _start(s)
    assert eie.event_id in {i.source_event_id for i in now_start.inputs} and "vérifier" in now_start.text_fr
    edge = eie.occurred_at - r.Recency().future_tolerance
    assert due is not None and due <= edge + timedelta(seconds=1), (due, edge)
    later = edge + timedelta(minutes=1) - NOW
    assert not as_of.involves_future(s, r.AsOf(now=NOW + later))
    then, _ = _start(s, later / timedelta(hours=1))
    assert then.status == "not_indicated" and "vérifier" not in then.text_fr, then


def test_a_final_estimate_dated_ahead_alone_is_decision_a() -> None:
    """A final estimate dated ahead is left out by `life_expectancy` itself: no second decision (cost unchanged)."""
    base, today = _history()
    s, _ = run([_ahead(today, DAY, life_expectancy_months=2.0)], base)
    assert not as_of.involves_future(s, r.AsOf(now=NOW))
    assert _start(s)[0].status == "recommended"


def _corrections_ahead(rnd: random.Random, past: list[Any]) -> list[Any]:
    """One to three corrections dated ahead (recorded at now): of an assessment (entry in error, or an amendment
    naming it or none, another estimate or response) or of a finding (an amendment naming none, its lesion's latest)."""
    assessed = [e for e in past if isinstance(e, ClinicalAssessment)]
    found = [e for e in past if isinstance(e, ImagingFinding)]
    out: list[Any] = []
    for _ in range(rnd.randint(1, 3)):
        at = dt.NOW + timedelta(minutes=rnd.randint(20, 60 * 24 * 3))
        update: dict[str, Any] = {**dt._env(rnd, at, dt.NOW)}
        if assessed and (not found or rnd.random() < 0.7):
            base: Any = rnd.choice(assessed)
            kind = rnd.choice(["entered-in-error", "amended", "amended"])
            named = base.event_id if kind == "entered-in-error" or rnd.random() < 0.5 else None
            update |= {"record_status": kind, "corrects": named}
            if rnd.random() < 0.5:
                update["life_expectancy_months"] = rnd.choice([2.0, 12.0, 24.0])
            if rnd.random() < 0.5:
                update["oncological_response"] = rnd.choice(dt.RESPONSES)
        else:
            base = rnd.choice(found)
            update |= {"record_status": "amended", "corrects": None, "status": rnd.choice(dt.STATUSES)}
        out.append(base.model_copy(update=update))
    return out


def test_corrections_dated_ahead_over_random_histories_follow_the_merge_rule() -> None:
    """DT-SYS's differential check (every item A's, B's where B and C agree, or marked / suspended / kept as the
    merge rule says; ticks; warm = cold) on histories with corrections dated ahead that session 31 brings in view."""
    counts: Counter[str] = Counter()
    viewed = 0
    m.clear()
    try:
        for seed in range(120):
            rnd = random.Random(10_000 + seed)
            past = dt._past(rnd)
            s = dt._run([*past, *_corrections_ahead(rnd, past)], dt.NOW)
            viewed += as_of.involves_future(s, r.AsOf(now=dt.NOW))
            dt._check(s, counts)
            dt._warm_equals_cold(s)
    finally:
        m.clear()
    print(f"\nS31 corrections ahead: {viewed} of 120 decided twice; units: {counts}")
    assert viewed >= 100, (viewed, counts)
