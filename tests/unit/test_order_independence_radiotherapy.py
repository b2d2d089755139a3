"""Issue 22: the local-treatment planner's decisions depend on the patient's records and the clock, never on which
event triggered the re-plan nor on the order the records arrived in. For generated histories (every input kind,
corrections, amendments naming no record, cancelled requests; tests/unit/test_issue25_local_retention.py), the same
records delivered in any order, some delivered twice, decided at one fixed clock, end with the same plan, the same
active recommendations (same IDs: same wording) and the same facts.

Where the order legitimately matters (stated, not tested as independent): two versions of one request, one score or
one lab result with the same clinical and recorded times are told apart by delivery order (the later delivery is the
update: the hospital's stream is ordered per patient); the generator gives each record its own recorded time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import Message
from contracts.clinical import NormalisedLab, Score
from contracts.clock import ClockTick
from contracts.hospital import ClinicalAssessment, ImagingFinding
from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import apply_event, current_plan
from services.radiotherapy_planner.facts import LocalState
from tests.unit.order_independence import active, distinct_times, one_per_key
from tests.unit.order_independence import shuffled as reorder
from tests.unit.test_issue25_local_history import patient_history
from tests.unit.test_issue25_local_retention import histories


def tick(patient_id: str, at: datetime) -> ClockTick:
    """A deadline passing at `at`: the plan decided again with no new record."""
    return ClockTick(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"tick:{at.isoformat()}"),
        patient_id=patient_id,
        occurred_at=at,
        recorded_at=at,
        source="radiotherapy-planner",
        service="radiotherapy-planner",
        due_at=at,
    )


def run(events: list[Message], now: datetime, live: bool = False) -> tuple[LocalState, list[Message]]:
    """Each event decided at `now`; `live`: at its arrival (its recorded time, or a minute after the previous
    arrival when it is redelivered later), then a tick at `now`."""
    memo.clear()
    s, out = LocalState(), []
    clock = None
    for e in [*events, tick(events[0].patient_id, now)] if live else events:
        clock = e.recorded_at if clock is None or e.recorded_at > clock else clock + timedelta(minutes=1)
        s, o = apply_event(s, e, now=min(clock, now) if live else now)
        out += o
    return s, out


def outcome(events: list[Message], now: datetime, live: bool = False) -> dict[str, Any]:
    s, out = run(events, now, live)
    plan = current_plan(s, events[0].patient_id)
    one_per_key(out)  # never two active recommendations of one plan item (issue 22)
    return {
        "active": active(out),
        "published": s.published,
        "plan": None if plan is None else [x.model_dump(mode="json") for x in plan.sections],
        "next_due": s.next_due,
        "facts": (s.assessed, s.opinions, s.requests, s.scores, s.labs),
        "findings": sorted(s.findings),
    }


def shuffled(events: list[Message], seed: int, duplicates: int) -> list[Message]:
    """Delayed by up to order_independence.WINDOW, some delivered twice; lab results and scores (one producer each,
    in order on the partition) keep their order."""
    return reorder(events, seed, duplicates, ordered=lambda e: isinstance(e, NormalisedLab | Score))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories(), st.integers(0, 2**32), st.integers(0, 6))
def test_any_order_and_any_redelivery_give_the_same_plan_and_alerts(
    drawn: list[Message], seed: int, duplicates: int
) -> None:
    events = distinct_times(drawn)
    now = max(e.recorded_at for e in events) + timedelta(minutes=5)
    assert outcome(shuffled(events, seed, duplicates), now) == outcome(events, now)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories(), st.integers(0, 2**32), st.integers(0, 6))
def test_decided_live_in_any_order_the_plan_at_the_end_is_the_same(
    drawn: list[Message], seed: int, duplicates: int
) -> None:
    """Live, each event is decided at its arrival (the clock moves on; items are memoised between events), and the
    last deadline decides again: the plan at the end depends on the records and that clock only."""
    events = distinct_times(drawn)
    now = max(e.recorded_at for e in events) + timedelta(days=61)
    assert outcome(shuffled(events, seed, duplicates), now, live=True) == outcome(events, now, live=True)


def test_an_older_event_after_a_newer_assessment_keeps_the_estimate_current() -> None:
    """The issue's case: a cord compression and a life-expectancy estimate made after it; an older imaging finding
    (another lesion) delivered last re-decides the plan. The estimate is not dated in the future for the decision
    time (the clock), so RT-MSCC still weighs it: same alert as in the order of recording."""
    t = datetime(2026, 3, 2, 9, tzinfo=UTC)
    env = {"patient_id": "pt-order", "source": "test"}
    compression = ImagingFinding.model_validate(
        {
            **env,
            "event_id": str(uuid.UUID(int=1, version=4)),
            "occurred_at": t.isoformat(),
            "recorded_at": (t + timedelta(hours=1)).isoformat(),
            "lesion_id": "t8",
            "skeletal_site": "spine",
            "vertebral_level": "T8",
            "modality": "mri",
            "epidural_extension": True,
            "cord_compression": True,
        }
    )
    estimate = ClinicalAssessment.model_validate(
        {
            **env,
            "event_id": str(uuid.UUID(int=2, version=4)),
            "occurred_at": (t + timedelta(days=1)).isoformat(),
            "recorded_at": (t + timedelta(days=1, hours=1)).isoformat(),
            "life_expectancy_months": 2,
        }
    )
    older = ImagingFinding.model_validate(
        {
            **env,
            "event_id": str(uuid.UUID(int=3, version=4)),
            "occurred_at": (t - timedelta(days=3)).isoformat(),
            "recorded_at": (t - timedelta(days=3)).isoformat(),
            "lesion_id": "fem",
            "skeletal_site": "femur_shaft",
            "modality": "xray",
        }
    )
    now = t + timedelta(days=1, hours=2)
    in_order = outcome([older, compression, estimate], now)
    late = outcome([compression, estimate, older], now)
    assert late["active"] == in_order["active"]
    mscc = [a for a in late["active"].values() if a[0] == "RT-MSCC"]
    assert mscc and all(not any("espérance de vie" in m for m in a[4]) for a in mscc), mscc
    # without a clock (the rules' own tests), the decision time is the newest record the state holds, never the
    # trigger's: the same
    memo.clear()
    s1 = s2 = LocalState()
    for e in (compression, estimate, older):
        s1, _ = apply_event(s1, e)
    for e in (older, compression, estimate):
        s2, _ = apply_event(s2, e)
    assert s1.published == s2.published


def test_a_realistic_history_shuffled_ends_the_same() -> None:
    """tests/unit/test_issue25_local_history.py's 2-year patient: in recording order, and shuffled with duplicates."""
    events = distinct_times(patient_history(seed=11, years=2))
    now = max(e.recorded_at for e in events) + timedelta(hours=1)
    base = outcome(events, now)
    assert base["active"], "the history raises alerts (the comparison is not vacuous)"
    for seed in range(3):
        assert outcome(shuffled(events, seed, 25), now) == base
