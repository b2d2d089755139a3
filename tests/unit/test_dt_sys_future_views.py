"""Helper DT-SYS, HAZ-27-FUTURE-HIDES in the systemic planner: "decide twice" (services/systemic_planner/as_of.py).

A lesion's newest stated status and sightings (IMG-ISOLATED, L489-491, read by SYS-AR-START, L1070-1074) and the
oncological response (SYS-SCHEDULE, L1138-1140, L1279-1281) are folded newest whatever their date. Where one is dated
in the future, the plan is decided on A (the facts as they are), B (the future-dated ones left out) and C (re-dated
to now + tolerance): per item, B where B and C agree, else A, except B's critical item A lacks (marked "à vérifier")."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from services.systemic_planner import as_of
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, build_plan, plan_once
from tests.unit.test_issue25_systemic_history import STATE_BOUND
from tests.unit.test_systemic_rules import NOW, T0, env, items, lab, le, met, oligo, ready, run

TOL = r.Recency().future_tolerance


def _ahead(e: Any, dt: timedelta, **update: Any) -> Any:
    """`e` dated `NOW + dt`, recorded at NOW (a producer's clock ahead), with `update`."""
    return e.model_copy(update={"occurred_at": NOW + dt, "recorded_at": NOW, **update})


def _json(s: SystemicState, at: r.AsOf) -> list[str]:
    return [x.model_dump_json() for x in build_plan(s, at)]


def test_dt_sys_no_future_fact_is_decision_a_byte_for_byte() -> None:
    s, _ = run([met(0), le(1, 12.0), lab(2, "creatinine_clearance", 75.0, "mL/min"), *ready()])
    assert not as_of.involves_future(s, r.AsOf(now=NOW))
    a, b = r.AsOf(now=NOW, memo=False), r.AsOf(now=NOW, memo=False)
    assert _json(s, a) == [x.model_dump_json() for x in plan_once(s, b)] and a.next_due() == b.next_due()


def test_dt_sys_a_metastasis_confirmed_again_tomorrow_changes_nothing_today() -> None:
    """B and C agree on every item: B's plan, the one without the record dated tomorrow (its inputs too)."""
    history = [met(0), le(1, 12.0), lab(2, "creatinine_clearance", 75.0, "mL/min"), *ready()]
    without, _ = run(history)
    again = _ahead(met(0), timedelta(days=1), event_id=uuid.uuid4(), status="confirmed")
    s, _ = run([again], without)
    assert as_of.involves_future(s, r.AsOf(now=NOW))
    assert _json(s, r.AsOf(now=NOW)) == _json(without, r.AsOf(now=NOW))
    assert items(s)["antiresorptive-start"].status == "recommended"


def test_dt_sys_a_resolution_dated_tomorrow_suspends_the_start_and_ticks_when_it_becomes_current() -> None:
    """R27B's case is a contradiction (confirmed on CT today, resolved tomorrow): B (start) and C (no item) disagree;
    A has no start (the resolution applied at once): the start is suspended (a warning, no order, to verify), the
    rest is A's plan; a tick comes when it becomes current."""
    resolved = _ahead(met(0), timedelta(days=1), event_id=uuid.uuid4(), status="resolved")
    base, _ = run([met(0), le(1, 12.0), *ready()])
    s, _ = run([resolved], base)
    at = r.AsOf(now=NOW)
    got = {x.key: x for x in build_plan(s, at)}
    a = {x.key: x for x in plan_once(s, r.AsOf(now=NOW))}
    assert "antiresorptive-start" not in a
    start = got.pop("antiresorptive-start")
    assert (start.status, start.severity, start.orders) == ("cannot_decide", "warning", [])
    assert resolved.event_id in {i.source_event_id for i in start.inputs}
    # the other recommendations that come with the start (vitamin D maintenance) are suspended likewise; B's items
    # that draft no order (the prerequisites, the pathway) are kept as current data give them, naming the record
    # dated ahead (session 31, reviews R30-SYS and R30-MERGE: never a silent withdrawal, never made undecided)
    views = as_of.views(s, r.AsOf(now=NOW))
    assert views is not None
    b = {x.key: x for x in plan_once(views.current, r.AsOf(now=NOW, memo=False))}
    only_b = {k: x for k, x in got.items() if k not in a}
    assert set(only_b) == set(b) - set(a) - {"antiresorptive-start"}
    for k, x in only_b.items():
        assert resolved.event_id in {i.source_event_id for i in x.inputs} and "daté dans le futur" in x.text_fr
        if b[k].status == "recommended" or b[k].orders:
            assert (x.status, x.severity, x.orders) == ("cannot_decide", "warning", [])
        else:
            assert (x.status, x.severity, x.orders) == (b[k].status, b[k].severity, b[k].orders)
            assert x.text_fr.startswith(b[k].text_fr)
    assert {"vitamin-d", "prerequisites"} <= set(only_b) and only_b["vitamin-d"].status == "cannot_decide"
    assert {k: x for k, x in got.items() if k in a} == a
    becomes = resolved.occurred_at - TOL
    due = at.next_due()
    assert due is not None and NOW < due <= becomes
    assert s.next_due is not None and s.next_due <= becomes


def test_dt_sys_a_critical_item_only_current_data_give_is_published_to_verify() -> None:
    """Vitamin D at 160 ng/mL (Tableau 1, L829-831: possible intoxication, critical) is said only when the start is
    considered; a resolution dated tomorrow removes it from A. B (current data) gives it: published, "à vérifier",
    the record dated in the future shown as an input."""
    resolved = _ahead(met(0), timedelta(days=1), event_id=uuid.uuid4(), status="resolved")
    history = [met(0), le(1, 12.0), lab(2, "vitamin_d_25oh", 160.0, "ng/mL"), *ready()[1:]]
    base, _ = run(history)
    assert items(base)["vitamin-d"].severity == "critical"
    s, _ = run([resolved], base)
    assert "vitamin-d" not in {x.key for x in plan_once(s, r.AsOf(now=NOW))}  # A
    got = items(s)
    vit_d = got["vitamin-d"]
    assert vit_d.severity == "critical" and "À vérifier" in vit_d.text_fr and "03/11/2026" in vit_d.text_fr
    shown = [i for i in vit_d.inputs if i.name == "future_dated_record"]
    assert [(i.source_event_id, i.occurred_at, i.value) for i in shown] == [
        (resolved.event_id, resolved.occurred_at, "resolved")
    ]
    assert got["antiresorptive-start"].status == "cannot_decide"  # not an emergency: B's start A lacks, suspended


def _on_spaced_zoledronic_acid() -> list[Any]:
    """Multi-metastatic, good response, last zoledronic acid infusion on 16/11: under way 3 months (SYS-SCHEDULE)."""
    infusion = {"kind": "drug_administration", "drug": "zoledronic_acid", "on": "2026-11-16"}
    given = TreatmentEvent.model_validate({**env(60 * 24 * 15), "treatment": infusion})
    base = [met(0), lab(2, "creatinine_clearance", 75.0, "mL/min"), oligo(3, "multi_metastatic"), *ready(4)]
    return [*base, le(5, 12.0, oncological_response="good"), given]


LATER = T0 + timedelta(days=60)


def _response(k: int, value: str) -> ClinicalAssessment:
    return ClinicalAssessment.model_validate(
        {
            "event_id": uuid.uuid4(),
            "patient_id": "p1",
            "source": "t",
            "occurred_at": LATER + TOL + timedelta(hours=k + 1),
            "recorded_at": LATER,
            "oncological_response": value,
        }
    )


def test_dt_sys_good_responses_dated_ahead_do_not_end_a_spaced_course() -> None:
    """R28-SYS 2: the course stays under way (A and B both read a good response)."""
    s, _ = run(_on_spaced_zoledronic_acid(), now=LATER)
    assert items(s, LATER)["antiresorptive-start"].status == "done"
    s, _ = run([_response(k, "good") for k in range(12)], s, now=LATER)
    assert items(s, LATER)["antiresorptive-start"].status == "done"


def test_dt_sys_a_response_contradicted_ahead_keeps_decision_a() -> None:
    """A stable response dated ahead: B (spaced, under way) and C (monthly, course ended) disagree: A's items; where
    A reads the response dated ahead as holding now (A decides as C), its item says so, to verify (review R29-SYS)."""
    s, _ = run([*_on_spaced_zoledronic_acid(), _response(0, "stable")], now=LATER)
    got = build_plan(s, r.AsOf(now=LATER))
    a = plan_once(s, r.AsOf(now=LATER))
    assert [x.key for x in got] == [x.key for x in a]
    for x, y in zip(got, a, strict=True):
        if x != y:  # marked: A's item, the note appended, the record dated ahead shown
            assert x.status == y.status and x.text_fr.startswith(y.text_fr) and "daté dans le futur" in x.text_fr
            assert [i for i in x.inputs if i.name != "future_dated_record"] == y.inputs


def test_dt_sys_the_state_is_unchanged_and_sixteen_lesions_stay_under_the_bound() -> None:
    """R28-SYS 3: no field is added (views are computed at decision time)."""
    assert "statuses" not in SystemicState.model_fields and "responses" not in SystemicState.model_fields
    s = SystemicState()
    for e in [le(0, 24.0), *ready()]:
        s, _ = apply_event(s, e, r.AsOf(now=T0 + timedelta(hours=2)))
    for visit in range(12):
        at = T0 + timedelta(days=91 * visit + 1)
        for lesion in range(16):
            body = {"lesion_id": f"L{lesion}", "skeletal_site": "femur_shaft", "modality": "ct", "status": "confirmed"}
            when = {"event_id": uuid.uuid4(), "occurred_at": at, "recorded_at": at + timedelta(hours=1)}
            f = ImagingFinding.model_validate({**env(0), **when, **body})
            s, _ = apply_event(s, f, r.AsOf(now=at + timedelta(hours=1, minutes=5)))
    assert len(s.model_dump_json()) < STATE_BOUND


def test_dt_sys_an_amendment_dated_ahead_is_resolved_on_the_whole_record_set() -> None:
    """An amendment dated tomorrow of today's "suspected" statement (saying the same). B never brings back the version
    before today's statement (the CT alone: confirmed, a start); since session 30 (R29B's rule, as the radiotherapy
    planner's: a correction dated ahead of the CURRENT record it names is not yet in force) B reads today's statement
    as it is: "suspected", as C does. B and C agree: no start (IMG-ISOLATED: targeted imaging first), as A."""
    suspected = met(10).model_copy(update={"status": "suspected"})
    s, _ = run([met(0), le(1, 12.0), *ready(), suspected])
    fix = _ahead(suspected, timedelta(days=1), event_id=uuid.uuid4(), record_status="amended")
    s, _ = run([fix.model_copy(update={"corrects": suspected.event_id})], s)
    views = as_of.views(s, r.AsOf(now=NOW))
    assert views is not None
    status = views.current.lesions["a"].status
    assert status is not None and status.value == "suspected" and status.event_id == suspected.event_id
    assert "antiresorptive-start" not in {x.key for x in plan_once(views.current, r.AsOf(now=NOW, memo=False))}
    got = {x.key: x for x in build_plan(s, r.AsOf(now=NOW))}
    assert "antiresorptive-start" not in got
    assert got == {x.key: x for x in plan_once(s, r.AsOf(now=NOW))}


def test_dt_sys_warm_equals_cold_with_a_future_status() -> None:
    resolved = _ahead(met(0), timedelta(days=1), event_id=uuid.uuid4(), status="resolved")
    history = [met(0), le(1, 12.0), lab(2, "vitamin_d_25oh", 160.0, "ng/mL"), *ready()[1:], resolved]
    s, _ = run(history)
    m.clear()
    try:
        for k in range(4):
            now = NOW + timedelta(hours=6 * k)
            cold = r.AsOf(now=now, memo=False)
            plan = _json(s, cold)
            for _ in range(2):
                warm = r.AsOf(now=now)
                assert _json(s, warm) == plan and warm.next_due() == cold.next_due()
    finally:
        m.clear()
