"""Issue 22: after the event loop was blocked past the consumer group's session (a long pause, a starved CPU, a
stopped process), this process has most likely been expelled: its partitions go to a member (maybe itself again)
that reads them from the last commit. What it read ahead is then no longer its to process: handling it would handle
those records a second time beside the new owner. So the loop, before its next batch, lets the batches still
finishing write their processed marks (the new owner skips what they mark) and waits for the group's answer to its
first heartbeat since: no rejoin begun within a heartbeat interval and 1 s (still a member: it reads on), or a rejoin
(aiokafka's `reassignment_in_progress`, which its fetcher honours: the assignment itself stays in place until the
rejoin completes) followed to its end, bounded; after a rejoin the read-ahead is dropped and fetched again from the
committed offsets.

A batch that is merely slow (a slow Redis, a long transition in the worker thread) does not count: the heartbeats go
on while the loop awaits it. What counts is the event loop itself blocked (or the process not scheduled) for longer
than the session allows: `LoopWatch` sees it as a late (or overdue) wake-up of a 100 ms timer, whether it happened
inside a batch or between two.

Found by tests/apache/test_commit_refused.py under load: a record handled twice after an expulsion. Review
R34-STALL (tests/unit/test_review_r34_stall.py) found the first version waiting for an assignment change that
aiokafka makes only at the rejoin's end, missing stalls between batches, and a threshold of 0 for a heartbeat as
long as the session."""

from __future__ import annotations

import asyncio
import logging
import time

from shared.settings import Settings

log = logging.getLogger(__name__)

POLL_S = 0.05


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
    """A blocked loop this long may have let the session lapse: the session less one heartbeat interval (at least
    half the session: a heartbeat interval as long as the session is a misconfiguration, not a stall per tick)."""
    session = settings.kafka_session_timeout_ms / 1000
    return max(session - settings.kafka_heartbeat_interval_ms / 1000, session / 2)


def answer_s(settings: Settings) -> float:
    """How long the group takes to answer the first heartbeat after a stall (a rejoin begins): an interval and 1 s."""
    return settings.kafka_heartbeat_interval_ms / 1000 + 1.0


def rejoin_s(settings: Settings) -> float:
    """The bound on following a rejoin to its end: three sessions."""
    return 3 * settings.kafka_session_timeout_ms / 1000


def generation(consumer: object) -> int | None:
    """The group generation this member last joined (aiokafka's coordinator; None when unknown: no group)."""
    value = getattr(getattr(consumer, "_coordinator", None), "generation", None)
    return value if isinstance(value, int) else None


def rejoining(consumer: object) -> bool:
    """Whether the member is rejoining its group (aiokafka's SubscriptionState; its fetcher returns nothing then)."""
    return bool(getattr(getattr(consumer, "_subscription", None), "reassignment_in_progress", False))


async def settle(
    consumer: object, before: int | None, settings: Settings, stopping: asyncio.Event | None = None
) -> bool:
    """After a stall: True when the member rejoined its group (or is still rejoining at the bound: its fetcher
    returns nothing until it is done), False when no rejoin began within `answer_s` (still a member). `before`: the
    generation before the stall (a rejoin already completed when the wait begins is seen by it)."""
    log.warning("the loop was blocked past the group session; waiting for the group before reading on")
    t0 = time.monotonic()
    began = False
    while stopping is None or not stopping.is_set():
        if rejoining(consumer):
            began = True
        elif began or (before is not None and generation(consumer) not in (None, before)):
            return True
        if time.monotonic() - t0 > (rejoin_s(settings) if began else answer_s(settings)):
            return began
        await asyncio.sleep(POLL_S)
    return began
