"""Review RO (HAZ-22-ORDER-04): what a replay of notification's inputs can and cannot give back of the live state.

1. `reading.in_publication_order` (the live loop's batch order and the replay's order): every record once, each
   partition's records in offset order whatever their timestamps (several producers write to one partition of the
   recommendations topic), from a batch as fetched (live) or from records in any order (`sort=True`, the replay).
2. Notification's state after a clock tick applied on either side of a recommendation issued again past the retention
   horizon (ENDED_KEPT): the tick's record and the recommendation's are on two topics, so the live consumer may apply
   them in the other order than the replay's merge by time. The alerts are the same; the stored bytes are not (the
   alert folded to its tombstone by the tick comes back at the end of `alerts`, the one issued again before the fold
   keeps its place): a residual of the byte-for-byte check, stated by a strict xfail."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from aiokafka.structs import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notification.domain import ENDED_KEPT, Arrived, PatientAlerts, apply_event
from shared.runtime import reading
from tests.unit.test_issue25_notification_history import POLICY, START, tick_at
from tests.unit.test_order_independence_notification import rec, withdrawal


def record(topic: str, partition: int, offset: int, timestamp: int) -> ConsumerRecord:
    return ConsumerRecord(topic, partition, offset, timestamp, 0, b"pt", b"{}", None, 2, 2, ())


#: per partition, the timestamps of its records in offset order (any order: several producers)
partitions = st.lists(st.lists(st.integers(0, 20), max_size=8), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(stamps=partitions, seed=st.integers(0, 2**32 - 1))
def test_each_partitions_offset_order_is_kept_whatever_the_timestamps(stamps: list[list[int]], seed: int) -> None:
    records = [
        record("osteocds.recommendations.v1" if p % 2 else "osteocds.clock.notification.v1", p, o, t)
        for p, part in enumerate(stamps)
        for o, t in enumerate(part)
    ]
    shuffled = records[:]
    random.Random(seed).shuffle(shuffled)
    live = reading.in_publication_order(records)  # a fetched batch: each partition in offset order
    replayed = reading.in_publication_order(shuffled, sort=True)
    assert live == replayed  # the same merge, from a batch or from records in any order
    assert sorted(live, key=lambda r: (r.partition, r.offset)) == records  # each record once
    for p in range(len(stamps)):
        assert [r.offset for r in live if r.partition == p] == list(range(len(stamps[p])))


def _alerts_with_a_tick_around_a_reissue(tick_first: bool) -> PatientAlerts:
    """A warning shown, withdrawn, then issued again (its decision back) more than ENDED_KEPT later; a critical alert
    raised shortly before the horizon, whose escalation falls due between the horizon and the issue again."""
    withdrawn_at = START + timedelta(hours=1)
    critical_at = withdrawn_at + ENDED_KEPT - timedelta(minutes=10)
    due = critical_at + POLICY.escalation_delay
    again = due + timedelta(minutes=1)
    tick = tick_at(due)
    reissue = Arrived(message=rec(1, 0, 1, again), at=again)
    events: list[object] = [
        Arrived(message=rec(1, 0, 0, START), at=START),
        tick_at(START + POLICY.settle),
        Arrived(message=withdrawal(1, 0, 0, withdrawn_at), at=withdrawn_at),
        Arrived(message=rec(0, 0, 0, critical_at), at=critical_at),
        *((tick, reissue) if tick_first else (reissue, tick)),
    ]
    state = PatientAlerts()
    for event in events:
        state, _ = apply_event(state, event, POLICY)
    return state


def test_a_tick_on_either_side_of_a_reissue_past_the_horizon_gives_the_same_alerts() -> None:
    by_time, as_consumed = _alerts_with_a_tick_around_a_reissue(True), _alerts_with_a_tick_around_a_reissue(False)
    assert len(by_time.alerts) == 2 and {a.status for a in by_time.alerts.values()} == {"active"}
    assert json.loads(by_time.model_dump_json()) == json.loads(as_consumed.model_dump_json())


@pytest.mark.xfail(
    strict=True,
    reason="residual (HAZ-22-ORDER-04, review RO): the alert folded to its tombstone comes back at the end of `alerts`",
)
def test_a_tick_on_either_side_of_a_reissue_past_the_horizon_gives_the_same_bytes() -> None:
    by_time, as_consumed = _alerts_with_a_tick_around_a_reissue(True), _alerts_with_a_tick_around_a_reissue(False)
    assert by_time.model_dump_json() == as_consumed.model_dump_json()
