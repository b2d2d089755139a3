"""The service runtime: typed, declarative Kafka handlers around pure clinical rules.

    service = Service(settings)

    @service.subscriber(LAB_RESULTS)
    async def on_lab(event: LabResult, ctx: Context) -> list[Message]:
        ...

Delivery is at-least-once. For each batch the loop decodes and validates every record, skips event IDs
already processed, calls the handlers (aggregates: new state and outputs written to Redis in one
transaction, the outputs in the patient's outbox) and queues the outputs (and dead letters). Finishing it (waiting
until the broker has acknowledged every output, clearing the outboxes and marking the event IDs processed in one
Redis step, and only then committing the offsets) overlaps the processing of the next batch, strictly in order: a
batch's finish begins with its predecessor's, so a failure stops every later batch before its commit.
A record that cannot be decoded, fails validation or is rejected by a rule goes to the dead-letter topic
with its reason; processing goes on. Transient errors (Redis or Kafka unreachable) are retried with
backoff; when retries run out the loop stops without committing, so the records are delivered again after
a restart.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer
from pydantic import BaseModel

from contracts.base import Message
from contracts.topics import TOPICS, Topic, clock_topic
from shared.observability.lag import LagMonitor
from shared.observability.metrics import Metrics, OpsMetrics
from shared.observability.tracing import Tracing
from shared.runtime import decoding, healing, limits, membership, reading, retrying
from shared.runtime.batch import Batches
from shared.runtime.changelog import Writer
from shared.runtime.kafka import Producer, ensure_topics
from shared.runtime.pace import FetchPace
from shared.runtime.parsed import ParsedStates
from shared.runtime.state import AnyRedis, StateLost, StateStore
from shared.runtime.subscription import HandlerFn, Subscription
from shared.runtime.timers import Timers
from shared.settings import Settings
from shared.transport import kafka_client_kwargs, redis_client, redis_node_client

log = logging.getLogger(__name__)

A = TypeVar("A", bound=BaseModel)


async def _drain(finishing: deque[asyncio.Task[None]]) -> bool:
    """Wait for the batches still finishing, in order; True when one found the state lost (other errors raise)."""
    lost = False
    while finishing:
        try:
            await finishing.popleft()
        except StateLost:
            lost = True
    return lost


def _tune_gc(young: int) -> None:
    """What exists at start (modules, clients, settings) leaves the collector's generations, and the youngest
    generation is collected every `young` allocations (GC_YOUNG_THRESHOLD; 0: Python's defaults)."""
    if young <= 0:
        return
    gc.collect()  # nothing collectable is frozen
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, old)


class Service:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings = settings
        #: wall clock for time-dependent decisions and timers (a test may pass another)
        self.clock = clock
        self.name = settings.service_name
        self.subscriptions: dict[str, Subscription] = {}
        self.metrics = Metrics(self.name)
        self.redis: AnyRedis = redis_client(settings)
        self.store = StateStore(
            self.redis,
            self.name,
            settings.seen_ttl_seconds,
            settings.state_ttl_seconds,
            node_client=lambda host, port: redis_node_client(settings, host, port),  # issue 22: Redis Cluster
        )
        if settings.parsed_states_per_process > 0:  # issue 25: states not parsed again for every batch
            self.store.parsed = ParsedStates(settings.parsed_states_per_process)
        self.decode_pool = limits.DecodePool(settings.decode_workers, self.name)
        self.producer = Producer(settings)
        # issue 14: lag, batch, dead-letter, outbox and Redis metrics (observability/metrics.py); tracing
        # (observability/tracing.py)
        self.ops = OpsMetrics(self.metrics.registry, self.name)
        self.ops.count_redis_round_trips(self.redis)
        self.producer.on_dead_letter = self.ops.dead_letter
        self.tracing = Tracing(settings)
        self._lag: LagMonitor | None = None
        self._lag_task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.on_fatal: Callable[[BaseException], None] | None = None
        self.fatal: BaseException | None = None
        #: True while the state is rebuilt (shared/runtime/healing.py): not ready, nothing consumed or committed
        self.healing = False
        #: while starting or healing, where it is (why not ready: `not_ready_reasons`; HAZ-25-HEAL-01)
        self.heal_status: healing.HealStatus | None = None
        self._not_ready_since: float | None = None
        self._not_ready_logged = 0.0
        #: keys a service derives from its patients' states besides the states (an index), written by a rebuild
        #: in the same transaction as the states: `rebuild_writes(pipe, states)`
        self.rebuild_writes: Callable[[Any, Mapping[str, BaseModel]], None] | None = None
        self._state_checked = False
        #: shared/runtime/timers.py, when the aggregate declares deadlines (`due`)
        self.timers: Timers | None = None
        self._due: Callable[[Any], datetime | None] | None = None
        #: after a replay, the aggregate's record of what downstream holds, from its outputs (shared/runtime/rebuild.py)
        self.recall_published: Callable[[Any, list[tuple[str, bytes]]], Any] | None = None
        self._timer_task: asyncio.Task[None] | None = None
        #: processing a batch and finishing it (shared/runtime/batch.py)
        self.batches = Batches(self)
        #: issue 13: a long fetch wait while idle (shared/runtime/pace.py)
        self.pace = FetchPace(settings)
        #: issue 22: the compacted changelog of the patients' states (STATE_CHANGELOG; shared/runtime/changelog.py)
        self.changelog: Writer | None = Writer(self.name) if settings.state_changelog else None

    # ---- declaration -------------------------------------------------------------------------
    def subscriber(
        self,
        topic: Topic,
        decode: decoding.Decoder | None = None,
        idempotency_key: Callable[[Any], str] | None = None,
    ) -> Callable[[HandlerFn], HandlerFn]:
        def register(fn: HandlerFn) -> HandlerFn:
            sub = Subscription(topic, decoding.hospital_decoder(topic, decode, self.settings), handler=fn)
            if idempotency_key is not None:
                sub.idempotency_key = idempotency_key
            self.subscriptions[topic.name] = sub
            return fn

        return register

    def patient_aggregate(
        self,
        topics: Sequence[Topic],
        model: type[A],
        apply: Callable[[A, Any], tuple[A, Sequence[Message]]],
        decode: decoding.Decoder | None = None,
        idempotency_key: Callable[[Any], str] | None = None,
        due: Callable[[A], datetime | None] | None = None,
        recall_published: Callable[[A, list[tuple[str, bytes]]], A] | None = None,
    ) -> None:
        """Subscribe `apply` (a pure transition of the per-patient aggregate `model`) to `topics`.

        The loop reads the aggregate, applies the patient's events of the batch in order, writes it back
        atomically (one Redis transaction per patient per batch) and publishes the outputs. `apply` may
        raise `Rejected`; that event is dead-lettered and the others still apply. A decoded message with a
        non-empty `rejections` list (a batch format such as HL7 with one bad OBX) is dead-lettered with
        those reasons and its good part still applies. `decode` gets the record and must return an object
        with a `patient_id`. `due(state)` is the patient's next deadline: when it passes, a clock tick for that
        patient is applied like any other event (shared/runtime/timers.py). `recall_published(state, outputs)` gives
        a replayed state what it records of its published outputs that the replay cannot recompute (a version ID that
        depends on the order the live service saw the events in): `outputs` are the patient's (topic, value) on the
        service's output topics, in publication order."""
        self.recall_published = recall_published
        models = {sub.aggregate[0] for sub in self.subscriptions.values() if sub.aggregate is not None}
        if models - {model}:
            raise ValueError("one patient aggregate per service")
        for topic in topics:
            sub = Subscription(topic, decoding.hospital_decoder(topic, decode, self.settings), aggregate=(model, apply))
            if idempotency_key is not None:
                sub.idempotency_key = idempotency_key
            self.subscriptions[topic.name] = sub
        if due is not None:
            timers = self.use_timers()
            self._due = due
            self.subscriptions[timers.topic.name] = Subscription(
                timers.topic, decoding.json_decoder(timers.topic.value), aggregate=(model, apply)
            )

    def use_timers(self, on_tick: HandlerFn | None = None) -> Timers:
        """Per-patient deadlines (shared/runtime/timers.py). An aggregate passes `due=` to `patient_aggregate`; a plain
        handler sets deadlines with `timers.schedule(patient, due)` and receives the ticks in `on_tick`."""
        if self.timers is None:
            self.timers = Timers(self.redis, self.name, clock_topic(self.name), self.settings, self.clock)
        if on_tick is not None:
            topic = self.timers.topic
            self.subscriptions[topic.name] = Subscription(topic, decoding.json_decoder(topic.value), handler=on_tick)
        return self.timers

    def due(self, state: BaseModel) -> datetime | None:
        """The patient's next deadline according to the aggregate (None without timers)."""
        return None if self._due is None else self._due(state)

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        _tune_gc(s.gc_young_threshold)
        own = [] if self.changelog is None else [self.changelog.topic]
        await ensure_topics(s, {*TOPICS, *own, *(sub.topic for sub in self.subscriptions.values())})
        await self.producer.start()
        if self.subscriptions:
            self._consumer = AIOKafkaConsumer(
                *self.subscriptions,
                **kafka_client_kwargs(s),
                group_id=self.name,
                client_id=f"{s.kafka_client_id_prefix}-{self.name}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=s.kafka_session_timeout_ms,
                heartbeat_interval_ms=s.kafka_heartbeat_interval_ms,
                fetch_max_wait_ms=s.kafka_fetch_max_wait_ms,
                max_poll_records=s.kafka_max_poll_records,
            )
            await self._consumer.start()
            self.pace.attach(self._consumer)
            self._task = asyncio.create_task(self._run(), name=f"{self.name}-consumer")
            self._task.add_done_callback(self._on_done)
        if self._consumer is not None:
            self._lag = LagMonitor(s, {self.name: list(self.subscriptions)}, self.ops.gauges)
            await self._lag.start()
            self._lag_task = asyncio.create_task(
                self._lag.run(self._stopping, s.lag_interval_s, self._sample_readiness), name=f"{self.name}-lag"
            )
        if self.timers is not None:
            self._timer_task = asyncio.create_task(
                self.timers.run(self.producer, self._stopping), name=f"{self.name}-timers"
            )
        log.info("service started", extra={"group": self.name})

    async def stop(self) -> None:
        """Drain: finish the batch in hand, commit it, then close clients."""
        self._stopping.set()
        if self._timer_task is not None:
            await asyncio.gather(self._timer_task, return_exceptions=True)
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=30)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            except Exception:
                pass
        if self._consumer is not None:
            await self._consumer.stop()
        if self._lag is not None:
            await asyncio.gather(*[t for t in (self._lag_task,) if t is not None], return_exceptions=True)
            await self._lag.stop()
        await self.producer.stop()
        await self.redis.aclose()
        await self.store.aclose()
        self.decode_pool.close()
        self.tracing.shutdown()
        log.info("service stopped")

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        self.fatal = task.exception()
        log.critical("consumer loop failed; offsets not committed", exc_info=self.fatal)
        if self.on_fatal is not None and self.fatal is not None:
            self.on_fatal(self.fatal)

    @property
    def healthy(self) -> bool:
        return self.fatal is None and (self._task is None or not self._task.done() or self._stopping.is_set())

    async def readiness(self) -> dict[str, bool]:
        try:
            redis_ok = bool(await asyncio.wait_for(self.redis.ping(), timeout=2))
        except Exception:
            redis_ok = False
        checks = {"redis": redis_ok, "kafka": await self.producer.ready()}
        if self._task is not None:  # the consumer's state is in place and intact (epoch; shared/runtime/healing.py)
            checks["state"] = redis_ok and self._state_checked and not self.healing and await self._intact_bounded()
            checks["consumer_loop"] = not self._task.done()  # HAZ-25-HEAL-01: a dead loop is not ready either
        if self._consumer is not None:
            checks["consumer_assigned"] = bool(self._consumer.assignment())
        return checks

    async def _intact_bounded(self) -> bool:
        try:
            return await asyncio.wait_for(self._intact(), 2)
        except Exception:
            return False

    def not_ready_reasons(self, checks: Mapping[str, bool]) -> dict[str, str]:
        """Why each failing check fails, as far as known (`/readyz`; no patient data)."""
        reasons = {name: "failing" for name, ok in checks.items() if not ok}
        if "redis" in reasons:
            reasons["redis"] = "Redis not answering a PING within 2 s"
        if "state" in reasons:
            status = self.heal_status
            if status is not None:
                reasons["state"] = status.reason()
            else:
                reasons["state"] = "the state epoch is not in Redis (a loss the loop has not seen yet) or Redis is down"
        if "consumer_loop" in reasons:
            why = type(self.fatal).__name__ if self.fatal is not None else "stopping"
            reasons["consumer_loop"] = f"the consumer loop stopped ({why})"
        if "consumer_assigned" in reasons:
            reasons["consumer_assigned"] = "no partition assigned to this instance (group joining or rebalancing)"
        return reasons

    async def _sample_readiness(self) -> None:
        checks = await self.readiness()
        ready = all(checks.values())
        self.ops.ready.labels(self.name).set(float(ready))
        now = time.monotonic()
        if ready:
            self._not_ready_since = None
            return
        since = self._not_ready_since = self._not_ready_since or now
        if now - self._not_ready_logged >= healing.NOT_READY_LOG_S:  # HAZ-25-HEAL-01: never silently not ready
            self._not_ready_logged = now
            log.warning(
                "not ready", extra={"checks": sorted(self.not_ready_reasons(checks)), "seconds": round(now - since)}
            )

    # ---- the loop ----------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        await self._retry(healing.ensure_state, self)
        self._state_checked = True
        watchdog = time.monotonic()
        size = self.settings.kafka_max_poll_records

        def fresh() -> limits.FairBacklog:  # fair batches across patients
            s = self.settings
            return limits.FairBacklog(
                s.read_ahead_records,
                s.max_records_per_patient_per_batch,
                s.max_bytes_per_patient_per_batch,
                s.max_seconds_per_patient_per_batch,
            )

        backlog = fresh()
        # Pipelined finish: a batch's finish (acks, outboxes cleared and IDs marked, commit) runs while the next batch
        # is fetched and processed. Each finish first awaits the one before it (commits in order; a failure stops
        # every later commit), and at most one finish is left running when the next batch has been sent.
        finishing: deque[asyncio.Task[None]] = deque()
        watch = membership.LoopWatch(self.settings)  # issue 22: a blocked loop lets the group session lapse
        watch.start()
        checked, joined = time.perf_counter(), membership.generation(consumer)  # the last stall check
        try:
            while not self._stopping.is_set():
                backlog.retain(consumer.assignment())
                wait = 0 if backlog.size else 200
                while backlog.room() > 0:  # read ahead past one patient's flood
                    batch = await consumer.getmany(timeout_ms=wait, max_records=min(size, backlog.room()))
                    if not batch:
                        break
                    backlog.add(batch)
                    wait = 0
                # one patient's events from several topics in the order they were published (each partition's
                # own order kept), as the rebuild replays them: a decision caused by an event comes after it
                records = reading.in_publication_order(backlog.take(size))
                self.pace.fetched(
                    len(records)
                )  # idle for KAFKA_IDLE_AFTER_S: long fetch waits (shared/runtime/pace.py)
                if not records:
                    lost = bool(finishing) and finishing[-1].done() and await _drain(finishing)  # errors surface
                    if not lost and time.monotonic() - watchdog > healing.WATCHDOG_INTERVAL_S:  # idle: state there?
                        watchdog = time.monotonic()
                        lost = not await self._retry(self._intact)
                    if lost:
                        await _drain(finishing)
                        await healing.heal(self, consumer)
                        backlog = fresh()
                    continue
                stalled, before = watch.stalled_since(checked), joined
                checked, joined = time.perf_counter(), membership.generation(consumer)
                try:
                    if stalled:  # issue 22: the loop blocked past the group session (shared/runtime/membership.py)
                        if await _drain(finishing):  # their marks written before the records are read again
                            raise StateLost("the state was lost while the batches before a stall finished")
                        if await membership.settle(consumer, before, self.settings, self._stopping):
                            # rejoined: what was fetched past the commits (this batch, the read-ahead) comes again
                            await self._retry(healing.rewind, consumer)
                            backlog = fresh()
                            checked, joined = time.perf_counter(), membership.generation(consumer)
                            continue
                    sent = await self.batches.process(records)
                    backlog.note_costs(sent.costs)
                    previous = finishing[-1] if finishing else None
                    finishing.append(self.batches.finish_after(sent, previous, backlog, consumer))
                    while len(finishing) > 1:
                        await finishing.popleft()
                except StateLost:  # nothing of this batch is committed; it is delivered again after the rebuild
                    await _drain(finishing)
                    await healing.heal(self, consumer)
                    backlog = fresh()  # what was read ahead is fetched again from the committed offsets
                    continue
            await _drain(finishing)  # stopping: the last batches finish and commit (a lost state: next start rebuilds)
        finally:
            watch.stop()
            await asyncio.gather(*finishing, return_exceptions=True)  # an error stops the loop: nothing later commits

    async def _intact(self) -> bool:
        return await self.store.intact()

    async def _retry(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return await retrying.retry(self.settings, fn, *args)
