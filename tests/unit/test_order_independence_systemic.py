"""Issue 22: the systemic planner's decisions depend on the patient's records and the clock, never on which event
triggered the re-plan nor on the delivery order. The generated histories of
tests/unit/test_issue25_systemic_retention.py (tests/unit/histories.py; labs, findings, assessments, SREs, scores,
drug starts, stops and doses, dental and care events, clock ticks; out of clinical order, corrected, withdrawn,
delivered twice) are delivered again in another order (each hospital record up to 10 days late, some a second
time) and decided at one clock: the same plan, the same active recommendations (same IDs: same wording, one per item)
and the same facts.

Order that legitimately matters (stated, kept by the test): the services' own topics (scoring's SREs and scores,
lab-normalisation's results, the planner's clock) have one producer each, in order on the patient's partition, so
their records keep their relative order (a withdrawal of a result or an SRE is never delivered before it); the
hospital's records (findings, assessments, treatments, care events) arrive in any order; a second delivery of an SRE
issued, withdrawn and issued again is deduplicated by the runtime on its `delivery_key`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import Message
from contracts.clinical import NormalisedLab, Score, SkeletalEvent
from contracts.clock import ClockTick
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, current_plan
from services.systemic_planner.state import LAB_TABLES
from tests.unit.histories import PROFILES, steps, systemic_history
from tests.unit.order_independence import active, distinct_times, one_per_key, shuffled


def history(program: list[tuple[int, int, int, int, int]], profile: tuple[int, ...]) -> list[Message]:
    """The generated history as delivered in order (the retention test's generator)."""
    return [e for e, _, _ in systemic_history(program, profile)]


def outcome(events: list[Message], now: datetime) -> dict[str, Any]:
    """Decided with the whole history kept (`keep_all`): retention's own horizon (a correction names one of the 2
    newest assessments of the patient, HAZ-25-SYS-02) is proven by tests/unit/test_issue25_systemic_retention.py,
    whose histories are delivered out of order within it; here any reordering, however dense the history."""
    s, out = SystemicState(), []
    for e in events:
        s, o = apply_event(s, e, r.AsOf(now=now), keep_all=True)
        out += o
    one_per_key(out)  # never two active recommendations of one plan item (issue 22)
    plan = current_plan(s, "p1", at=r.AsOf(now=now))
    return {
        "active": active(out),
        "published": s.published,
        "plan": None if plan is None else [i.model_dump(mode="json") for i in plan.items],
        "next_due": s.next_due,
        "facts": (s.sres, s.sre_currency, s.lesions, s.life_expectancies, s.response, s.oligometastatic),
        "labs": {table: getattr(s, table) for table in LAB_TABLES.values()},
    }


#: each hospital record delivered up to 10 days late (the runtime's own reorderings are seconds to minutes: topics
#: fetched in any interleaving, a batch redelivered; a rebuild replays by record timestamp)
WINDOW = timedelta(days=10)


def _sre(e: Message) -> bool:
    """Records of the services' own topics: one producer each, in order on the patient's partition."""
    return isinstance(e, SkeletalEvent | NormalisedLab | Score | ClockTick)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(program=steps, profile=st.sampled_from(PROFILES), seed=st.integers(0, 2**32), duplicates=st.integers(0, 6))
def test_any_order_and_any_redelivery_give_the_same_plan_and_alerts(
    program: list[tuple[int, int, int, int, int]], profile: tuple[int, ...], seed: int, duplicates: int
) -> None:
    events = distinct_times(history(program, profile))
    now = max(e.recorded_at for e in events) + timedelta(minutes=5)
    assert outcome(shuffled(events, seed, duplicates, window=WINDOW, ordered=_sre), now) == outcome(events, now)
