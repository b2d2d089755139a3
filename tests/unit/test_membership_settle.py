"""shared/runtime/membership.py: after a batch that outlived the group session, the loop waits (bounded) for the
coordinator to withdraw the assignment before reading on (real-broker proof: tests/apache/test_commit_refused.py)."""

from __future__ import annotations

import asyncio
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


async def test_a_blocked_loop_is_seen_a_slow_await_is_not() -> None:
    s = _settings(session_ms=1000, heartbeat_ms=200)  # a stall: the loop blocked over 0.8 s
    watch = membership.LoopWatch(s)
    watch.start()
    try:
        await asyncio.sleep(0.3)
        started = time.perf_counter()
        await asyncio.sleep(1.2)  # slow, but the loop runs (heartbeats would go): not a stall
        assert not watch.stalled_since(started)
        started = time.perf_counter()
        time.sleep(1.0)  # noqa: ASYNC251 - the loop blocked on purpose
        assert watch.stalled_since(started)  # its timer overdue now, before the loop came back to it
        await asyncio.sleep(0.25)
        assert watch.stalled_since(started)  # and seen by the timer since
        assert not watch.stalled_since(time.perf_counter())
    finally:
        watch.stop()


async def test_the_wait_ends_when_the_assignment_is_withdrawn() -> None:
    t0 = time.monotonic()
    assert await membership.settle(_Group(after=0.3), {TP}, _settings()) is True
    assert 0.3 <= time.monotonic() - t0 < membership.settle_s(_settings())


async def test_a_member_still_holding_its_partitions_waits_one_bounded_round() -> None:
    s = _settings()
    t0 = time.monotonic()
    assert await membership.settle(_Group(after=None), {TP}, s) is False
    assert membership.settle_s(s) <= time.monotonic() - t0 < membership.settle_s(s) + 0.5
