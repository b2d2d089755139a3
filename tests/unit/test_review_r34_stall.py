"""Review R34-STALL (issue 22): the consumer loop's wait for the group after a blocked event loop
(`shared/runtime/membership.py`, used by `Service._run` after each batch: `watch.stalled_since(sent.t0)`, then
`settle(consumer, generation, settings)`; since the review, checked before each batch for a stall since the
previous check, and following aiokafka's `reassignment_in_progress`).

The group is aiokafka's own bookkeeping (`SubscriptionState`, what `AIOKafkaConsumer.assignment()` returns), driven
the way its coordinator drives it: a heartbeat refused after an expulsion calls `begin_reassignment()`
(`_on_join_prepare`), which leaves the assignment in place (`Subscription._begin_reassignment` only raises
`reassignment_in_progress`); only the completed rejoin replaces it (`_on_join_complete` -> `assign_from_subscribed`).
So `settle`, which waits for `assignment()` to differ from the set held, sees a rejoin only once it has completed,
and only when it gave another set of partitions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Set

from aiokafka.consumer.subscription_state import SubscriptionState
from aiokafka.structs import ConsumerRecord, TopicPartition

from shared.runtime import limits, membership
from shared.settings import Settings

TP = TopicPartition("t", 0)


def _settings(session_ms: int, heartbeat_ms: int) -> Settings:
    return Settings(service_name="t", kafka_session_timeout_ms=session_ms, kafka_heartbeat_interval_ms=heartbeat_ms)


class _Member:
    """aiokafka's subscription state of a member subscribed to `t`, holding `t-0`; `assignment()` and `_subscription`
    as AIOKafkaConsumer's (a fix may read `reassignment_in_progress` there, as aiokafka's own fetcher does)."""

    def __init__(self) -> None:
        self._subscription = SubscriptionState()
        self._subscription.subscribe({"t"})
        self._subscription.assign_from_subscribed({TP})

    def assignment(self) -> Set[TopicPartition]:
        tps: Set[TopicPartition] = self._subscription.assigned_partitions()
        return tps

    async def rejoin(self, refused_after: float, joined_after: float, partitions: set[TopicPartition]) -> None:
        """A heartbeat refused (expelled) after `refused_after` s, the rejoin completed after `joined_after` s."""
        await asyncio.sleep(refused_after)
        self._subscription.begin_reassignment()  # GroupCoordinator._on_join_prepare
        await asyncio.sleep(joined_after - refused_after)
        self._subscription.assign_from_subscribed(partitions)  # GroupCoordinator._on_join_complete


def _record(offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", 0, offset, 0, 0, b"pt-1", b"{}", None, 4, 2, [])


async def test_a_refused_heartbeat_leaves_the_assignment_in_place() -> None:
    """A fact about aiokafka 0.14 the module's docstring and HAZ-22-FAILOVER get wrong ("a heartbeat refused: the
    assignment is withdrawn"): between the refusal and the completed rejoin `assignment()` is unchanged."""
    member = _Member()
    member._subscription.begin_reassignment()
    assert member.assignment() == {TP}
    assert member._subscription.reassignment_in_progress


async def test_a_rejoin_that_gives_the_partitions_back_ends_the_wait() -> None:
    s = _settings(2000, 200)  # answer_s: 1.2 s
    member = _Member()
    rejoin = asyncio.create_task(member.rejoin(0.1, 0.3, {TP}))
    t0 = time.monotonic()
    assert await membership.settle(member, None, s)  # rejoined (the same partitions back)
    await rejoin
    assert time.monotonic() - t0 < 0.3 + 0.5 < membership.answer_s(s) + 0.5


async def test_the_wait_does_not_end_while_the_member_is_still_rejoining() -> None:
    s = _settings(
        2000, 200
    )  # answer_s 1.2 s, rejoin_s 6 s; a rejoin that takes 2 s (a loaded host, a slow coordinator lookup)
    member = _Member()
    backlog = limits.FairBacklog(100)
    backlog.add({TP: [_record(7), _record(8)]})  # read ahead before the stall
    rejoin = asyncio.create_task(member.rejoin(0.1, 2.0, set()))  # the partition goes to the other member
    assert await membership.settle(member, None, s)
    backlog.retain(member.assignment())  # as `_run`'s next iteration
    handled = backlog.take(10)
    await rejoin
    assert not [r for r in handled if TopicPartition(r.topic, r.partition) not in member.assignment()]


async def test_a_stall_between_two_batches_is_acted_on_by_the_next() -> None:
    """Since the review: `_run` checks, before each batch, for a stall since its previous check (not since the batch
    began), so a stall while it awaited the previous finish or getmany is acted on before the read-ahead is handled."""
    s = _settings(1000, 200)  # a stall: the loop blocked over 0.8 s
    watch = membership.LoopWatch(s)
    watch.start()
    try:
        await asyncio.sleep(0.25)
        checked = time.perf_counter()  # the previous batch's check

        async def previous_finish() -> None:  # what the loop awaits after its check (`while len(finishing) > 1`)
            await asyncio.sleep(0.05)
            time.sleep(1.2)  # noqa: ASYNC251 - the loop blocked on purpose (another task, a pause)

        await previous_finish()
        await asyncio.sleep(0.25)  # getmany: the watch runs, notes the stall
        assert watch.stalled_since(checked)  # the next batch's check, before it handles the read-ahead
        assert not watch.stalled_since(time.perf_counter())  # and the one after it: nothing new
    finally:
        watch.stop()


async def test_a_heartbeat_as_long_as_the_session_does_not_make_every_batch_a_stall() -> None:
    watch = membership.LoopWatch(_settings(1000, 1000))
    watch.start()
    try:
        t0 = time.perf_counter()
        await asyncio.sleep(0.5)  # a batch awaiting Redis: the loop runs
        assert not watch.stalled_since(t0)
    finally:
        watch.stop()


async def test_the_watch_sees_a_stall_inside_the_batch_and_not_a_slow_await() -> None:
    """What the change does cover (the stall of tests/apache/test_commit_refused.py: inside a handler)."""
    watch = membership.LoopWatch(_settings(1000, 200))
    watch.start()
    try:
        await asyncio.sleep(0.25)
        t0 = time.perf_counter()
        await asyncio.sleep(1.0)
        assert not watch.stalled_since(t0)
        t0 = time.perf_counter()
        await asyncio.sleep(0.05)
        time.sleep(1.0)  # noqa: ASYNC251 - the loop blocked on purpose
        await asyncio.sleep(0)
        assert watch.stalled_since(t0)
    finally:
        watch.stop()
