"""Issue 22: after a batch that outlived the consumer group's session (a stalled loop: a long pause, a starved CPU),
this process has most likely been expelled and its partitions given to another member, which reads them again from
the last commit. What it read ahead is no longer its to process: handling it would handle those records a second
time beside the new owner. So the loop first lets the batches still finishing write their processed marks (the new
owner skips what they mark), then waits, bounded, until the group coordinator has noticed (a heartbeat refused: the
assignment is withdrawn, and the read-ahead of a partition no longer held is dropped, `FairBacklog.retain`) or a
heartbeat round has passed with the assignment unchanged (still a member).

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


def outlived(started: float, settings: Settings) -> bool:
    """Whether a batch begun at `started` (time.perf_counter) ran past the group session: no heartbeat meanwhile."""
    return time.perf_counter() - started > settings.kafka_session_timeout_ms / 1000


def settle_s(settings: Settings) -> float:
    """How long to wait for the coordinator to notice an expulsion: two heartbeat intervals and a round trip."""
    return 2 * settings.kafka_heartbeat_interval_ms / 1000 + 1.0


async def settle(consumer: Assigned, held: Set[TopicPartition], settings: Settings) -> bool:
    """Wait until the assignment differs from `held` (True: a rebalance began) or `settle_s` passed (False)."""
    log.warning("a batch outlived the group session; waiting for the group before reading on")
    deadline = time.monotonic() + settle_s(settings)
    while time.monotonic() < deadline:
        if set(consumer.assignment()) != set(held):
            return True
        await asyncio.sleep(POLL_S)
    return False
