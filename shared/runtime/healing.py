"""Self-healing of a lost cache: the service notices that Redis lost its state, stops, rebuilds, goes on.

Redis holds a cache of what the Kafka topics record. When it is flushed, restarted empty or replaced, the
service's epoch key (shared/runtime/state.py) is gone, and the next state transaction, the step that marks events
processed, the idle watchdog or a readiness probe sees it. From then on:

1. `/readyz` answers 503 (check `state`), the consumer loop neither consumes nor commits: the batch in hand is
   dropped uncommitted, before anything is computed from the empty state or published;
2. the state is rebuilt from Kafka up to the committed offsets, the outputs that should have gone out and are
   not on the output topics are published (shared/runtime/rebuild.py), and a new epoch is written with the state;
3. the consumer rewinds its partitions to their committed offsets, readiness returns, and processing goes on.

No operator is needed. The logs say when the state was found lost and when it was rebuilt (counts and
seconds only, no patient data): `state rebuilt from Kafka` is a WARNING when something was rebuilt (a loss
healed), INFO when there was nothing to rebuild (a clean start: `count` 0). A process that starts against a
Redis without its epoch (a first start, or a restart after a loss) takes the same path before it consumes
anything.

Several instances of one service notice the same loss at once (issue 13): only the one that takes the service's
rebuild lock (a Redis key set with NX and a TTL of `REBUILD_LOCK_TTL_S`, renewed while it rebuilds) rebuilds.
The others stay not-ready and consume nothing until the new epoch appears, adopt it and go on; if the lock
expires without an epoch (its holder died), the next one takes it and rebuilds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer

from shared.runtime.rebuild import RebuildReport, rebuild

if TYPE_CHECKING:
    from shared.runtime.service import Service

log = logging.getLogger(__name__)

#: how often an idle loop checks the epoch (a busy one checks it in every transaction)
WATCHDOG_INTERVAL_S = 1.0
#: how often an instance waiting for another's rebuild looks for the new epoch
WAIT_POLL_S = 0.1

# KEYS: the lock. ARGV: this holder's token, TTL in ms. Renew (PEXPIRE) or release (DEL) only a lock still ours.
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


async def ensure_state(service: Service) -> RebuildReport | None:
    """At start: adopt the epoch Redis holds, or rebuild when there is none."""
    store = service.store
    store.guarded = True
    current = await store.read_epoch()
    if current is not None:
        store.epoch = current
        return None
    log.info("no state epoch in Redis: rebuilding the state from Kafka before consuming")
    return await _rebuild_once(service, None)


async def heal(service: Service, consumer: AIOKafkaConsumer | None) -> RebuildReport | None:
    """The state was found lost while running: rebuild (or adopt another instance's rebuild), then rewind."""
    store = service.store
    service.healing = True
    if store.parsed is not None:  # nothing parsed before the loss is worth keeping (a hit needs the same bytes anyway)
        store.parsed.clear()
    service.metrics.state_losses.labels(service.name).inc()
    log.warning("patient state lost from Redis: consumption stopped, readiness off, rebuilding from Kafka")
    try:
        found = await store.read_epoch()
        report: RebuildReport | None = None
        if found is not None and found != store.epoch:  # another instance (or an operator) rebuilt already
            store.epoch = found
            log.warning("state rebuilt by another instance: adopting it")
        else:
            report = await _rebuild_once(service, found)
        if consumer is not None:
            await rewind(consumer)
        return report
    finally:
        service.healing = False


def lock_key(service: Service) -> str:
    return f"{service.store.ns}:rebuild-lock"


async def _rebuild_once(service: Service, expected: bytes | None) -> RebuildReport | None:
    """Rebuild under the service's rebuild lock, or wait for the instance holding it and adopt its epoch (None).
    `expected`: the epoch Redis held when the loss was seen (None: none)."""
    store, redis = service.store, service.redis
    key, token = lock_key(service), uuid.uuid4().hex
    ttl_ms = max(1, int(service.settings.rebuild_lock_ttl_s * 1000))
    while True:
        if await redis.set(key, token, nx=True, px=ttl_ms):
            renewing = asyncio.create_task(_renew(service, key, token, ttl_ms))
            try:
                now = await store.read_epoch()
                if now is not None and now != expected:  # rebuilt by another instance between the loss and the lock
                    store.epoch = now
                    log.warning("state rebuilt by another instance: adopting it")
                    return None
                return await _rebuild(service, expected)
            finally:
                renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewing
                await redis.eval(_RELEASE, 1, key, token)
        log.warning("another instance is rebuilding the state: waiting for it, not ready")
        while True:
            await asyncio.sleep(WAIT_POLL_S)
            now = await store.read_epoch()
            if now is not None and now != expected:
                store.epoch = now
                log.warning("state rebuilt by another instance: adopting it")
                return None
            if not await redis.exists(key):  # its holder stopped without an epoch: take over
                break


async def _renew(service: Service, key: str, token: str, ttl_ms: int) -> None:
    """Keep the lock while rebuilding (a rebuild longer than the TTL keeps it; a dead holder's lock expires)."""
    while True:
        await asyncio.sleep(ttl_ms / 3000)
        try:
            if not await service.redis.eval(_RENEW, 1, key, token, ttl_ms):
                log.warning("rebuild lock lost (expired or taken over): the epoch check keeps one rebuild's state")
                return
        except Exception:  # Redis unreachable for a moment: the rebuild's own writes will fail and retry
            log.warning("rebuild lock not renewed (Redis unreachable)")


async def _rebuild(service: Service, expected: bytes | None) -> RebuildReport:
    t0 = time.perf_counter()
    report = await rebuild(service, expected)
    service.metrics.rebuild_seconds.labels(service.name).observe(time.perf_counter() - t0)
    # a loss healed (events replayed, outputs republished) is worth a warning; a clean start (empty topics,
    # nothing rebuilt) is not
    healed = bool(report.events or report.patients or report.published)
    log.log(
        logging.WARNING if healed else logging.INFO,
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
