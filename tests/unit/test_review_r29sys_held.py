"""Review R29-SYS (HAZ-27-FUTURE-HIDES, systemic planner "decide twice"): what held, R28-SYS's breaks of the earlier
fix (FH-SYS, reverted) ported to this one.

- R28-SYS 2: records dated ahead never end a zoledronic acid course spaced after a good response (SYS-SCHEDULE
  L1136-1140): the start stays "Anti-résorptif en cours" ("done") with one, or ten, "good" responses dated ahead.
- (fixed by the lead, 2026-12-06: marked "à vérifier") A contradiction through the response (today's progression,
  tomorrow's "good"): the restart was shown as a course under way, silently.
- The state is the merge's, unchanged by the change (views are computed at decision time): ten records dated ahead
  leave the stored state byte-equal to the same history decided with `plan_once` alone (982e00c's decision)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from contracts.hospital import ClinicalAssessment, TreatmentEvent
from services.systemic_planner import as_of
from services.systemic_planner import domain as d
from services.systemic_planner import rules as r
from tests.unit.test_systemic_rules import T0, env, items, lab, le, met, oligo, ready, run

TOL = r.Recency().future_tolerance
LATER = T0 + timedelta(days=60)  # six weeks after the zoledronic acid infusion of 16/11


def _on_spaced_zoledronic_acid(response: str = "good") -> list[Any]:
    """R28-SYS's patient: multi-metastatic, a good response, the last infusion on 16/11 (3-monthly)."""
    infusion = {"kind": "drug_administration", "drug": "zoledronic_acid", "on": "2026-11-16"}
    given = TreatmentEvent.model_validate({**env(60 * 24 * 15), "treatment": infusion})
    base = [met(0), lab(2, "creatinine_clearance", 75.0, "mL/min"), oligo(3, "multi_metastatic"), *ready(4)]
    return [*base, le(5, 12.0, oncological_response=response), given]


def _responses_ahead(n: int, value: str) -> list[ClinicalAssessment]:
    return [
        ClinicalAssessment.model_validate(
            {
                "event_id": uuid.uuid4(),
                "patient_id": "p1",
                "source": "t",
                "occurred_at": LATER + TOL + timedelta(hours=k + 1),
                "recorded_at": LATER + timedelta(seconds=k),
                "oncological_response": value,
            }
        )
        for k in range(n)
    ]


@pytest.mark.parametrize("n", [1, 10])
def test_review_r29sys_good_responses_dated_ahead_do_not_end_a_spaced_course(n: int) -> None:
    s, _ = run(_on_spaced_zoledronic_acid(), now=LATER + timedelta(minutes=1))
    assert items(s, LATER + timedelta(minutes=1))["antiresorptive-start"].status == "done"
    s, _ = run(_responses_ahead(n, "good"), s, now=LATER + timedelta(minutes=1))
    assert as_of.involves_future(s, r.AsOf(now=LATER + timedelta(minutes=1)))
    start = items(s, LATER + timedelta(minutes=1))["antiresorptive-start"]
    assert start.status == "done"  # "Anti-résorptif en cours", not "Débuter un traitement anti-résorptif"


def test_review_r29sys_a_good_response_dated_ahead_does_not_silently_turn_a_restart_into_a_course_under_way() -> None:
    """SYS-SCHEDULE (L1136-1140): multi-metastatic, monthly zoledronic acid; today's response is a progression, the
    last infusion six weeks ago: the course is over and the start is recommended again (SYS-AR-START L1068-1074). A
    "good" response dated ahead (read as holding now, it spaces the course to 3 months) makes the item "done"
    ("Anti-résorptif en cours") with no word of the record: B (recommended) and C (done) disagree, A == C is kept.
    Right: the restart suspended or marked "à vérifier", naming the record dated ahead (as R27B's case)."""
    now = LATER + timedelta(minutes=1)
    s, _ = run(_on_spaced_zoledronic_acid("progression"), now=now)
    assert items(s, now)["antiresorptive-start"].status == "recommended"
    good = _responses_ahead(1, "good")
    s, _ = run(good, s, now=now)
    after = items(s, now)["antiresorptive-start"]
    named = good[0].event_id in {i.source_event_id for i in after.inputs} and "vérifier" in after.text_fr
    assert after.status == "recommended" or named


def test_review_r29sys_records_dated_ahead_leave_the_stored_state_as_982e00c_s() -> None:
    """`apply_event` with `build_plan` (A, B, C) and with `plan_once` (A alone, 982e00c's decision) store the same
    state but the plan's digest and version (the published plan differs where the merge publishes B)."""
    now = LATER + timedelta(minutes=1)
    events = [*_on_spaced_zoledronic_acid(), *_responses_ahead(10, "stable")]
    events.append(met(1).model_copy(update={"occurred_at": now + timedelta(days=1), "recorded_at": now}))
    new, _ = run(events, now=now)
    original = d.build_plan
    try:
        d.build_plan = d.plan_once
        old, _ = run(events, now=now)
    finally:
        d.build_plan = original
    skip = {"plan_digest", "plan_version", "plan_event", "published", "next_due"}
    assert new.model_dump_json(exclude=skip) == old.model_dump_json(exclude=skip)
    assert new.next_due is not None and (old.next_due is None or new.next_due <= old.next_due)
