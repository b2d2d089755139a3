"""HAZ-25-RT-08 (helper FH-RT): the remainder of the life expectancy an SBRT contraindication item shows (RT-SBRT-CI,
L1629-1636) is the one at the decision, whether its family is reused from the memo (keyed on the remainder's band
and tenth) or built again: a warm process shows what a cold one shows; status, text and digest unchanged."""

from __future__ import annotations

from datetime import timedelta

from contracts.hospital import ClinicalAssessment
from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import build_plan
from services.radiotherapy_planner.facts import LocalState
from shared.clinical.life_expectancy import Remaining
from tests.unit.test_issue18_local import NOW, TODAY, env, request, run, vertebra
from tests.unit.test_local_plan_domain import score


def _state() -> tuple[LocalState, ClinicalAssessment]:
    estimate = ClinicalAssessment.model_validate(env(NOW - timedelta(days=20), life_expectancy_months=10.0))
    s, _ = run(
        [
            estimate,
            vertebra(),
            score("sins", "t8", 4, "stable"),
            request("t8", "sbrt", planned_on=TODAY + timedelta(days=7), total_dose_gy=27.0, fractions=3),
        ]
    )
    return s, estimate


def _ci(s: LocalState, at: timedelta) -> tuple[str, object]:
    [ci] = [i for sec in build_plan(s, now=NOW + at) for i in sec.items if i.rule_id == "RT-SBRT-CI"]
    [shown] = [x.value for x in ci.inputs_used() if x.name == "life_expectancy_months" and x.source_event_id is None]
    return ci.digest, shown


def test_fh_rt_the_remainder_shown_is_the_one_at_the_decision_warm_or_cold() -> None:
    s, estimate = _state()
    memo.clear()
    first = _ci(s, timedelta(0))
    warm = _ci(s, timedelta(minutes=30))  # the same band and tenth: the family is reused from the memo
    memo.clear()
    cold = _ci(s, timedelta(minutes=30))
    assert warm == cold
    assert warm[0] == first[0]  # the same decision (digest)
    assert warm[1] == Remaining.at(10.0, estimate.occurred_at, NOW + timedelta(minutes=30)).remaining != first[1]
