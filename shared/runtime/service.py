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
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord, RecordMetadata
from pydantic import BaseModel, ValidationError

from contracts.base import Message
from contracts.topics import TOPICS, Topic, clock_topic
from shared.errors import Rejected
from shared.observability.lag import LagMonitor
from shared.observability.metrics import Metrics, OpsMetrics, origin_of
from shared.observability.tracing import Headers, Tracing, output_headers
from shared.runtime import decoding, healing, limits, membership, reading, retrying
from shared.runtime.aggregate import Applied, Apply, apply_batch, letter_of
from shared.runtime.changelog import Change, Writer
from shared.runtime.changelog import encode as changelog_encode
from shared.runtime.kafka import Outgoing, Producer, ensure_topics
from shared.runtime.pace import FetchPace
from shared.runtime.parsed import ParsedStates
from shared.runtime.state import AnyRedis, StateLost, StateStore
from shared.runtime.timers import Timers
from shared.settings import Settings
from shared.transport import kafka_client_kwargs, redis_client, redis_node_client

log = logging.getLogger(__name__)

A = TypeVar("A", bound=BaseModel)


class Context(NamedTuple):
    """What a handler may use besides its message (immutable; built once per message)."""

    store: StateStore
    settings: Settings
    record: ConsumerRecord


HandlerFn = Callable[[Any, Context], Awaitable[Sequence[Message]]]


async def _drain(finishing: deque[asyncio.Task[None]]) -> bool:
    """Wait for the batches still finishing, in order; True when one found the state lost (other errors raise)."""
    lost = False
    while finishing:
        try:
            await finishing.popleft()
        except StateLost:
            lost = True
    return lost


def _patient_of(d: _Decoded) -> str:
    """The patient of a decoded record (its processed mark lives in that patient's slot group): the message's
    `patient_id`, else the record's key (records are keyed by patient)."""
    patient = getattr(d.message, "patient_id", None)
    return str(patient) if patient is not None else (d.record.key or b"").decode(errors="replace")


def _merged(parts: list[Applied[Any]]) -> Applied[Any]:
    """The slot groups' results of one batch as one (each patient's outputs stay in order)."""
    out: Applied[Any] = Applied()
    for part in parts:
        out.results += part.results
        out.resend += part.resend
        out.outboxes.update(part.outboxes)
        out.seconds.update(part.seconds)
    return out


def _delivery_key(message: Any) -> str:
    return message.delivery_key() if isinstance(message, Message) else str(message.event_id)


@dataclass
class Subscription:
    topic: Topic
    decode: decoding.Decoder
    #: a plain async handler, or
    handler: HandlerFn | None = None
    #: a pure transition of the per-patient aggregate `model`: (state, event) -> (state, outputs)
    aggregate: tuple[type[BaseModel], Apply] | None = None
    idempotency_key: Callable[[Any], str] = field(default=lambda m: _delivery_key(m))


@dataclass
class _Sent:
    """A processed batch whose outputs are queued: what finishing it needs."""

    records: list[ConsumerRecord]
    acks: list[asyncio.Future[Any]]
    outboxes: dict[str, str]
    #: (patient, event ID) of the events to mark processed (the mark lives in the patient's slot group)
    done_keys: list[tuple[str, str]]
    t0: float
    #: issue 22: the batch's changelog records, sent once its outputs are acknowledged (shared/runtime/changelog.py)
    changelog: list[Change] = field(default_factory=list)
    #: issue 25: per patient, the seconds its events took to apply and how many (the backlog's time budget)
    costs: dict[str, tuple[float, int]] = field(default_factory=dict)


@dataclass(slots=True)
class _Decoded:
    record: ConsumerRecord
    sub: Subscription
    message: BaseModel | None = None
    error: tuple[str, str] | None = None
    key: str | None = None
    #: issue 14: the record's trace span (None when tracing is off) and its hospital input's time (ms)
    span: Any = None
    origin_ms: int = 0

    @property
    def apply(self) -> Apply:
        """The transition of the aggregate this event goes to (shared/runtime/aggregate.py)."""
        assert self.sub.aggregate is not None
        return self.sub.aggregate[1]


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
        #: the pipelined finish (see `_run`): the newest batch still finishing, the event IDs it marks and the
        #: patients whose outbox it clears
        self._finishing: asyncio.Task[None] | None = None
        self._in_flight_keys: set[str] = set()
        self._in_flight_patients: set[str] = set()
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
                    sent = await self._process_batch(records)
                    backlog.note_costs(sent.costs)
                    previous = finishing[-1] if finishing else None
                    self._finishing = asyncio.create_task(self._finish(sent, previous, backlog, consumer))
                    finishing.append(self._finishing)
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

    async def _finish(
        self,
        sent: _Sent,
        previous: asyncio.Task[None] | None,
        backlog: limits.FairBacklog,
        consumer: AIOKafkaConsumer,
    ) -> None:
        """After the batch before it: wait for every output's acknowledgement, then in one Redis step clear the
        outboxes and mark the event IDs processed, then commit. Any failure raises before the commit."""
        try:
            if previous is not None:
                await previous  # strictly in order: its failure is this batch's too
            await self.producer.acknowledged(sent.acks)  # every output acknowledged before anything is marked
            # issue 22: the states whose outputs are acknowledged go to the changelog before the commit
            logged = [] if self.changelog is None else await self.changelog.send(self.producer, sent.changelog)
            await self._retry(self.store.finish, sent.outboxes, sent.done_keys)
            await self.producer.acknowledged(logged)
            if sent.outboxes:
                self.ops.outbox_cleared()
        finally:
            self._in_flight_keys.difference_update(key for _, key in sent.done_keys)
            self._in_flight_patients.difference_update(sent.outboxes)
        assigned = consumer.assignment()  # a partition revoked meanwhile is the new owner's to commit
        if commits := {tp: at for tp, at in backlog.done(sent.records).items() if tp in assigned}:
            try:
                await consumer.commit(commits)
            except CommitFailedError:
                # issue 22: expelled from the group (a session outlived by a coordinator's failover, a stalled
                # loop): the group has moved on. Not fatal: these records go to the partitions' next owner (this
                # process too, once it rejoins) from the last commit, and the processed marks skip them there.
                self.ops.commits_refused.labels(self.name).inc()
                log.warning("offset commit refused after a rebalance; the batch is delivered again and skipped")
                return
            if self.changelog is not None:
                self.changelog.committed(commits)
        self.ops.batch_seconds.labels(self.name).observe(time.perf_counter() - sent.t0)

    async def _process_batch(self, records: list[ConsumerRecord]) -> _Sent:
        """Decode, deduplicate, handle and queue the outputs of one batch (nothing awaited from the broker here)."""
        t0 = time.perf_counter()
        self.ops.records_ahead(records, self.settings.clock_skew_tolerance_seconds)  # HAZ-27-FUTURE-HIDES
        # parsing off the event loop, but for a light batch (plain JSON, DECODE_INLINE_BYTES at most)
        inline = sum(len(r.value or b"") for r in records) <= self.settings.decode_inline_bytes and all(
            decoding.light(self.subscriptions[topic].decode) for topic in {r.topic for r in records}
        )
        decoded = await self.decode_pool.map(self._decode, records, inline)
        noted: dict[str, dict[str, int]] = {}  # issue 22: the records each patient's changelog record will say it holds
        if self.changelog is not None:
            handled = [d for d in decoded if d.error is None and d.sub.aggregate is not None]
            noted = self.changelog.handled((d.record, d.message.patient_id) for d in handled)  # type: ignore[union-attr]
        refs = [(_patient_of(d), d.key) for d in decoded if d.key is not None]
        already = await self._retry(self.store.seen_many, refs) if refs else set()
        already |= self._in_flight_keys.intersection(key for _, key in refs)  # processed by a batch still finishing
        acks: list[asyncio.Future[Any]] = []
        work: list[_Decoded] = []
        for d in decoded:
            if d.error is not None:
                acks.append(await self._dead_letter(d, *d.error, outcome="dead_lettered"))
            elif d.key in already:
                self.metrics.count(d.record.topic, "duplicate")
                self.tracing.finish(d.span, "duplicate")
            else:
                assert d.key is not None
                already.add(d.key)
                work.append(d)
                partial = getattr(d.message, "__dict__", {}).get("rejections")  # a batch format's bad part
                if partial:
                    # the good part is processed (and counted) below; the bad part is dead-lettered
                    self.metrics.messages.labels(self.name, d.record.topic, "partially_rejected").inc()
                    acks.append(await self.producer.dead_letter(d.record, "PartiallyRejected", "; ".join(partial)))

        # One patient's events keep their order; one aggregate transaction per patient per batch.
        groups: dict[str, list[_Decoded]] = {}
        results: list[tuple[_Decoded, Sequence[Outgoing], BaseException | None]] = []
        for d in work:
            if d.sub.aggregate is not None:
                groups.setdefault(d.message.patient_id, []).append(d)  # type: ignore[union-attr]
            else:
                results.append(await self._run_handler(d))
        applied: Applied[_Decoded] = Applied()
        changelog: list[Change] = []
        if groups:
            applied, changelog = await self._retry(self._run_aggregates, groups, noted)
            results += applied.results
            self.ops.outbox_written(sum(len(r[1]) for r in applied.results), len(applied.resend))
        if self.changelog is not None:  # applied (or skipped as processed): kept until committed
            self.changelog.remember(noted)
        # outputs of an earlier attempt that stopped before the broker's ack go first, then this batch's, in order
        outgoing: list[tuple[Outgoing, Headers | None]] = [(pending, None) for pending in applied.resend]

        done_keys: list[tuple[str, str]] = []
        now = time.time()  # the outputs' latency from their hospital input (one clock reading per batch)
        for d, outputs, exc in results:
            topic = d.record.topic
            if isinstance(exc, Rejected):
                acks.append(await self._dead_letter(d, *letter_of(exc), outcome="rejected"))
                done_keys.append((_patient_of(d), d.key))  # type: ignore[arg-type]
                continue
            if exc is not None:
                acks.append(await self._dead_letter(d, *letter_of(exc), outcome="failed"))
                log.error("handler failed", exc_info=exc, extra={"topic": topic, "event_id": d.key})
                continue
            headers = output_headers(d.span, d.origin_ms)
            for message in outputs:
                out = message if isinstance(message, Outgoing) else Outgoing.of(message)  # encoded once
                outgoing.append((out, headers))
                self.ops.output(out.topic, out.value, d.origin_ms, now)
            self.metrics.count(topic, "processed")
            self.tracing.finish(d.span, "processed", outputs)
            done_keys.append((_patient_of(d), d.key))  # type: ignore[arg-type]
        acks += await self.producer.send_many(outgoing)
        for out, _ in outgoing:
            self.metrics.output(out.schema_id)
        self.metrics.flush()
        self._in_flight_keys.update(key for _, key in done_keys)
        self._in_flight_patients.update(applied.outboxes)
        return _Sent(records, acks, applied.outboxes, done_keys, t0, changelog, applied.seconds)

    async def _dead_letter(
        self, d: _Decoded, error_type: str, reason: str, outcome: str
    ) -> asyncio.Future[RecordMetadata]:
        self.metrics.count(d.record.topic, outcome)
        self.tracing.finish(d.span, outcome, error_type=error_type)
        log.warning(outcome, extra={"topic": d.record.topic, "offset": d.record.offset, "error_type": error_type})
        return await self.producer.dead_letter(d.record, error_type, reason)

    async def _run_handler(self, d: _Decoded) -> tuple[_Decoded, Sequence[Outgoing], BaseException | None]:
        assert d.sub.handler is not None
        t0 = time.perf_counter()
        context = Context(self.store, self.settings, d.record)
        try:
            try:
                outputs = await d.sub.handler(d.message, context)  # the first attempt: as `_retry`, inlined
            except retrying.TRANSIENT as failed:
                outputs = await retrying.retry_after(self.settings, failed, d.sub.handler, d.message, context)
        except retrying.TRANSIENT:
            raise
        except Exception as exc:
            return d, [], exc
        encoded = [Outgoing.of(o) for o in outputs]  # encoded once: checked here, sent by the loop
        try:
            limits.check_outputs(encoded, self.settings)
        except Rejected as exc:
            return d, [], exc
        self.metrics.handled(d.record.topic, time.perf_counter() - t0)
        return d, encoded, None

    async def _run_aggregates(
        self, groups: dict[str, list[_Decoded]], noted: Mapping[str, Mapping[str, int]] | None = None
    ) -> tuple[Applied[_Decoded], list[Change]]:
        """Apply each patient's events, in order, to its aggregate: one Redis transaction for the whole batch,
        which also writes the outputs to each patient's outbox (sent, then cleared once acknowledged). With a
        changelog, also the batch's changelog records (issue 22)."""
        if self._in_flight_patients.intersection(groups) and self._finishing is not None:
            # an outbox of the batch still finishing: cleared first, so this batch never sends its outputs again
            await self._finishing
        first = next(iter(groups.values()))[0]
        assert first.sub.aggregate is not None
        model = first.sub.aggregate[0]
        token = uuid.uuid4().hex
        t0 = time.perf_counter()
        dues: dict[str, datetime | None] = {}  # each patient's next deadline, written with its state
        due = None if self.timers is None else self.due
        marks = None if self.changelog is None else self.changelog.marks_for(groups, noted or {})
        changelogs: dict[str, list[Change]] = {}  # per slot group (issue 22: one transaction per group on a cluster)

        def apply_all(
            states: dict[str, BaseModel | None], pending: dict[str, bytes | None]
        ) -> tuple[Mapping[str, BaseModel | bytes | tuple[BaseModel, bytes]], dict[str, bytes], Applied[_Decoded]]:
            # the patients of one slot group (all of them on one Redis)
            part = {p: groups[p] for p in states}
            new, outboxes, applied, next_dues = apply_batch(part, model, states, pending, token, self.settings, due)
            dues.update(next_dues)
            if marks is not None:  # encoded here, off the event loop (a retried transaction encodes again)
                empty = model().model_dump_json().encode()
                changelogs[next(iter(part), "")] = changelog_encode(
                    self.name, new, next_dues, marks, empty, datetime.now(UTC)
                )
            return new, outboxes, applied

        timers = self.timers
        also = None if timers is None else (lambda pipe, ps: timers.write(pipe, {p: dues.get(p) for p in ps}))
        applied = await self.store.transact_many(list(groups), model, apply_all, also=also, merge=_merged)
        changelog = [c for part in changelogs.values() for c in part]
        per_message = (time.perf_counter() - t0) / max(1, len(applied.results))
        for d, _, _ in applied.results:
            self.metrics.handled(d.record.topic, per_message)  # summed per topic, observed once (Metrics.flush)
        return applied, changelog

    def _decode(self, record: ConsumerRecord) -> _Decoded:
        d = _Decoded(
            record, self.subscriptions[record.topic], span=self.tracing.consume(record), origin_ms=origin_of(record)
        )
        d.message, d.key, d.error = self.decode_checked(record)
        return d

    def decode_checked(self, record: ConsumerRecord) -> tuple[BaseModel | None, str | None, tuple[str, str] | None]:
        """A record as the loop takes it: its message, its idempotency key and the refusal that dead-letters it before
        any transition (None: accepted). The rebuild's replay skips exactly what this refuses (review RO)."""
        sub = self.subscriptions[record.topic]
        if record.value is None:
            return None, None, ("EmptyMessage", "message has no value")
        if (refused := limits.check_record(record, self.settings) or limits.check_finite(record)) is not None:
            return None, None, refused
        message: BaseModel | None = None
        try:
            message = sub.decode(record)
            key = sub.idempotency_key(message)
            return message, key, limits.check_key(record, message)  # keyed by patient, or per-patient order breaks
        except ValidationError as exc:
            error = ("ValidationError", decoding.validation_reason(exc))
        except Rejected as exc:
            error = ("Rejected", str(exc))
        except (ValueError, UnicodeDecodeError) as exc:
            error = (type(exc).__name__, f"cannot decode: {exc}"[:500])
        except Exception as exc:  # a decoder must never stop the loop: that record would block its partition
            error = (type(exc).__name__, "cannot decode: unexpected error in the decoder")
            log.error("decoder failed", exc_info=exc, extra={"topic": record.topic, "offset": record.offset})
        return message, None, error

    async def _retry(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return await retrying.retry(self.settings, fn, *args)
