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

Never silently not ready (HAZ-25-HEAL-01): every Redis command of this path is bounded (`REDIS_OP_TIMEOUT_S`: a
Redis that stops answering is a transient error, not a wait without end); a rebuild attempt that fails is logged
and retried with backoff; the lock's renewal is stopped by an event (an EVAL in flight finishes, it is not cancelled
mid-protocol) and its release is bounded (a lock not released expires by its TTL); while not ready, `/readyz` names
the phase (`HealStatus.reason`) and a WARNING says so every `NOT_READY_LOG_S` (counts and seconds, no patient data).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from shared.runtime.rebuild import Letter, RebuildReport, rebuild
from shared.runtime.retrying import TRANSIENT

if TYPE_CHECKING:
    from shared.runtime.service import Service

log = logging.getLogger(__name__)

#: how often an idle loop checks the epoch (a busy one checks it in every transaction)
WATCHDOG_INTERVAL_S = 1.0
#: how often an instance waiting for another's rebuild looks for the new epoch
WAIT_POLL_S = 0.1
#: the longest one Redis command of this path may take (HAZ-25-HEAL-01); longer is a transient error
REDIS_OP_TIMEOUT_S = 5.0
#: the longest one partition's committed offset may take to read while rewinding
REWIND_TIMEOUT_S = 30.0
#: backoff between failed rebuild attempts: the first, then doubling up to the last
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
#: a failure that is not transient (not Redis or Kafka unreachable) is retried this many times, then raised: the
#: consumer loop stops and the process exits for its orchestrator to restart it (a fresh process, a visible crash)
MAX_OTHER_FAILURES = 5
#: while the state is being rebuilt (not ready), a WARNING every this many seconds
NOT_READY_LOG_S = 15.0

T = TypeVar("T")


@dataclass
class HealStatus:
    """Where a start or a heal is (why the service is not ready): `/readyz` gives `reason()`."""

    phase: str = "rebuilding the state from Kafka"
    since: float = field(default_factory=time.monotonic)
    attempt: int = 1
    #: the type of the last failure (no message: it may hold patient data)
    failed: str | None = None
    #: the letters (topic, partition, offset, error type) this heal's attempts sent, acknowledged: a retried attempt
    #: does not send them again (review RZ)
    lettered: set[Letter] = field(default_factory=set)

    def reason(self) -> str:
        seconds = round(time.monotonic() - self.since)
        last = f", last attempt failed: {self.failed}" if self.failed else ""
        return f"{self.phase} for {seconds} s (attempt {self.attempt}{last})"


async def _bounded(command: Awaitable[T]) -> T:
    """A Redis command of this path, with a bound (a Redis that stops answering: TimeoutError, retried)."""
    return await asyncio.wait_for(command, REDIS_OP_TIMEOUT_S)


def is_transient(exc: BaseException) -> bool:
    """A failure worth waiting out without end: the runtime's transient errors, and every Kafka error aiokafka
    itself calls retriable (a leader moving, a node not ready during a broker failover; review RZ)."""
    return isinstance(exc, TRANSIENT) or (isinstance(exc, KafkaError) and exc.retriable)


async def _until_done(service: Service, step: Callable[[], Awaitable[T]]) -> T:
    """`step()` until it succeeds: a failure is logged and retried with backoff, never left as a silent not-ready
    (a transient one without end, another `MAX_OTHER_FAILURES` times, then raised)."""
    status = service.heal_status or HealStatus()
    delay, others = RETRY_FIRST_S, 0
    while True:
        try:
            return await step()
        except Exception as exc:  # (CancelledError is not an Exception: a stop still stops)
            status.failed = type(exc).__name__
            transient = is_transient(exc)
            others += not transient
            if others >= MAX_OTHER_FAILURES:
                raise
            log.warning(
                "state rebuild attempt failed: retrying, not ready",
                extra={
                    "attempt": status.attempt,
                    "error_type": status.failed,
                    "transient": transient,
                    "retry_in_s": delay,
                },
            )
            await asyncio.sleep(delay)
            delay = min(2 * delay, RETRY_MAX_S)
            status.attempt += 1


async def _report(service: Service, status: HealStatus) -> None:
    """A WARNING every NOT_READY_LOG_S while the state is being rebuilt."""
    while True:
        await asyncio.sleep(NOT_READY_LOG_S)
        log.warning(
            "not ready: the state is being rebuilt",
            extra={
                "phase": status.phase,
                "seconds": round(time.monotonic() - status.since),
                "attempt": status.attempt,
                "error_type": status.failed,
            },
        )


async def _reporting(service: Service, status: HealStatus, work: Callable[[], Awaitable[T]]) -> T:
    """`work()` with `status` published on the service (readiness) and reported every NOT_READY_LOG_S."""
    service.heal_status = status
    reporter = asyncio.create_task(_report(service, status), name=f"{service.name}-heal-report")
    try:
        return await work()
    finally:
        reporter.cancel()
        service.heal_status = None


# KEYS: the lock. ARGV: this holder's token, TTL in ms. Renew (PEXPIRE) or release (DEL) only a lock still ours.
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


async def ensure_state(service: Service) -> RebuildReport | None:
    """At start: adopt the epoch Redis holds, or rebuild when there is none."""
    store = service.store
    store.guarded = True

    async def once() -> RebuildReport | None:
        current = await _bounded(store.read_epoch())
        if current is not None:
            store.epoch = current
            return None
        log.info("no state epoch in Redis: rebuilding the state from Kafka before consuming")
        return await _rebuild_once(service, None)

    return await _reporting(
        service, HealStatus("starting: adopting or rebuilding the state"), lambda: _until_done(service, once)
    )


async def heal(service: Service, consumer: AIOKafkaConsumer | None) -> RebuildReport | None:
    """The state was found lost while running: rebuild (or adopt another instance's rebuild), then rewind."""
    store = service.store
    service.healing = True
    if store.parsed is not None:  # nothing parsed before the loss is worth keeping (a hit needs the same bytes anyway)
        store.parsed.clear()
    service.metrics.state_losses.labels(service.name).inc()
    log.warning("patient state lost from Redis: consumption stopped, readiness off, rebuilding from Kafka")
    status = HealStatus()

    async def once() -> RebuildReport | None:
        found = await _bounded(store.read_epoch())
        if found is not None and found != store.epoch:  # another instance (or an operator) rebuilt already
            store.epoch = found
            log.warning("state rebuilt by another instance: adopting it")
            return None
        return await _rebuild_once(service, found)

    async def work() -> RebuildReport | None:
        report = await _until_done(service, once)
        if consumer is not None:
            status.phase = "rewinding the consumer to its committed offsets"
            await _until_done(service, lambda: rewind(consumer))
        return report

    try:
        return await _reporting(service, status, work)
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
    status = service.heal_status or HealStatus()
    while True:
        if await _bounded(redis.set(key, token, nx=True, px=ttl_ms)):
            status.phase = "rebuilding the state from Kafka"
            stop = asyncio.Event()
            renewing = asyncio.create_task(_renew(service, key, token, ttl_ms, stop))
            try:
                now = await _bounded(store.read_epoch())
                if now is not None and now != expected:  # rebuilt by another instance between the loss and the lock
                    store.epoch = now
                    log.warning("state rebuilt by another instance: adopting it")
                    return None
                return await _rebuild(service, expected)
            finally:
                await _release(service, key, token, ttl_ms, stop, renewing)
        log.warning("another instance is rebuilding the state: waiting for it, not ready")
        status.phase = "waiting for another instance's rebuild"
        while True:
            await asyncio.sleep(WAIT_POLL_S)
            now = await _bounded(store.read_epoch())
            if now is not None and now != expected:
                store.epoch = now
                log.warning("state rebuilt by another instance: adopting it")
                return None
            if not await _bounded(redis.exists(key)):  # its holder stopped without an epoch: take over
                log.warning("the rebuild lock expired without a new state: taking over the rebuild")
                break


async def _release(
    service: Service, key: str, token: str, ttl_ms: int, stop: asyncio.Event, renewing: asyncio.Task[None]
) -> None:
    """Stop renewing (an EVAL in flight finishes: never cancelled mid-protocol unless Redis stopped answering), then
    release the lock, bounded: a lock not released expires by its TTL, and this instance goes on (HAZ-25-HEAL-01)."""
    stop.set()
    try:
        await asyncio.wait_for(renewing, REDIS_OP_TIMEOUT_S)
    except TimeoutError:
        log.warning("rebuild lock renewal did not stop in time (Redis not answering)")
    try:
        await _bounded(service.redis.eval(_RELEASE, 1, key, token))
    except Exception as exc:
        log.warning(
            "rebuild lock not released (Redis not answering): it expires by its TTL",
            extra={"error_type": type(exc).__name__, "ttl_s": ttl_ms / 1000},
        )


async def _renew(service: Service, key: str, token: str, ttl_ms: int, stop: asyncio.Event) -> None:
    """Keep the lock while rebuilding (a rebuild longer than the TTL keeps it; a dead holder's lock expires), until
    `stop` is set."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ttl_ms / 3000)
        if stop.is_set():
            return
        try:
            if not await _bounded(service.redis.eval(_RENEW, 1, key, token, ttl_ms)):
                log.warning("rebuild lock lost (expired or taken over): the epoch check keeps one rebuild's state")
                return
        except Exception:  # Redis unreachable for a moment: the rebuild's own writes will fail and retry
            log.warning("rebuild lock not renewed (Redis unreachable)")


async def _rebuild(service: Service, expected: bytes | None) -> RebuildReport:
    t0 = time.perf_counter()
    report = await rebuild(service, expected)  # (a retry sends no letter twice: `HealStatus.lettered`, review RZ)
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
        offset = await asyncio.wait_for(consumer.committed(tp), REWIND_TIMEOUT_S)  # bounded (HAZ-25-HEAL-01)
        if offset is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)
