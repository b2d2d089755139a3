"""Issue 22: after a batch during which the event loop was blocked past the consumer group's session (a long pause, a
starved CPU, a stopped process), this process has most likely been expelled and its partitions given to another
member, which reads them again from the last commit. What it read ahead is no longer its to process: handling it
would handle those records a second time beside the new owner. So the loop first lets the batches still finishing
write their processed marks (the new owner skips what they mark), then waits, bounded, until the group coordinator
has noticed (a heartbeat refused: the assignment is withdrawn, and the read-ahead of a partition no longer held is
dropped, `FairBacklog.retain`) or a heartbeat round has passed with the assignment unchanged (still a member).

A batch that is merely slow (a slow Redis, a long transition in the worker thread) does not count: the heartbeats go
on while the loop awaits it. What counts is the event loop itself blocked (or the process not scheduled) for longer
than the session allows: `LoopWatch` sees it as a late wake-up of a 100 ms timer.

Found by tests/apache/test_commit_refused.py under load: a record handled twice after an expulsion."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Set
from typing import Protocol

from aiokafka.structs import TopicPartition

from shared.settings import Settings

log = logging.getLogger(__name__)

POLL_S = 0.05


class Assigned(Protocol):
    def assignment(self) -> Set[TopicPartition]: ...


class LoopWatch:
    """Notices when the event loop was blocked long enough for the group session to lapse (no heartbeat could go):
    a timer of `TICK_S` woken later than `stall_s(settings)` after it was due."""

    TICK_S = 0.1

    def __init__(self, settings: Settings) -> None:
        self.threshold = stall_s(settings)
        self.last_stall: float | None = None  # time.perf_counter() when a stall was seen
        self._task: asyncio.Task[None] | None = None
        self._due: float | None = None  # when the timer is due to wake

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def stalled_since(self, started: float) -> bool:
        """Whether the loop was blocked past the threshold since `started` (time.perf_counter): a stall the timer saw,
        or its timer overdue by that much now (the loop not yet back to it)."""
        if self.last_stall is not None and self.last_stall >= started:
            return True
        return self._due is not None and time.perf_counter() - self._due > self.threshold

    def note(self, late_s: float) -> None:
        if late_s > self.threshold:
            self.last_stall = time.perf_counter()

    async def _watch(self) -> None:
        while True:
            self._due = time.perf_counter() + self.TICK_S
            await asyncio.sleep(self.TICK_S)
            self.note(time.perf_counter() - self._due)


def stall_s(settings: Settings) -> float:
    """A blocked loop this long may have let the session lapse: the session less one heartbeat interval."""
    return max(0.0, (settings.kafka_session_timeout_ms - settings.kafka_heartbeat_interval_ms) / 1000)


def settle_s(settings: Settings) -> float:
    """How long to wait for the coordinator to notice an expulsion: two heartbeat intervals and a round trip."""
    return 2 * settings.kafka_heartbeat_interval_ms / 1000 + 1.0


async def settle(consumer: Assigned, held: Set[TopicPartition], settings: Settings) -> bool:
    """Wait until the assignment differs from `held` (True: a rebalance began) or `settle_s` passed (False)."""
    log.warning("the loop was blocked past the group session; waiting for the group before reading on")
    deadline = time.monotonic() + settle_s(settings)
    while time.monotonic() < deadline:
        if set(consumer.assignment()) != set(held):
            return True
        await asyncio.sleep(POLL_S)
    return False
