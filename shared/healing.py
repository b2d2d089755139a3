"""Self-healing of a lost cache: the service notices that Redis lost its state, stops, rebuilds, goes on.

Redis holds a cache of what the Kafka topics record. When it is flushed, restarted empty or replaced, the
service's epoch key (shared/state.py) is gone, and the next state transaction, the step that marks events
processed, the idle watchdog or a readiness probe sees it. From then on:

1. `/readyz` answers 503 (check `state`), the consumer loop neither consumes nor commits: the batch in hand is
   dropped uncommitted, before anything is computed from the empty state or published;
2. the state is rebuilt from Kafka up to the committed offsets, the outputs that should have gone out and are
   not on the output topics are published (shared/rebuild.py), and a new epoch is written with the state;
3. the consumer rewinds its partitions to their committed offsets, readiness returns, and processing goes on.

No operator is needed. The logs say when the state was found lost and when it was rebuilt (counts and
seconds only, no patient data). A process that starts against a Redis without its epoch (a first start, or
a restart after a loss) takes the same path before it consumes anything.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer

from shared.rebuild import RebuildReport, rebuild

if TYPE_CHECKING:
    from shared.service import Service

log = logging.getLogger(__name__)

#: how often an idle loop checks the epoch (a busy one checks it in every transaction)
WATCHDOG_INTERVAL_S = 1.0


async def ensure_state(service: Service) -> RebuildReport | None:
    """At start: adopt the epoch Redis holds, or rebuild when there is none."""
    store = service.store
    store.guarded = True
    current = await store.read_epoch()
    if current is not None:
        store.epoch = current
        return None
    log.info("no state epoch in Redis: rebuilding the state from Kafka before consuming")
    return await _rebuild(service, None)


async def heal(service: Service, consumer: AIOKafkaConsumer | None) -> RebuildReport | None:
    """The state was found lost while running: rebuild (or adopt another instance's rebuild), then rewind."""
    store = service.store
    service.healing = True
    service.metrics.state_losses.labels(service.name).inc()
    log.warning("patient state lost from Redis: consumption stopped, readiness off, rebuilding from Kafka")
    try:
        found = await store.read_epoch()
        report: RebuildReport | None = None
        if found is not None and found != store.epoch:  # another instance (or an operator) rebuilt already
            store.epoch = found
            log.warning("state rebuilt by another instance: adopting it")
        else:
            report = await _rebuild(service, found)
        if consumer is not None:
            await rewind(consumer)
        return report
    finally:
        service.healing = False


async def _rebuild(service: Service, expected: bytes | None) -> RebuildReport:
    t0 = time.perf_counter()
    report = await rebuild(service, expected)
    service.metrics.rebuild_seconds.labels(service.name).observe(time.perf_counter() - t0)
    log.warning(
        "state rebuilt from Kafka: consumption resumes",
        extra={"patients": report.patients, "count": report.events, "published": report.published},
    )
    return report


async def rewind(consumer: AIOKafkaConsumer) -> None:
    """Put every assigned partition back at its committed offset: what was fetched but not committed (the
    batch dropped when the loss was seen, and whatever was prefetched) is delivered again."""
    for tp in consumer.assignment():
        offset = await consumer.committed(tp)
        if offset is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)
