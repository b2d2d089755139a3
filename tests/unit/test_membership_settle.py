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


class _Rejoin:
    """aiokafka's flag during a rejoin (`SubscriptionState.reassignment_in_progress`), raised from `begins` to `ends`
    seconds after creation (None: never), and the coordinator's generation, moved when the rejoin ends."""

    def __init__(self, begins: float | None, ends: float | None = None, generation: int = 1) -> None:
        self.t0 = time.monotonic()
        self.begins, self.ends = begins, ends
        self._subscription = self
        self._coordinator = self
        self._generation = generation

    def _since(self) -> float:
        return time.monotonic() - self.t0

    @property
    def reassignment_in_progress(self) -> bool:
        return (
            self.begins is not None
            and self.begins <= self._since()
            and (self.ends is None or self._since() < self.ends)
        )

    @property
    def generation(self) -> int:
        done = self.ends is not None and self._since() >= self.ends
        return self._generation + 1 if done else self._generation

    def assignment(self) -> Set[TopicPartition]:
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


async def test_the_wait_follows_a_rejoin_to_its_end() -> None:
    t0 = time.monotonic()
    assert await membership.settle(_Rejoin(begins=0.1, ends=0.4), 1, _settings()) is True
    assert 0.4 <= time.monotonic() - t0 < 0.4 + 0.3


async def test_a_rejoin_completed_before_the_wait_is_seen_by_its_generation() -> None:
    t0 = time.monotonic()
    member = _Rejoin(begins=0.0, ends=0.0)  # already rejoined: generation 2
    assert await membership.settle(member, 1, _settings()) is True
    assert time.monotonic() - t0 < 0.2


async def test_a_member_still_in_its_group_waits_one_answer_only() -> None:
    s = _settings()
    t0 = time.monotonic()
    assert await membership.settle(_Rejoin(begins=None), 1, s) is False
    assert membership.answer_s(s) <= time.monotonic() - t0 < membership.answer_s(s) + 0.5


async def test_a_rejoin_longer_than_the_bound_ends_the_wait_as_rejoined() -> None:
    s = _settings(session_ms=300, heartbeat_ms=100)  # rejoin_s: 0.9 s
    t0 = time.monotonic()
    assert await membership.settle(_Rejoin(begins=0.0, ends=None), 1, s) is True  # its fetcher returns nothing
    assert membership.rejoin_s(s) <= time.monotonic() - t0 < membership.rejoin_s(s) + 0.5


async def test_a_stop_ends_the_wait() -> None:
    stopping = asyncio.Event()
    asyncio.get_running_loop().call_later(0.2, stopping.set)
    t0 = time.monotonic()
    await membership.settle(_Rejoin(begins=0.0), 1, _settings(), stopping)
    assert time.monotonic() - t0 < 0.5
