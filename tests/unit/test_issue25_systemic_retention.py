"""Issue 25, systemic planner: the retention policy (services/systemic_planner/retention.py) never changes a decision.

For generated histories of the planner's inputs over years (labs, imaging findings, assessments, SREs, scores, drug
starts and stops, administrations, dental events, care events, clock ticks; out of clinical order, with
corrections, withdrawals and duplicates within the stated horizon), every event's outputs, `next_due` and the plan
the API serves are the same with retention as with the whole history kept (`keep_all`)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import Message
from contracts.clinical import NormalisedLab
from contracts.hospital import ClinicalAssessment, TreatmentEvent
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, current_plan
from services.systemic_planner.retention import RECORDS_KEPT, RESULTS_KEPT, retain
from tests.unit.histories import PROFILES, T0, World, _dump, _prologue, steps, systemic_history
from tests.unit.test_issue25_systemic_history import history, now_for


def _run(
    program: list[tuple[int, int, int, int, int]], profile: tuple[int, ...]
) -> tuple[SystemicState, SystemicState]:
    """The history through the planner with retention and without (`keep_all`): the same outputs, deadline and
    plan (the whole plan as the API serves it, inputs and provenance included) after every event."""
    kept, full = SystemicState(), SystemicState()
    for e, now, _ in systemic_history(program, profile):
        kept, out_kept = apply_event(kept, e, r.AsOf(now=now))
        full, out_full = apply_event(full, e, r.AsOf(now=now), keep_all=True)
        assert _dump(out_kept) == _dump(out_full), e
        assert kept.next_due == full.next_due
        assert retain(kept) == kept  # the state stored is the retained one (idempotent)
        plan_kept = current_plan(kept, "p1", at=r.AsOf(now=now))
        plan_full = current_plan(full, "p1", at=r.AsOf(now=now))
        assert (plan_kept and plan_kept.model_dump(mode="json")) == (plan_full and plan_full.model_dump(mode="json"))
    return kept, full


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=steps, profile=st.sampled_from(PROFILES))
def test_retention_never_changes_an_output(
    program: list[tuple[int, int, int, int, int]], profile: tuple[int, ...]
) -> None:
    _run(program, profile)


def test_the_generated_histories_outgrow_what_is_kept() -> None:
    """The generator reaches every part of the policy: results, findings, assessments, treatments and care events
    are dropped (and folded) in histories it makes, with the same outputs."""
    dropped: set[str] = set()
    for seed in range(6):
        rnd = random.Random(seed)
        for profile in PROFILES:
            program = [tuple(rnd.randint(0, hi) for hi in (12, 30, 30, 200, 100)) for _ in range(110)]
            kept, full = _run(program, profile)  # type: ignore[arg-type]
            for part in (
                "creatinine_clearance",
                "vitamin_d",
                "corrected_calcium",
                "ctx",
                "findings",
                "assessments",
                "treatments",
                "care",
            ):
                if len(getattr(kept, part)) < len(getattr(full, part)):
                    dropped.add(part)
            if kept.finding_base:
                dropped.add("finding_base")
            if kept.assessment_base is not None:
                dropped.add("assessment_base")
            if kept.drug_replays:
                dropped.add("drug_replays")
    assert dropped == {
        "creatinine_clearance",
        "vitamin_d",
        "corrected_calcium",
        "ctx",
        "findings",
        "assessments",
        "treatments",
        "care",
        "finding_base",
        "assessment_base",
        "drug_replays",
    }


def test_five_years_of_history_same_outputs_and_smaller_state() -> None:
    """The realistic history (test_issue25_systemic_history.py): the same outputs event by event, and a rebuild
    (the same events again, from nothing) gives the same state."""
    events = history(seed=3, years=5.0)
    kept, full = SystemicState(), SystemicState()
    for e in events:
        at = r.AsOf(now=now_for(e))
        kept, out_kept = apply_event(kept, e, at)
        full, out_full = apply_event(full, e, r.AsOf(now=now_for(e)), keep_all=True)
        assert _dump(out_kept) == _dump(out_full)
    assert len(kept.model_dump_json()) < len(full.model_dump_json()) / 2
    # a rebuild, later (another `now` for every decision): the same facts kept, whatever the wall clock
    rebuilt = SystemicState()
    for e in events:
        rebuilt, _ = apply_event(rebuilt, e, r.AsOf(now=now_for(e) + timedelta(days=400)))
    decisions = {"published", "plan_version", "plan_digest", "plan_event", "next_due", "decided_at"}
    assert rebuilt.model_dump(exclude=decisions) == kept.model_dump(exclude=decisions)


def test_retain_is_deterministic_and_idempotent_on_the_state_alone() -> None:
    events = history(seed=4, years=3.0)
    s = SystemicState()
    for e in events:
        s, _ = apply_event(s, e, r.AsOf(now=now_for(e)), keep_all=True)
    once = retain(s)
    assert retain(once) == once
    assert retain(SystemicState.model_validate_json(s.model_dump_json())) == once  # from its JSON, as stored
    # what is kept: the newest results of each analyte, the newest records of each lesion and of the assessments
    assert len([v for v in once.corrected_calcium.values() if not v.withdrawn]) <= RESULTS_KEPT
    per_lesion: dict[str, int] = {}
    for f in once.findings.values():
        per_lesion[f.lesion_id] = per_lesion.get(f.lesion_id, 0) + 1
    assert per_lesion and max(per_lesion.values()) <= 2 * RECORDS_KEPT
    assert set(once.finding_base) <= set(once.lesions)
    assert not any(e.treatment.kind == "radiotherapy" for e in once.treatments.values())


def test_an_old_state_without_the_new_fields_still_loads_and_is_retained_on_its_next_event() -> None:
    events = history(seed=5, years=2.0)
    s = SystemicState()
    for e in events[:-1]:
        s, _ = apply_event(s, e, r.AsOf(now=now_for(e)), keep_all=True)
    stored = s.model_dump(mode="json")
    for new in ("newest_recorded_at", "finding_base", "assessment_base"):
        stored.pop(new)
    old = SystemicState.model_validate(stored)
    assert old.newest_recorded_at is None
    after, _ = apply_event(old, events[-1], r.AsOf(now=now_for(events[-1])))
    assert after.newest_recorded_at is not None and retain(after) == after
    assert len(after.model_dump_json()) < len(s.model_dump_json())


def test_the_initial_clearance_of_a_zoledronic_acid_course_outlives_the_newest_results() -> None:
    """SYS-ZA-DOSE (Tableau 2, L1153-1184): the dose follows the clearance before the first infusion, however many
    clearances came since; retention keeps it (and the dose is the same as with the whole history)."""
    w = World()
    events: list[Message] = _prologue(w)
    t = T0 + timedelta(hours=1)
    events.append(
        NormalisedLab.model_validate(
            {
                **w.env(t, source="lab-normalisation"),
                "analyte": "vitamin_d_25oh",
                "result_id": "vd",
                "value": 40.0,
                "unit": "ng/mL",
            }
        )
    )
    for week in range(40):  # 45 mL/min before the course (3.3 mg), 75 every week after it
        at = t + timedelta(weeks=week)
        doc = {
            **w.env(at, source="lab-normalisation"),
            "analyte": "creatinine_clearance",
            "result_id": f"crcl-{week}",
            "value": 45.0 if week == 0 else 75.0,
            "unit": "mL/min",
            "derived_from": [
                {"event_id": w.uid(), "analyte": "body_weight", "value": 70.0, "unit": "kg", "occurred_at": at}
            ],
        }
        events.append(NormalisedLab.model_validate(doc))
        if week == 0:
            za = {
                "kind": "systemic_drug",
                "drug": "zoledronic_acid",
                "action": "started",
                "on": (at + timedelta(days=2)).date(),
            }
            events.append(TreatmentEvent.model_validate({**w.env(at + timedelta(days=2)), "treatment": za}))
    kept, full = SystemicState(), SystemicState()
    for e in events:
        now = e.recorded_at + timedelta(minutes=5)
        kept, _ = apply_event(kept, e, r.AsOf(now=now))
        full, _ = apply_event(full, e, r.AsOf(now=now), keep_all=True)
    assert len(kept.creatinine_clearance) < len(full.creatinine_clearance) / 4
    assert "crcl-0" in {k for k in kept.creatinine_clearance}
    as_of = r.AsOf(now=events[-1].recorded_at + timedelta(minutes=5))
    plan_kept = current_plan(kept, "p1", at=as_of)
    plan_full = current_plan(full, "p1", at=as_of)
    assert plan_kept is not None and plan_full is not None
    assert plan_kept.model_dump(mode="json") == plan_full.model_dump(mode="json")
    ar = next(i for i in plan_kept.items if i.key == "antiresorptive")
    assert "Acide zolédronique 3.3 mg" in ar.title  # the initial 45 mL/min, not the newest 75 (4 mg)
    assert any(x.name == "initial_creatinine_clearance" and x.value == 45.0 for x in ar.inputs)


def test_a_correction_folds_the_assessments_again_from_what_the_dropped_ones_said() -> None:
    """SYS-AR-START, SYS-SCHEDULE: the response and life expectancy an assessment no longer held stated still count
    when a correction makes the planner fold the assessments again (`assessment_base`)."""
    w = World()
    events: list[Message] = _prologue(w)
    first = ClinicalAssessment.model_validate(
        {**w.env(T0 + timedelta(days=1)), "life_expectancy_months": 24.0, "oncological_response": "good"}
    )
    events.append(first)
    later = [ClinicalAssessment.model_validate({**w.env(T0 + timedelta(days=10 * k)), "ecog": 1}) for k in range(2, 12)]
    events += later
    wrong = later[-1]
    events.append(
        ClinicalAssessment.model_validate(
            {**w.env(wrong.occurred_at), "record_status": "entered-in-error", "corrects": wrong.event_id}
        )
    )
    kept, full = SystemicState(), SystemicState()
    for e in events:
        now = e.recorded_at + timedelta(minutes=5)
        kept, out_kept = apply_event(kept, e, r.AsOf(now=now))
        full, out_full = apply_event(full, e, r.AsOf(now=now), keep_all=True)
        assert _dump(out_kept) == _dump(out_full)
    assert str(first.event_id) not in kept.assessments and kept.assessment_base is not None
    assert kept.response == full.response and kept.response is not None and kept.response.value == "good"
    assert kept.life_expectancies == full.life_expectancies


def test_years_of_monthly_anti_resorptive_doses_are_folded_into_the_drug_replay() -> None:
    """SYS-REVIEW-2Y, SYS-DENO-STOP: 5 years of denosumab every 4 weeks then a stop and a zoledronic acid relay, with
    a chemotherapy line and a vitamin D loading: the drug events older than the horizon are folded (the state holds a
    bounded number of them), and every output is the one of the whole history."""
    w = World()
    events: list[Message] = _prologue(w)

    def drug(on: date, name: str, action: str) -> TreatmentEvent:
        at = datetime(on.year, on.month, on.day, 9, tzinfo=UTC)
        body = {"kind": "systemic_drug", "drug": name, "action": action, "on": on}
        return TreatmentEvent.model_validate({**w.env(at), "treatment": body})

    def given(on: date, name: str) -> TreatmentEvent:
        at = datetime(on.year, on.month, on.day, 10, tzinfo=UTC)
        body = {"kind": "drug_administration", "drug": name, "on": on}
        return TreatmentEvent.model_validate({**w.env(at), "treatment": body})

    d0 = T0.date() + timedelta(days=3)
    events += [drug(d0, "carboplatin", "started"), drug(d0, "cholecalciferol", "started")]
    events += [drug(d0 + timedelta(days=60), "cholecalciferol", "stopped")]
    events += [drug(d0 + timedelta(days=120), "carboplatin", "stopped")]
    doses = [given(d0 + timedelta(days=28 * k), "denosumab") for k in range(65)]
    events += doses
    stop = doses[-1].treatment.on + timedelta(days=20)
    events += [drug(stop, "denosumab", "stopped"), given(stop + timedelta(days=10), "zoledronic_acid")]
    events.sort(key=lambda e: e.recorded_at)
    kept, full = SystemicState(), SystemicState()
    for e in events:
        now = e.recorded_at + timedelta(hours=1)
        kept, out_kept = apply_event(kept, e, r.AsOf(now=now))
        full, out_full = apply_event(full, e, r.AsOf(now=now), keep_all=True)
        assert _dump(out_kept) == _dump(out_full)
    assert kept.drug_replays and len(kept.treatments) < 25 < len(full.treatments)
    for later in (timedelta(days=1), timedelta(days=200)):
        at = r.AsOf(now=events[-1].recorded_at + later)
        plan_kept = current_plan(kept, "p1", at=at)
        plan_full = current_plan(full, "p1", at=at)
        assert plan_kept is not None and plan_full is not None
        assert plan_kept.model_dump(mode="json") == plan_full.model_dump(mode="json")
        assert {i.key for i in plan_kept.items} >= {"denosumab-stop", "antiresorptive-start"}
