"""shared/runtime/membership.py: after a batch that outlived the group session, the loop waits (bounded) for the
coordinator to withdraw the assignment before reading on (real-broker proof: tests/apache/test_commit_refused.py)."""

from __future__ import annotations

import time
from collections.abc import Set

from aiokafka.structs import TopicPartition

from shared.runtime import membership
from shared.settings import Settings

TP = TopicPartition("t", 0)


class _Group:
    """An assignment withdrawn after `after` seconds (what aiokafka does once a heartbeat is refused)."""

    def __init__(self, after: float | None) -> None:
        self.t0 = time.monotonic()
        self.after = after

    def assignment(self) -> Set[TopicPartition]:
        if self.after is not None and time.monotonic() - self.t0 >= self.after:
            return set()
        return {TP}


def _settings(session_ms: int = 6000, heartbeat_ms: int = 200) -> Settings:
    return Settings(service_name="t", kafka_session_timeout_ms=session_ms, kafka_heartbeat_interval_ms=heartbeat_ms)


def test_a_batch_outlives_the_session_only_past_its_timeout() -> None:
    s = _settings(session_ms=1000)
    assert not membership.outlived(time.perf_counter() - 0.9, s)
    assert membership.outlived(time.perf_counter() - 1.1, s)


async def test_the_wait_ends_when_the_assignment_is_withdrawn() -> None:
    t0 = time.monotonic()
    assert await membership.settle(_Group(after=0.3), {TP}, _settings()) is True
    assert 0.3 <= time.monotonic() - t0 < membership.settle_s(_settings())


async def test_a_member_still_holding_its_partitions_waits_one_bounded_round() -> None:
    s = _settings()
    t0 = time.monotonic()
    assert await membership.settle(_Group(after=None), {TP}, s) is False
    assert membership.settle_s(s) <= time.monotonic() - t0 < membership.settle_s(s) + 0.5
