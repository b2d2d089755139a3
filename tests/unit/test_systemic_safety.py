"""Issue 9, systemic planner: the dangerous outputs, each with its rule ID (pure timelines)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.clinical import Recommendation, SkeletalEvent
from contracts.clock import ClockTick
from contracts.plan import PlanItem
from services.systemic_planner.domain import SystemicState, apply_event, current_plan
from services.systemic_planner.fhir import medication_requests
from tests.unit.test_systemic_rules import (
    NOW,
    T0,
    as_of,
    dental,
    drug,
    env,
    items,
    lab,
    le,
    met,
    oligo,
    ready,
    run,
)

DAY = 24 * 60  # minutes


def calcium(minutes: int, value: float, recorded_minutes: int | None = None) -> Any:
    doc = lab(minutes, "corrected_calcium", value, "mmol/L")
    if recorded_minutes is not None:
        doc = doc.model_copy(update={"recorded_at": T0 + timedelta(minutes=recorded_minutes)})
    return doc


def sre(minutes: int, kind: str = "hypercalcaemia") -> SkeletalEvent:
    return SkeletalEvent.model_validate({**env(minutes), "kind": kind, "rule_id": "CLASS-SRE", "evidence": []})


def orders(plan: dict[str, PlanItem]) -> list[str]:
    return [o.drug for i in plan.values() for o in i.orders]


def fhir_codes(s: SystemicState) -> set[str]:
    plan = current_plan(s, "p1", at=as_of())
    assert plan is not None
    bundle: Any = medication_requests(plan)
    return {e.resource.medicationCodeableConcept.coding[0].code for e in bundle.entry or []}


BASE = [met(), le(1, 12), lab(2, "creatinine_clearance", 75.0, "mL/min"), oligo(3, "multi_metastatic")]


# ---- item 2: no vitamin D loading, no calcium, during a hypercalcaemia ----------------------------------------
@pytest.mark.parametrize("ca", [3.7, 3.504, 2.8])  # a crisis, unrounded; and a hypercalcaemia below the crisis
def test_sys_vitd_corr_no_loading_nor_calcium_advice_during_hypercalcaemia(ca: float) -> None:
    s, _ = run([*BASE, lab(4, "vitamin_d_25oh", 15.0, "ng/mL"), calcium(5, ca)])
    item = items(s)["vitamin-d"]
    assert item.orders == [] and item.status == "warning"
    assert "pas de recharge en vitamine D" in item.text_fr and "mg/j" not in item.text_fr
    assert "calcémie corrigée normale" in (item.what_would_change_fr or "")
    assert "cholecalciferol" not in orders(items(s))
    # a normal corrected calcium afterwards: the loading is proposed again, with the calcium intake
    s, _ = run([calcium(60, 2.40)], s)
    item = items(s)["vitamin-d"]
    assert [o.count for o in item.orders] == [8, None] and "1000-1500 mg/j" in item.text_fr


def test_sys_vitd_corr_hypercalcaemia_sre_without_a_calcium_holds_supplements() -> None:
    s, _ = run([*BASE, lab(4, "vitamin_d_25oh", 25.0, "ng/mL"), sre(5)])
    assert items(s)["vitamin-d"].orders == []
    # old and never followed by a normal calcium: still held, and the calcium is to be measured again
    later = NOW + timedelta(days=10)
    item = items(s, later)["vitamin-d"]
    assert item.orders == [] and item.missing == ["corrected calcium measured within 72 hours"]


def test_sys_deno_instructions_hold_calcium_during_hypercalcaemia() -> None:
    s, _ = run([*BASE, *ready(), drug(10, "denosumab", "started", "2026-10-01"), calcium(11, 3.6)])
    [deno] = items(s)["antiresorptive"].orders
    assert "supplémentation calcium" not in deno.instructions_fr and "suspendus" in deno.instructions_fr


# ---- item 4: no anti-resorptive order while a prerequisite is unmet, unless a current emergency --------------
def test_sys_ar_prereq_no_order_while_dental_assessment_to_do() -> None:
    s, _ = run([*BASE, lab(4, "vitamin_d_25oh", 35.0, "ng/mL")])
    ar = items(s)["antiresorptive"]
    assert ar.orders == [] and ar.rule_id == "SYS-AR-PREREQ" and ar.status == "to_do"
    assert "bilan bucco-dentaire" in ar.text_fr and "M05BA08" not in fhir_codes(s)
    s, _ = run([dental(5, action="assessment", orthopantomogram=True, on="2026-10-28")], s)
    assert items(s)["antiresorptive"].orders[0].drug == "zoledronic_acid" and "M05BA08" in fhir_codes(s)


def test_sys_ar_prereq_an_old_dental_assessment_is_to_redo() -> None:
    s, _ = run(
        [
            *BASE,
            lab(4, "vitamin_d_25oh", 35.0, "ng/mL"),
            dental(5, action="assessment", orthopantomogram=True, on="2026-03-01"),
        ]
    )
    checks = {c.name: c.status for c in items(s)["prerequisites"].checks}
    assert checks["dental_assessment"] == "to_do" and items(s)["antiresorptive"].orders == []


def test_sys_ar_prereq_no_order_until_3_weeks_after_extraction_and_dentist_agreement() -> None:
    s, _ = run([*BASE, *ready(), dental(60, action="extraction", on="2026-11-01")])
    assert items(s)["antiresorptive"].orders == []
    s, _ = run(
        [dental(61, action="assessment", orthopantomogram=True, cleared_for_antiresorptive=True, on="2026-11-15")], s
    )
    fresh = lab(21 * DAY, "creatinine_clearance", 75.0, "mL/min")  # renal function current on the day
    s, _ = run([fresh], s)
    day20 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # agreed, but less than 3 weeks
    assert items(s, day20)["antiresorptive"].orders == []
    day21 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert [o.drug for o in items(s, day21)["antiresorptive"].orders] == ["zoledronic_acid"]


def test_sys_ar_prereq_no_order_while_vitamin_d_deficiency_uncorrected() -> None:
    s, _ = run(
        [
            *BASE,
            lab(4, "vitamin_d_25oh", 15.0, "ng/mL"),
            dental(5, action="assessment", orthopantomogram=True, on="2026-10-28"),
        ]
    )
    ar = items(s)["antiresorptive"]
    assert ar.orders == [] and "vitamine D" in ar.text_fr
    s, _ = run([drug(6, "cholecalciferol", "started", "2026-11-01")], s)
    week7 = T0 + timedelta(weeks=7)
    s, _ = run([lab(7 * 7 * DAY, "creatinine_clearance", 75.0, "mL/min")], s, now=week7)
    assert items(s, week7)["antiresorptive"].orders == []  # loading under way
    week8 = T0 + timedelta(weeks=8, hours=1)
    assert [o.drug for o in items(s, week8)["antiresorptive"].orders] == ["zoledronic_acid"]


def test_sys_ar_prereq_current_crisis_waives_and_says_so_on_the_order() -> None:
    s, _ = run([*BASE, calcium(60, 3.8)])
    [za] = items(s)["antiresorptive"].orders
    assert za.waived_prerequisites == ["vitamin_d", "dental_assessment"]
    assert "levés" in za.instructions_fr and "SYS-AR-PREREQ" in za.rule_ids
    plan = current_plan(s, "p1", at=as_of())
    assert plan is not None
    bundle: Any = medication_requests(plan)
    [note] = [
        e.resource.note[0].text
        for e in bundle.entry
        if e.resource.medicationCodeableConcept.coding[0].code == "M05BA08"
    ]
    assert "levés" in note


# ---- item 6: a historical crisis is never an emergency ----------------------------------------------------------
def test_sys_ar_prereq_late_historical_crisis_waives_nothing() -> None:
    """A crisis value drawn at T0+1h arrives after a normal one drawn at T0+10h: its SRE still counts as an SRE
    (start whatever the survival) but it is history: nothing is waived, no order without the prerequisites."""
    normal = calcium(10 * 60, 2.40)
    late = calcium(60, 3.9, recorded_minutes=12 * 60)
    s, _ = run([*BASE, normal, late, sre(60)])
    plan = items(s)
    assert plan["antiresorptive-start"].status == "recommended"
    assert all(c.status != "waived" for c in plan["prerequisites"].checks)
    assert plan["antiresorptive"].orders == [] and plan["prerequisites"].status == "to_do"
    assert "Urgence" not in plan["prerequisites"].text_fr and "pas actuelle" in plan["prerequisites"].text_fr


def test_sys_ar_prereq_a_crisis_older_than_the_window_is_not_an_emergency() -> None:
    s, _ = run([*BASE, calcium(60, 3.9)])
    assert items(s)["antiresorptive"].orders[0].waived_prerequisites  # current: waived
    later = T0 + timedelta(hours=74)
    plan = items(s, later)
    assert plan["antiresorptive"].orders == [] and all(c.status != "waived" for c in plan["prerequisites"].checks)
    assert plan["vitamin-d"].orders == []  # still no normal calcium: supplements stay held


# ---- item 9: stale and future-dated inputs -------------------------------------------------------------------
def test_sys_za_dose_stale_creatinine_is_to_measure_again_not_dosed() -> None:
    s, _ = run([*BASE, *ready()])
    later = NOW + timedelta(days=31)
    plan = items(s, later)
    ar = plan["antiresorptive"]
    assert ar.orders == [] and ar.status == "cannot_decide" and "creatinine measured within 30 days" in ar.missing
    renal = {c.name: c for c in plan["prerequisites"].checks}["renal_function"]
    assert renal.status == "to_do" and "mesurer de nouveau" in renal.detail_fr


def test_sys_za_dose_stale_weight_is_to_measure_again() -> None:
    s, _ = run(
        [
            met(),
            le(1, 12),
            lab(2, "creatinine_clearance", 75.0, "mL/min", weighed_minutes=-40 * DAY),
            oligo(3, "multi_metastatic"),
            *ready(),
        ]
    )
    ar = items(s)["antiresorptive"]
    assert ar.orders == [] and ar.missing == ["weight measured within 30 days"]


def test_sys_za_dose_a_future_dated_clearance_is_not_current() -> None:
    future = lab(2, "creatinine_clearance", 20.0, "mL/min").model_copy(
        update={"occurred_at": datetime(2099, 1, 1, tzinfo=UTC), "result_id": "crcl-2099"}
    )
    s, _ = run([*BASE, *ready(), future])
    ar = items(s)["antiresorptive"]
    assert ar.orders[0].drug == "zoledronic_acid" and ar.inputs[0].value == 75.0  # the 2099 value hides nothing
    renal = {c.name: c for c in items(s)["prerequisites"].checks}["renal_function"]
    assert "daté dans le futur est ignoré" in renal.detail_fr
    s, _ = run([met(), le(1, 12), future, *ready()])
    assert items(s)["antiresorptive"].status == "cannot_decide"


def test_sys_vitd_corr_stale_vitamin_d_is_to_measure_again() -> None:
    s, _ = run([*BASE, lab(4, "vitamin_d_25oh", 15.0, "ng/mL")])
    later = NOW + timedelta(days=91)
    item = items(s, later)["vitamin-d"]
    assert item.orders == [] and item.missing == ["25-OH vitamin D measured within 90 days"]


# ---- item 10 (planner parts) -------------------------------------------------------------------------------------
def test_sys_review_2y_an_old_sre_does_not_restart_after_a_deliberate_stop() -> None:
    fracture = sre(-800 * DAY, "pathological_fracture")
    s, _ = run(
        [
            *BASE,
            fracture,
            drug(4, "zoledronic_acid", "started", "2024-08-01"),
            drug(5, "zoledronic_acid", "stopped", "2026-09-01"),
        ]
    )
    plan = items(s)
    assert plan["antiresorptive-start"].status == "not_indicated" and "antiresorptive" not in plan
    s, _ = run([sre(10, "pathological_fracture")], s)  # a new SRE after the stop reopens the question
    assert items(s)["antiresorptive-start"].status == "recommended"


def test_sys_review_2y_an_early_stop_is_resumed() -> None:
    s, _ = run(
        [
            *BASE,
            sre(0, "pathological_fracture"),
            drug(4, "zoledronic_acid", "started", "2026-01-10"),
            drug(5, "zoledronic_acid", "stopped", "2026-06-01"),
        ]
    )
    assert items(s)["antiresorptive-start"].status == "recommended"


def test_sys_review_2y_counts_from_the_first_antiresorptive() -> None:
    s, _ = run(
        [
            *BASE,
            drug(4, "zoledronic_acid", "started", "2024-12-01"),
            drug(5, "zoledronic_acid", "stopped", "2025-06-01"),
            drug(6, "denosumab", "started", "2025-06-01"),
        ]
    )
    review = items(s)["review-2-years"]
    assert "01/12/2026" in review.title and review.severity == "info"


def test_sys_za_dose_missing_never_names_weight_age_or_sex_it_does_not_know_are_missing() -> None:
    s, _ = run([met(), le(1, 12)])
    assert items(s)["antiresorptive"].missing == ["creatinine clearance"]
    s, _ = run([lab(2, "creatinine_clearance", None, "mL/min", ["sex"])], s)
    assert items(s)["antiresorptive"].missing == ["creatinine clearance", "sex"]


# ---- item 11 (planner parts): jaw and CTX ------------------------------------------------------------------------
def test_sys_onj_exposed_bone_8_weeks_or_less_is_flagged_for_a_dental_opinion() -> None:
    s, _ = run(
        [
            *BASE,
            *ready(),
            drug(4, "zoledronic_acid", "started", "2026-01-01"),
            dental(60, action="jaw_bone_exposure", exposure_weeks=3, on="2026-11-01"),
        ]
    )
    onj = items(s)["osteonecrosis-jaw"]
    assert onj.status == "warning" and "avis dentaire" in onj.title and "pas encore une ostéonécrose" in onj.text_fr
    assert "06/12/2026" in onj.text_fr  # re-assess when 8 weeks would be reached (5 more weeks)


def test_sys_onj_confirmed_osteonecrosis_stops_the_order_and_refers() -> None:
    s, _ = run([*BASE, *ready(), drug(4, "zoledronic_acid", "started", "2026-01-01")])
    assert items(s)["antiresorptive"].orders
    s, _ = run(
        [dental(60, action="jaw_bone_exposure", exposure_weeks=10, craniofacial_irradiation=False, on="2026-11-01")], s
    )
    plan = items(s)
    assert plan["antiresorptive"].orders == [] and plan["antiresorptive"].rule_id == "SYS-ONJ"
    assert plan["osteonecrosis-jaw"].severity == "critical" and "centre spécialisé" in plan["osteonecrosis-jaw"].text_fr
    assert "M05BA08" not in fhir_codes(s)


def ctx(minutes: int, value: float | None, interpretable: bool = True) -> Any:
    return lab(
        minutes,
        "ctx_serum",
        value,
        "pg/mL",
        interpretation="interpretable" if interpretable else "not_interpretable",
        notes=[] if interpretable else ["prélevé après 9 h"],
    )


def test_sys_review_2y_uses_ctx_and_names_it_when_missing_or_not_interpretable() -> None:
    on_za = [*BASE, *ready(), drug(4, "zoledronic_acid", "started", "2024-10-01")]
    s, _ = run(on_za)
    review = items(s)["review-2-years"]
    assert review.severity == "warning" and "Aucun CTX" in review.text_fr
    assert review.missing == ["serum CTX (fasting, before 09:00)"]
    s, _ = run([ctx(100, 450.0, interpretable=False)], s)
    assert "non interprétable" in items(s)["review-2-years"].text_fr and items(s)["review-2-years"].missing
    s, _ = run([ctx(-60 * DAY, 300.0), ctx(200, 520.0)], s)
    review = items(s)["review-2-years"]
    assert "en hausse" in review.text_fr and review.missing == []


def test_sys_deno_stop_states_ctx_after_the_stop() -> None:
    s, _ = run([*BASE, drug(4, "denosumab", "started", "2025-01-10"), drug(5, "denosumab", "stopped", "2026-10-30")])
    item = items(s)["denosumab-stop"]
    assert item.missing == ["serum CTX (fasting, before 09:00) after 2026-10-30"] and "Aucun CTX" in item.text_fr
    s, _ = run([ctx(60, 410.0)], s)
    assert items(s)["denosumab-stop"].missing == [] and "410 pg/mL" in items(s)["denosumab-stop"].text_fr


# ---- clock: a deadline changes the plan with no new event --------------------------------------------------------
def test_sys_review_2y_next_due_is_set_and_a_clock_tick_fires_the_review() -> None:
    s, _ = run([*BASE, *ready(), drug(4, "zoledronic_acid", "started", "2024-11-05")])
    review = items(s)["review-2-years"]
    assert review.severity == "info"
    due = as_of().start_of(datetime(2026, 11, 5).date())
    assert s.next_due is not None and s.next_due <= due  # the earliest deadline (the review or sooner)
    at = due + timedelta(seconds=1)
    tick = ClockTick(
        event_id=uuid.uuid4(),
        patient_id="p1",
        occurred_at=due,
        recorded_at=at,
        source="systemic-planner",
        service="systemic-planner",
        due_at=due,
    )
    s2, out = apply_event(s, tick, as_of(at))
    recs = [o for o in out if isinstance(o, Recommendation) and o.rule_id == "SYS-REVIEW-2Y" and o.status == "active"]
    assert recs and recs[0].severity == "warning" and s2.plan_version == s.plan_version + 1
    assert s2.next_due is not None and s2.next_due > at


@pytest.mark.parametrize(
    ("current", "until_hours", "emergency"),
    [(False, None, False), (True, 12, True), (True, -1, False), (None, None, True)],
)
def test_sys_ar_prereq_hypercalcaemia_sre_currency_from_scoring(
    current: bool | None, until_hours: int | None, emergency: bool
) -> None:
    """Without a calcium result here, the SRE's own currency (scoring: `current`, `current_until`) decides the
    emergency; unassessed, its date within the calcium window does. Supplements stay held in every case."""
    until = None if until_hours is None else NOW + timedelta(hours=until_hours)
    event = sre(60).model_copy(update={"current": current, "evidence_at": T0, "current_until": until})
    s, _ = run([*BASE, event])
    plan = items(s)
    assert bool(plan["antiresorptive"].orders) is emergency
    assert any(c.status == "waived" for c in plan["prerequisites"].checks) is emergency
    assert plan["vitamin-d"].orders == []
