"""Helper DT-RT (HAZ-27-FUTURE-HIDES, "decide twice", services/radiotherapy_planner/as_of.py): minimal cases.

RT-MSCC (L1397-1402: a cord compression is an emergency decided from current data only), SURG-LE (L2776-2834),
IR-CEMENT (L2590-2627). Each record dated ahead is recorded at NOW (a producer's clock ahead), decided at NOW."""

from __future__ import annotations

from datetime import timedelta

from contracts.base import Message
from contracts.hospital import ImagingFinding
from services.radiotherapy_planner import as_of, domain, memo
from services.radiotherapy_planner.facts import LocalState, lesions
from shared.clinical.dates import HOSPITAL_TZ
from tests.unit.test_issue18_local import NOW, plan_items, vertebra
from tests.unit.test_review_r28rt_future_left_out import AHEAD, CLEAR, DAY, _assessment, _cement, _items

SECOND = timedelta(seconds=1)


def _ahead(f: ImagingFinding) -> ImagingFinding:
    return f.model_copy(update={"recorded_at": NOW})


def _state(events: list[Message]) -> LocalState:
    memo.clear()
    s = LocalState()
    for e in events:
        s, _ = domain.apply_event(s, e, now=NOW)
    return s


def test_dt_rt_a_compression_imaged_only_ahead_is_not_an_emergency_today() -> None:
    """Only C (the future one holds now) gives the emergency: never published; A's "donnée non actuelle" stays."""
    events: list[Message] = [
        vertebra(at=NOW - DAY, cord_compression=False),
        _assessment(life_expectancy_months=24.0),
        _ahead(vertebra(at=AHEAD, cord_compression=True)),
    ]
    [mscc] = _items(events, "RT-MSCC")
    assert (mscc.status, mscc.severity) == ("to_do", "warning")
    assert "À vérifier" not in mscc.text_fr


def test_dt_rt_the_published_plan_is_the_one_served_and_rebuilt() -> None:
    """GET local-plan (current_plan) rebuilds the merged plan, not the single decision."""
    seen = vertebra(at=NOW - DAY, cord_compression=True)
    events: list[Message] = [seen, _ahead(vertebra(at=NOW + DAY, cord_compression=True))]
    memo.clear()
    s, out = LocalState(), list[Message]()
    for e in events:
        s, o = domain.apply_event(s, e, now=NOW)
        out += o
    published = [(i.key, i.status, i.severity, i.text_fr) for i in plan_items(out)]
    assert ("t8:mscc", "recommended", "critical") in [x[:3] for x in published]
    memo.clear()
    plan = domain.current_plan(LocalState.model_validate_json(s.model_dump_json()), "pt-18")
    assert plan is not None
    assert [(i.key, i.status, i.severity, i.text_fr) for sec in plan.sections for i in sec.items] == published


def test_dt_rt_the_current_compressions_window_is_a_tick_though_the_future_report_hides_it_from_a() -> None:
    """B's emergency (the compression seen 41 days ago, re-confirmed by a report dated in 2 days) is published; it
    leaves its window (COMPRESSION_CURRENT) before the report becomes current: next_due is then, not in 2 days."""
    seen = NOW - 41 * DAY
    s = _state([vertebra(at=seen, cord_compression=True), _ahead(vertebra(at=NOW + 2 * DAY, cord_compression=True))])
    assert s.next_due == seen + domain.COMPRESSION_CURRENT + SECOND
    single = domain._next_due(s, NOW, domain.COMPRESSION_CURRENT, lesions(s), HOSPITAL_TZ, None)
    assert single is not None and single > s.next_due  # the single decision's clock had no such tick
    after = [(i.severity, i.status) for sec in domain.build_plan(s, now=s.next_due) for i in sec.items]
    assert ("critical", "recommended") not in after  # stale now: no emergency from B any more


def test_dt_rt_the_moment_a_future_fact_becomes_current_is_a_tick() -> None:
    """A contraindication dated 3 h ahead (IR-CEMENT, cement allergy) over a current "no": the plan is decided
    again when it becomes current (its date - the tolerance, + 1 s), not later."""
    s = _state([*_cement(), _assessment(NOW + 3 * timedelta(hours=1), cement_allergy=True)])
    assert s.next_due is not None
    assert s.next_due <= NOW + 3 * timedelta(hours=1) - as_of.FUTURE_TOLERANCE + SECOND


def test_dt_rt_an_amendment_dated_ahead_is_not_yet_in_force_in_view_b() -> None:
    """Review R29B (the lead, 2026-12-06): an amendment dated ahead of a current record is not yet in force in view B
    (the record stands as it is until the amendment's date: never the older fact it superseded, never unknown); the
    merge keeps the plan cautious (review R28-RT: the cementoplasty never "recommended" over an allergy dated
    ahead)."""
    original = _assessment(**CLEAR)
    amended = _assessment(
        AHEAD, record_status="amended", corrects=str(original.event_id), **{**CLEAR, "cement_allergy": True}
    )
    s = _state([*_cement(original), amended])
    b, _ = as_of.view_b(s, lesions(s), NOW)
    assert b.assessed["cement_allergy"].event_id == original.event_id and b.assessed["cement_allergy"].value is False
    [cement] = _items([*_cement(original), amended], "IR-CEMENT")
    assert cement.status != "recommended"


def test_dt_rt_a_same_value_re_confirmed_ahead_publishes_the_current_decision_unmarked() -> None:
    """B and C agree (the estimate re-confirmed): B's item, decided from current data, with no mark (A: the estimate
    "missing", the one dated tomorrow not current)."""
    events: list[Message] = [
        vertebra(at=NOW - DAY, cord_compression=True),
        _assessment(NOW - 2 * DAY, life_expectancy_months=24.0, surgical_opinion=None),
        _assessment(NOW + DAY, life_expectancy_months=24.0),
    ]
    [mscc] = _items(events, "RT-MSCC")
    assert (mscc.status, mscc.severity) == ("recommended", "critical")
    assert "À vérifier" not in mscc.text_fr
    assert not [x for x in mscc.missing if "life expectancy" in x]
    assert {i.source_event_id for i in mscc.inputs} >= {events[1].event_id}
