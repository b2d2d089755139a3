"""HAZ-22-ORDER-05, helper ZO: the scoring order property's failure under helper ZJ's fix of
tests/unit/order_independence.shuffled (history_seed 28131, seed 216, 7 duplicates), minimised to 5 deliveries: a
crisis episode (3.78 then 3.77 mmol/L, 12-13/01/2021) ended by a normal value (22/01), a normal value of 24/04 and
the 3.77 result delivered a second time after it. ZJ's fix delivered every second delivery of a lab result after the
last first one: here 101 days after its recorded time, beyond scoring's HORIZON (90 days). The runtime does not
deliver that (a redelivery is of records past the committed offset; processed IDs are skipped,
shared/runtime/service.py), and beyond the horizon scoring decides on what it kept (HAZ-25-SCORING-02): the episode
ended before the cutoff is forgotten, so its middle value is a new late crisis value. Within the horizon the
duplicate changes nothing (the contract: README "Delivery guarantees"). LAB-CA-CRISIS (RULES.md, L296-316: a crisis
is corrected calcium > 3.5 mmol/L, L304-306) and CLASS-SRE (L259-296: malignant hypercalcaemia an SRE, L294) decide
the answer: the episode is one SRE, not current once a normal value followed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.base import Message
from contracts.clinical import NormalisedLab, Recommendation, SkeletalEvent
from contracts.clock import ClockTick
from services.scoring.domain import ScoringState, apply_event
from services.scoring.retention import HORIZON
from tests.unit.order_independence import WINDOW, shuffled
from tests.unit.test_order_independence_scoring import outcome

T0 = datetime(2021, 1, 12, 2, 0, tzinfo=UTC)


def _cc(n: int, value: float, occurred: timedelta, recorded: timedelta) -> NormalisedLab:
    return NormalisedLab(
        event_id=uuid.UUID(int=n, version=4),
        patient_id="pt-zo",
        occurred_at=T0 + occurred,
        recorded_at=T0 + recorded,
        source="test",
        analyte="corrected_calcium",
        result_id=f"cc-{n}",
        value=value,
        unit="mmol/L",
        status="final",
    )


def _deliveries(normal_after: timedelta) -> list[Message]:
    """The minimised deliveries; the second normal value recorded `normal_after` after the 3.77 result."""
    crisis = _cc(2, 3.77, timedelta(days=1, hours=2), timedelta(days=2, hours=1, minutes=46))
    return [
        _cc(1, 3.78, timedelta(0), timedelta(hours=5, minutes=43)),
        crisis,
        _cc(3, 2.36, timedelta(days=10, minutes=3), timedelta(days=10, hours=13, minutes=40)),
        _cc(
            4, 2.5, crisis.recorded_at - T0 + normal_after - timedelta(hours=19), crisis.recorded_at - T0 + normal_after
        ),
        crisis,  # its second delivery, after the newer results
    ]


def _now(events: list[Message]) -> datetime:
    return max(e.recorded_at for e in events) + timedelta(minutes=5)


@pytest.mark.parametrize("days", [20, 60, 89])
def test_a_crisis_result_delivered_again_after_newer_results_changes_nothing_within_the_horizon(days: int) -> None:
    events = _deliveries(timedelta(days=days))
    assert outcome(events, _now(events)) == outcome(events[:-1], _now(events))


def test_beyond_the_horizon_the_redelivered_crisis_value_is_never_a_current_crisis() -> None:
    """HAZ-25-SCORING-02's residual, outside the runtime's deliveries: the episode ended before the cutoff is
    forgotten, the redelivered 3.77 is decided as a late value: a historical SRE under its own ID and an info notice,
    never a current crisis nor a critical alert (LAB-CA-CRISIS decides an alert on the newest, current value)."""
    events = _deliveries(timedelta(days=101))
    assert events[3].recorded_at - events[1].recorded_at > HORIZON
    s, out = ScoringState(), list[Message]()
    for e in events:
        s, decided = apply_event(s, e, now=_now(events))
        out += decided
    sres = [o for o in out if isinstance(o, SkeletalEvent) and o.status != "withdrawn"]
    assert len({o.event_id for o in sres}) == 2  # the episode's, and the late value's (not deduplicated)
    assert not any(o.current for o in sres)
    alerts = [o for o in out if isinstance(o, Recommendation) and o.rule_id == "LAB-CA-CRISIS"]
    assert alerts and alerts[-1].severity == "info"  # the redelivery's notice: "reçue en retard", not current


def _lab(n: int, day: int) -> NormalisedLab:
    return _cc(100 + n, 2.4, timedelta(days=day), timedelta(days=day))


def _tick(n: int, day: int) -> ClockTick:
    at = T0 + timedelta(days=day)
    return ClockTick(
        event_id=uuid.UUID(int=200 + n, version=4),
        patient_id="pt-zo",
        occurred_at=at,
        recorded_at=at,
        source="test",
        service="scoring",
        due_at=at,
    )


@pytest.mark.parametrize("seed", range(20))
def test_the_reorderings_deliver_a_second_delivery_within_the_window_of_its_first(seed: int) -> None:
    """What ZJ's fix broke: every record delivered before a second delivery was recorded at most 2 x WINDOW after
    the repeated record (its first delivery up to WINDOW late, the second up to WINDOW after it)."""
    events: list[Message] = [x for d in range(0, 300, 5) for x in (_lab(d, d), _tick(d, d + 2))]
    out = shuffled(events, seed, 12, ordered=lambda e: isinstance(e, NormalisedLab))
    assert len(out) == len(events) + 12 and {e.event_id for e in out} == {e.event_id for e in events}
    seen: set[uuid.UUID] = set()
    for p, e in enumerate(out):
        if e.event_id in seen:
            assert max(x.recorded_at for x in out[:p]) <= e.recorded_at + 2 * WINDOW, (seed, p)
        seen.add(e.event_id)
    labs = [e.event_id for e in out if isinstance(e, NormalisedLab)]
    firsts = list(dict.fromkeys(labs))
    assert firsts == [e.event_id for e in events if isinstance(e, NormalisedLab)]  # their order kept
