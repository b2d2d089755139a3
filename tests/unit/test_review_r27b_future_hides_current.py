"""Review R27B (HAZ-27-SYS-FUTURE's residual: "the other services' future-date filters were not re-read").

Scoring (services/scoring/clock.py) and the radiotherapy planner (domain.next_due) do register, for every fact they
leave out as dated in the future, the instant it becomes effective (the tick at that instant + 1 s, their
convention for every window): the planner's gap (no deadline) is not there. They have another one the systemic
planner avoids ("a value dated in the future ... never hides the newest real one", labs.latest and
LIFE_EXPECTANCY_KEPT): they keep one fact per name (the newest by clinical time), so a fact dated beyond the
tolerance hides the current one until its date comes. Each a minimal case, a strict xfail until the "decide twice"
fix (2026-12-06; before it, the fixes that read the facts as of the decision were reverted after reviews R28-RT,
R28-RT2, R28-SC, R28-SYS):
- RT-MSCC: an imaging report re-confirming a cord compression, dated tomorrow, downgrades today's emergency
  (critical "urgence thérapeutique") to "donnée non actuelle" (warning);
- RT-MSCC: a neurological deficit assessed again with a date tomorrow does the same to the compression inferred
  from an epidural extension with today's deficit;
- SURG-LE: a life expectancy dated tomorrow makes the current estimate unknown ("cannot_decide");
- CLASS-SRE (scoring): a neurological deficit dated tomorrow withdraws the current cord compression SRE (the
  systemic planner's CLASS-SRE input) until tomorrow."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from contracts.base import Message
from contracts.hospital import ClinicalAssessment
from services.radiotherapy_planner import memo as rt_memo
from services.radiotherapy_planner.domain import apply_event as rt_apply
from services.radiotherapy_planner.facts import LocalState
from services.scoring.domain import apply_event as scoring_apply
from tests.unit import test_scoring_scores as sc
from tests.unit.test_issue18_local import NOW, env, femur, plan_items, vertebra

DAY = timedelta(days=1)
FAILS = "review R27B: a fact dated in the future hides the current one (one fact kept per name)"


def _at(e: Any, at: datetime, recorded: datetime) -> Any:
    return e.model_copy(update={"occurred_at": at, "recorded_at": recorded})


def _assessed(at: datetime, recorded: datetime, **facts: Any) -> ClinicalAssessment:
    e = ClinicalAssessment.model_validate(env(at, **facts))
    return e.model_copy(update={"recorded_at": recorded})


def _rt(events: list[Message], rule: str) -> list[tuple[str, str]]:
    """The items of `rule` in the last plan, each event decided at the clock NOW: (severity, status)."""
    rt_memo.clear()
    s, out = LocalState(), list[Message]()
    for e in events:
        s, o = rt_apply(s, e, now=NOW)
        out += o
    return [(i.severity, i.status) for i in plan_items(out) if i.rule_id == rule]


def test_review_r27b_the_cases_without_the_future_dated_fact() -> None:
    """The baselines the xfails compare with (they pass)."""
    seen = _at(vertebra(cord_compression=True), NOW - DAY, NOW - DAY)
    assert _rt([seen], "RT-MSCC") == [("critical", "recommended")]
    epidural = _at(vertebra(epidural_extension=True), NOW - 20 * DAY, NOW - 20 * DAY)
    deficit = _assessed(NOW - 2 * DAY, NOW - 2 * DAY, neurological_deficit=True)
    assert _rt([epidural, deficit], "RT-MSCC")[0][0] == "critical"
    estimate = _assessed(NOW - 2 * DAY, NOW - 2 * DAY, life_expectancy_months=2.0)
    fracture = _at(femur(pathological_fracture=True), NOW - DAY, NOW - DAY)
    assert _rt([estimate, fracture], "SURG-LE") == [("info", "recommended")]


def test_review_r27b_rt_a_compression_seen_again_tomorrow_keeps_todays_emergency() -> None:
    seen = _at(vertebra(cord_compression=True), NOW - DAY, NOW - DAY)
    again = _at(vertebra(cord_compression=True), NOW + DAY, NOW)  # dated tomorrow, beyond the 15 min tolerance
    assert _rt([seen, again], "RT-MSCC") == [("critical", "recommended")]  # is ("warning", "to_do")


def test_review_r27b_rt_a_deficit_assessed_again_tomorrow_keeps_the_inferred_emergency() -> None:
    epidural = _at(vertebra(epidural_extension=True), NOW - 20 * DAY, NOW - 20 * DAY)
    deficit = _assessed(NOW - 2 * DAY, NOW - 2 * DAY, neurological_deficit=True)
    again = _assessed(NOW + DAY, NOW, neurological_deficit=True)
    assert _rt([epidural, deficit, again], "RT-MSCC")[0][0] == "critical"  # is "warning" ("données non actuelles")


def test_review_r27b_rt_a_life_expectancy_dated_tomorrow_does_not_hide_the_current_one() -> None:
    estimate = _assessed(NOW - 2 * DAY, NOW - 2 * DAY, life_expectancy_months=2.0)
    fracture = _at(femur(pathological_fracture=True), NOW - DAY, NOW - DAY)
    tomorrows = _assessed(NOW + DAY, NOW, life_expectancy_months=2.0)
    assert _rt([estimate, fracture, tomorrows], "SURG-LE") == [("info", "recommended")]  # is "cannot_decide"


def test_review_r27b_scoring_a_deficit_dated_tomorrow_keeps_the_current_cord_compression() -> None:
    s, out = sc.run([sc.finding(0, **sc.T9, epidural_extension=True), sc.assessment(10, neurological_deficit=True)])
    assert [(x.kind, x.current) for x in sc.live_sres(out)] == [("cord_compression", True)]
    now = sc.T0 + timedelta(minutes=20)
    tomorrows = _at(sc.assessment(0, neurological_deficit=True), sc.T0 + DAY, now)
    _, more = scoring_apply(s, tomorrows, now=now)
    assert [(x.kind, x.current) for x in sc.live_sres(out + more)] == [("cord_compression", True)]  # withdrawn
