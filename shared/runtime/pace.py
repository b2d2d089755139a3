"""Issue 13: idle consumers stop long-polling the broker many times a second.

A consumer fetches with `KAFKA_FETCH_MAX_WAIT_MS` (20 ms on the embedded broker, which holds every fetch for its
whole wait: latency is about half of it). Five idle services doing so kept the broker busy (about half a core
here, nothing published). After `KAFKA_IDLE_AFTER_S` without a record, the consumer fetches with
`KAFKA_IDLE_FETCH_MAX_WAIT_MS` instead (500 ms); the first record back returns it to the short wait at once.

The cost: the first record after a quiet spell may wait up to the idle wait on each idle hop (on the embedded
broker; Apache Kafka answers a long poll as soon as data arrives, so there it costs nothing). Records that follow
it, and every record under load, see the short wait. The wait is the fetcher's own setting, changed in place (an
aiokafka without it keeps the fixed wait).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from shared.settings import Settings

log = logging.getLogger(__name__)


class FetchPace:
    """Chooses the consumer's fetch wait from how long it has been since a record came."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.busy_wait_ms = settings.kafka_fetch_max_wait_ms
        self.idle_wait_ms = max(settings.kafka_idle_fetch_max_wait_ms, self.busy_wait_ms)
        self.idle_after_s = settings.kafka_idle_after_s
        self.clock = clock
        self.idle = False
        self._last_record = clock()
        self._fetcher: Any = None

    @property
    def wait_ms(self) -> int:
        return self.idle_wait_ms if self.idle else self.busy_wait_ms

    def attach(self, consumer: Any) -> None:
        """Pace this (started) aiokafka consumer."""
        fetcher = getattr(consumer, "_fetcher", None)
        if fetcher is None or not hasattr(fetcher, "_fetch_max_wait_ms"):
            log.warning("this aiokafka has no fetch wait to adapt: the fetch wait stays fixed")
            return
        self._fetcher = fetcher
        self._apply()

    def fetched(self, records: int) -> None:
        """Called by the loop after each fetch with how many records it got."""
        now = self.clock()
        if records:
            self._last_record = now
            if self.idle:
                self.idle = False
                self._apply()
        elif not self.idle and self.idle_wait_ms > self.busy_wait_ms and now - self._last_record >= self.idle_after_s:
            self.idle = True
            self._apply()

    def _apply(self) -> None:
        if self._fetcher is not None:
            self._fetcher._fetch_max_wait_ms = self.wait_ms  # read when the next fetch request is built
